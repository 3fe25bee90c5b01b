/**
 * The AWS dialect's authentication: reads the body as bytes (SigV4 signs their hash), verifies the
 * signature against the access key's secret (sigv4.ts, credentials.ts), then parses the body as
 * JSON. The principal it sets is the access key's project and scopes.
 */
import express, { type RequestHandler } from 'express';
import { badRequest } from '../../errors/kms-error';
import type { Logger } from '../../log/logger';
import { BODY_LIMIT_BYTES } from '../http';
import type { AwsCredentials } from './credentials';
import { checkRequest, parseAuthorization, verifySignature, type SignedRequest } from './sigv4';

const SERVICE = 'kms';

function parseBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('The request body is not valid JSON.', { reason: 'malformed-json' });
  }
  return parsed;
}

export function sigV4(credentials: AwsCredentials, log: Logger): RequestHandler {
  const raw = express.raw({ type: () => true, limit: BODY_LIMIT_BYTES });
  return (req, res, next) => {
    raw(req, res, (err?: unknown) => {
      if (err) {
        next(err);
        return;
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const url = req.originalUrl;
      const q = url.indexOf('?');
      const signed: SignedRequest = { method: req.method, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), rawHeaders: req.rawHeaders, body };
      const verify = async () => {
        const auth = parseAuthorization(req.get('authorization'));
        const checked = checkRequest(signed, auth, { region: credentials.region, service: SERVICE, now: Date.now() });
        const { principal, key } = await credentials.signingKey(auth.accessKeyId, auth.date, auth.region, auth.service);
        verifySignature(signed, auth, checked, key);
        res.locals['principal'] = principal;
        req.body = parseBody(body);
      };
      verify().then(
        () => next(),
        (e: unknown) => {
          log.debug('aws request not authenticated', { requestId: String(res.locals['requestId'] ?? '') });
          next(e);
        },
      );
    });
  };
}
