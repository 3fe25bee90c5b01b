/**
 * mTLS (KMS_TLS_CA): the TLS server already refused any connection without a client certificate
 * signed by the CA. Here the verified certificate is bound to a project: its subject CN must equal
 * the token's project, so a leaked token is useless without that project's certificate and a
 * certificate of project A cannot carry a token of project B (403 in the dialect's shape).
 */
import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';
import { KmsError } from '../../errors/kms-error';
import { principalOf } from '../http';

export function clientCertProject(): RequestHandler {
  return (req, res, next) => {
    const socket = req.socket as Partial<TLSSocket>;
    const cert = socket.authorized === true && typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    const cn: unknown = cert?.subject?.CN;
    const project = principalOf(res).projectId;
    if (typeof cn !== 'string' || cn !== project) {
      next(new KmsError('Forbidden', 'The client certificate does not belong to the token\'s project.'));
      return;
    }
    next();
  };
}
