/**
 * Requests that fail authentication (no token, a wrong one, a bad AWS signature) cost the service
 * nothing it must keep: per client address they are throttled (past FAILURES_PER_WINDOW in a
 * window, the dialect's Throttled answer with `Retry-After` instead of its Unauthenticated one), and
 * their audit records are aggregated: one record per dialect and address per interval, with the
 * number of such requests in `count`, instead of one fdatasync'ed line each. A request with valid
 * credentials is never counted here, so a flood from an address doesn't lock out the clients
 * behind it that hold a token.
 */
import type { RequestHandler } from 'express';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { KmsError } from '../../errors/kms-error';
import type { AuditLog } from '../../log/audit';
import type { Logger } from '../../log/logger';

/** Failed authentications an address may make per window before it is answered Throttled. */
export const FAILURES_PER_WINDOW = 20;
const WINDOW_S = 10;
/** How often the counts are written to the audit trail. */
const AUDIT_INTERVAL_MS = 10_000;
/** Distinct dialect and address pairs counted per interval; past it, the others share one record per dialect (source ''). */
const MAX_SOURCES = 10_000;

/** Set on a request whose authentication failed: the audit trail counts it instead of recording it. */
export const AUTH_FAILED = 'authFailed';

export class FailedAuthentications {
  private readonly limiter = new RateLimiterMemory({ keyPrefix: 'failed-auth', points: FAILURES_PER_WINDOW, duration: WINDOW_S });
  /** Failed authentications per dialect and address since the last write (a Map: addresses are the clients'). */
  private counts = new Map<string, { dialect: string; source: string; count: number }>();
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly audit: AuditLog | undefined,
    private readonly log: Logger | undefined,
    intervalMs: number = AUDIT_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Counts a failed authentication; resolves to the seconds to wait when the address is over its allowance. */
  async fail(dialect: string, address: string): Promise<number | undefined> {
    const full = `${dialect} ${address}`;
    const key = this.counts.size < MAX_SOURCES || this.counts.has(full) ? full : `${dialect} `;
    const c = this.counts.get(key);
    if (c) c.count++;
    else this.counts.set(key, { dialect, source: key === full ? address : '', count: 1 });
    try {
      await this.limiter.consume(address, 1);
      return undefined;
    } catch (e) {
      if (e instanceof RateLimiterRes) return Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      throw e;
    }
  }

  /** Writes one record per dialect and address counted since the last write. */
  flush(): Promise<void> {
    const counts = this.counts;
    this.counts = new Map();
    if (counts.size === 0 || !this.audit) return this.writing;
    const audit = this.audit;
    const time = new Date().toISOString();
    this.writing = this.writing.then(() =>
      Promise.all(
        [...counts.values()].map(({ dialect, source, count }) =>
          audit.write({
            time,
            project: '',
            tokenId: null,
            operation: `${dialect}:failed-authentication`,
            keyId: null,
            keyVersion: null,
            source,
            requestId: '',
            status: 401,
            outcome: 'failure',
            errorCode: 'Unauthenticated',
            count,
          }),
        ),
      ).then(
        () => undefined,
        (e: unknown) => this.log?.error('failed authentications could not be audited', { error: e instanceof Error ? e.message : 'unknown' }),
      ),
    );
    return this.writing;
  }

  /** Stops the timer and writes what is counted (before the audit trail closes). */
  close(): Promise<void> {
    clearInterval(this.timer);
    return this.flush();
  }
}

/**
 * Wraps a dialect's authentication middleware: each of its Unauthenticated refusals is counted for
 * the client's address, and past the allowance answered Throttled with `Retry-After` instead.
 */
export function countFailures(authenticate: RequestHandler, dialect: string, failures: FailedAuthentications | undefined): RequestHandler {
  if (!failures) return authenticate;
  // The wrapped middleware's promise (if any) goes back to Express, which turns a rejection into an error answer.
  return (req, res, next) =>
    authenticate(req, res, (err?: unknown) => {
      if (!(err instanceof KmsError && err.code === 'Unauthenticated')) {
        next(err);
        return;
      }
      res.locals[AUTH_FAILED] = true;
      failures.fail(dialect, req.socket.remoteAddress ?? '').then(
        (wait) => {
          if (wait === undefined) {
            next(err);
            return;
          }
          res.setHeader('Retry-After', String(wait));
          next(new KmsError('Throttled', 'Too many failed authentications. Try again later.'));
        },
        (e: unknown) => next(e),
      );
    });
}
