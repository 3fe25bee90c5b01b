/**
 * Per-project request limits with rate-limiter-flexible: each project has a bucket of `limit`
 * requests per second (KMS_RATE_LIMIT, default 1000, Huawei's default), overridable per project
 * (KMS_RATE_LIMITS=p1=50,p2=2000). Over the limit: the dialect's throttling error (NCP
 * TOO_MANY_REQUESTS, Huawei APIGW.0308) with HTTP 429 and `Retry-After` in whole seconds (≥ 1).
 *
 * Across processes: the store is per process (RateLimiterMemory). With KMS_WORKERS = N each worker
 * enforces ceil(limit / N); the cluster's round-robin spreads requests evenly, so the service as a
 * whole admits about `limit`. For an exact shared count swap in RateLimiterCluster (primary-held) or
 * RateLimiterRedis/RateLimiterPostgres (several hosts) — same `consume` call (docs/security.md).
 */
import type { RequestHandler } from 'express';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { KmsError } from '../../errors/kms-error';
import { principalOf } from '../http';

export interface RateLimitConfig {
  /** Requests per second per project. */
  readonly defaultPerSecond: number;
  readonly perProject: Readonly<Record<string, number>>;
  /** Server processes sharing the load (KMS_WORKERS). */
  readonly processes: number;
}

export class ProjectRateLimits {
  private readonly limiters = new Map<number, RateLimiterMemory>();

  constructor(private readonly config: RateLimitConfig) {}

  private limiterFor(project: string): RateLimiterMemory {
    const perSecond = this.config.perProject[project] ?? this.config.defaultPerSecond;
    const points = Math.max(1, Math.ceil(perSecond / Math.max(1, this.config.processes)));
    let l = this.limiters.get(points);
    if (!l) {
      l = new RateLimiterMemory({ keyPrefix: `p${points}`, points, duration: 1 });
      this.limiters.set(points, l);
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
