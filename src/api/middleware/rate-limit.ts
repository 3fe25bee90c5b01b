/**
 * Per-project request limits with rate-limiter-flexible: each project has a bucket of `limit`
 * requests per second (KMS_RATE_LIMIT, default 1000, Huawei's default), overridable per project
 * (KMS_RATE_LIMITS=p1=50,p2=2000). Over the limit: the dialect's throttling error (NCP
 * TOO_MANY_REQUESTS, Huawei APIGW.0308) with HTTP 429 and `Retry-After` in whole seconds (≥ 1).
 *
 * Across processes: the store is per process (RateLimiterMemory). With KMS_WORKERS = N each worker
 * enforces ceil(limit / N); the cluster's round-robin spreads requests evenly, so the service as a
 * whole admits about `limit`. With a PostgreSQL metadata store every node counts in one table
 * (RateLimiterPostgres), so a project's limit holds across nodes; while the database is
 * unreachable each process falls back to its own share, as above.
 */
import type { RequestHandler } from 'express';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { KmsError } from '../../errors/kms-error';
import { principalOf } from '../http';

export interface RateLimitConfig {
  /** Requests per second per project. */
  readonly defaultPerSecond: number;
  readonly perProject: Readonly<Record<string, number>>;
  /** Server processes sharing the load (KMS_WORKERS). */
  readonly processes: number;
  /** A PostgreSQL pool (pg.Pool) and table shared by every node: one count per project. */
  readonly shared?: { readonly pool: unknown; readonly table: string };
}

export class ProjectRateLimits {
  private readonly limiters = new Map<number, RateLimiterAbstract>();
  /** A Map: project names are the clients' (`constructor`, `__proto__` are names like any other). */
  private readonly perProject: ReadonlyMap<string, number>;

  constructor(private readonly config: RateLimitConfig) {
    this.perProject = new Map(Object.entries(config.perProject));
  }

  private limiterFor(project: string): RateLimiterAbstract {
    const perSecond = this.perProject.get(project) ?? this.config.defaultPerSecond;
    let l = this.limiters.get(perSecond);
    if (!l) {
      const share = Math.max(1, Math.ceil(perSecond / Math.max(1, this.config.processes)));
      const local = new RateLimiterMemory({ keyPrefix: `p${share}`, points: share, duration: 1 });
      const shared = this.config.shared;
      l = shared
        ? new RateLimiterPostgres({
            storeClient: shared.pool,
            tableName: shared.table,
            tableCreated: true,
            clearExpiredByTimeout: false,
            keyPrefix: `p${perSecond}`,
            points: perSecond,
            duration: 1,
            insuranceLimiter: local,
          })
        : local;
      this.limiters.set(perSecond, l);
    }
    return l;
  }

  /** Resolves when the project may go on; rejects with Throttled (and the seconds to wait) otherwise. */
  async take(project: string): Promise<void> {
    try {
      await this.limiterFor(project).consume(project, 1);
    } catch (e) {
      if (e instanceof RateLimiterRes) throw new Throttled(Math.max(1, Math.ceil(e.msBeforeNext / 1000)));
      throw e;
    }
  }
}

export class Throttled extends KmsError {
  constructor(readonly retryAfterSeconds: number) {
    super('Throttled', 'The request was throttled. Try again later.');
  }
}

/** After authentication: counts the request against the caller's project. */
export function rateLimit(limits: ProjectRateLimits): RequestHandler {
  return (_req, res, next) => {
    limits.take(principalOf(res).projectId).then(
      () => next(),
      (e: unknown) => {
        if (e instanceof Throttled) res.setHeader('Retry-After', String(e.retryAfterSeconds));
        next(e);
      },
    );
  };
}
