/**
 * Writes the audit record of every request to a dialect router (key operations, and the refusals
 * before them: bad token, wrong scope, throttled), in one place: it wraps `res.end`, so the record
 * is queued after the handler decided the answer, and the answer is held (not a byte of it sent)
 * until the batch holding the record is durably appended (group commit, src/log/audit.ts). When the
 * record cannot be written and audit is required, the answer is replaced by the dialect's internal
 * error: nothing a handler produced (a data key, a plaintext, a signature) leaves without its record.
 *
 * While writes fail, later requests are refused before their operation runs.
 *
 * Handlers say what they did through res.locals, set by `operation()` (the operation name),
 * `noteKey()` (called by each dialect's keyOf: key id and version) and the error handler
 * (`errorCode`).
 */
import type { RequestHandler, Response } from 'express';
import { KmsError } from '../../errors/kms-error';
import type { AuditLog } from '../../log/audit';
import type { Logger } from '../../log/logger';
import type { KeyRecord } from '../../store/store';
import type { Principal } from '../../kms/api-tokens';
import type { ErrorRenderer } from '../http';
import { AUTH_FAILED } from './failed-auth';

/** Records the key an operation resolved (its current version unless a handler says which one it used). */
export function noteKey(res: Response, key: KeyRecord, version: number = key.currentVersion): void {
  res.locals['auditKeyId'] = key.keyId;
  res.locals['auditKeyVersion'] = version;
}

/** The key version an operation actually used (e.g. the one a ciphertext names). */
export function noteVersion(res: Response, version: number): void {
  res.locals['auditKeyVersion'] = version;
}

type End = Response['end'];

export function auditTrail(audit: AuditLog, dialect: string, render: ErrorRenderer, log: Logger): RequestHandler {
  return (req, res, next) => {
    const originalEnd = res.end.bind(res) as (...args: unknown[]) => Response;
    // open: no answer yet; held: the answer waits for its record's batch; sent: passed on.
    let state: 'open' | 'held' | 'sent' = 'open';
    const send = (...args: unknown[]): void => {
      state = 'sent';
      try {
        originalEnd(...args);
      } catch (e) {
        log.error('response could not be sent', { requestId: String(res.locals['requestId'] ?? ''), error: e instanceof Error ? e.message : 'unknown' });
      }
    };
    res.end = ((...args: unknown[]) => {
      if (state === 'sent') return originalEnd(...args);
      // A second end() while the first answer waits for its record: the first answer stands.
      if (state === 'held') return res;
      // A failed authentication is counted for its address (failed-auth.ts), not recorded on its
      // own: its answer carries nothing that needs a record first.
      if (res.locals[AUTH_FAILED] === true) {
        send(...args);
        return res;
      }
      state = 'held';
      const principal = res.locals['principal'] as Principal | undefined;
      const status = res.statusCode;
      const errorCode: unknown = res.locals['errorCode'];
      const version: unknown = res.locals['auditKeyVersion'];
      const keyId: unknown = res.locals['auditKeyId'];
      const operation: unknown = res.locals['operation'];
      audit
        .write({
          time: new Date().toISOString(),
          project: principal?.projectId ?? '',
          tokenId: principal?.tokenId ?? null,
          operation: `${dialect}:${typeof operation === 'string' ? operation : 'unknown'}`,
          keyId: typeof keyId === 'string' ? keyId : null,
          keyVersion: typeof version === 'number' ? version : null,
          source: req.socket.remoteAddress ?? '',
          requestId: String(res.locals['requestId'] ?? ''),
          status,
          outcome: status < 400 ? 'success' : 'failure',
          errorCode: status < 400 ? null : typeof errorCode === 'string' ? errorCode : String(status),
        })
        .then(
          () => send(...args),
          (e: unknown) => {
            log.error('audit record could not be written', { requestId: String(res.locals['requestId'] ?? ''), error: e instanceof Error ? e.message : 'unknown', required: audit.required });
            if (audit.required && !res.headersSent) {
              const rendered = render(new KmsError('Internal', 'Internal error.'));
              const body = Buffer.from(JSON.stringify(rendered.body), 'utf8');
              res.statusCode = rendered.status;
              res.setHeader('Content-Type', 'application/json; charset=utf-8');
              res.setHeader('Content-Length', String(body.length));
              send(body);
              return;
            }
            send(...args);
          },
        );
      return res;
    }) as End;
    // While the last batch failed, refuse before the operation runs (its own record is the probe:
    // once a batch is written again, requests run again). See docs/security.md for what may run
    // unaudited during an outage; none of those results is ever returned.
    if (audit.required && !audit.healthy) {
      next(new KmsError('Internal', 'Internal error.'));
      return;
    }
    next();
  };
}
