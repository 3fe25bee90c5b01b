/**
 * One place that sees every request end: its route template, operation, status, time and project,
 * handed to observers (the access log here, metrics). Nothing else of the request is read, so no
 * observer can log a body, a header or a token.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { Principal } from '../../kms/api-tokens';
import type { Logger } from '../../log/logger';

export interface RequestOutcome {
  readonly requestId: string;
  readonly method: string;
  /** The route's template (`/kms/v1/keys/{keyTag}/encrypt`), or '' when no route took the request. */
  readonly route: string;
  /** `ncp`, `huawei`, … ('' outside the dialects: health checks, unknown paths). */
  readonly dialect: string;
  readonly operation: string;
  readonly status: number;
  readonly ms: number;
  /** The authenticated token's project ('' before authentication). */
  readonly project: string;
  /** The dialect's error code of a refused request ('' when it succeeded). */
  readonly errorCode: string;
  /** The client went away before the answer was sent. */
  readonly aborted: boolean;
}

export type OutcomeObserver = (o: RequestOutcome) => void;

/** Marks the requests of a dialect's mount point (what the audit names `ncp:…`, `huawei:…`). */
export function dialect(name: string): RequestHandler {
  return (_req, res, next) => {
    res.locals['dialect'] = name;
    next();
  };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function routeOf(req: Request, res: Response): string {
  const declared = str(res.locals['route']);
  if (declared) return declared;
  // An Express route layer of the app itself (/livez, /healthz).
  const path: unknown = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? req.baseUrl + path : '';
}

export function observeOutcomes(observers: readonly OutcomeObserver[]): RequestHandler {
  if (observers.length === 0) return (_req, _res, next) => next();
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.once('close', () => {
      const principal = res.locals['principal'] as Principal | undefined;
      const outcome: RequestOutcome = {
        requestId: str(res.locals['requestId']),
        method: req.method,
        route: routeOf(req, res),
        dialect: str(res.locals['dialect']),
        operation: str(res.locals['operation']),
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - start) / 1e6,
        project: principal?.projectId ?? '',
        errorCode: res.statusCode >= 400 ? str(res.locals['errorCode']) : '',
        aborted: !res.writableFinished,
      };
      for (const observe of observers) observe(outcome);
    });
    next();
  };
}

/** The access log: one info line per request (KMS_ACCESS_LOG). */
export function accessLog(log: Logger): OutcomeObserver {
  return (o) =>
    log.info('access', {
      requestId: o.requestId,
      method: o.method,
      route: o.route || undefined,
      operation: o.operation ? `${o.dialect}:${o.operation}` : undefined,
      status: o.status,
      ms: Math.round(o.ms * 100) / 100,
      project: o.project || undefined,
      error: o.errorCode || undefined,
      aborted: o.aborted || undefined,
    });
}
