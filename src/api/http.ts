/** Middleware shared by every dialect: request ids, security headers, JSON bodies, request log, errors. */
import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { badRequest, KmsError } from '../errors/kms-error';
import type { Logger } from '../log/logger';
import type { ApiTokens, Principal, Scope } from '../kms/api-tokens';
import { StoreUnavailable } from '../store/store';

export const BODY_LIMIT_BYTES = 64 * 1024;
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Retry-After of a 503 (HSM unavailable, no session free), in seconds. */
export const UNAVAILABLE_RETRY_AFTER_S = 1;

/**
 * A dialect's rendering of a domain error: HTTP status, body, and the vendor error code it carries
 * (for the audit). `operation` is the route's, for vendors whose codes differ by operation.
 */
export type ErrorRenderer = (e: KmsError, operation?: string) => { status: number; body: unknown; code?: string };

export function requestId(): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const id = given && CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
    res.locals['requestId'] = id;
    res.setHeader('X-Request-Id', id);
    next();
  };
}

export function securityHeaders(): RequestHandler {
  return (_req, res, next) => {
    // Responses carry data keys: never cache them anywhere.
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  };
}

/** Parses any request body as JSON (vendors' SDKs differ in Content-Type), up to 64 KiB. */
export function jsonBody(): RequestHandler {
  return express.json({ limit: BODY_LIMIT_BYTES, strict: false, type: () => true });
}

/** Resolves the API token in `header` to a principal, or answers 401 in the dialect's shape. */
export function authenticate(tokens: ApiTokens, header: string): RequestHandler {
  return async (req, res, next) => {
    const presented = req.get(header);
    let principal: Principal | undefined;
    try {
      principal = presented ? await tokens.authenticate(presented) : undefined;
    } catch (e) {
      next(e);
      return;
    }
    if (!principal) {
      next(new KmsError('Unauthenticated', presented ? 'The token is invalid.' : `Missing ${header} header.`));
      return;
    }
    res.locals['principal'] = principal;
    next();
  };
}

export function principalOf(res: Response): Principal {
  const p: unknown = res.locals['principal'];
  if (!p) throw new KmsError('Unauthenticated', 'Not authenticated.');
  return p as Principal;
}

/** Refuses (403 in the dialect's shape) a token without `scope`. */
export function requireScope(res: Response, scope: Scope): void {
  if (!principalOf(res).scopes.has(scope)) throw new KmsError('Forbidden', `This operation needs a token with the ${scope} scope.`);
}

interface BodyParserError {
  type: string;
  status: number;
}
function isBodyParserError(e: unknown): e is BodyParserError {
  if (typeof e !== 'object' || e === null) return false;
  if (typeof (e as { type?: unknown }).type === 'string' && 'status' in e) return true;
  // A body whose Content-Encoding doesn't decode (gzip/deflate/br): zlib's error, marked 4xx by body-parser.
  const status = (e as { status?: unknown }).status;
  return (e as { expose?: unknown }).expose === true && typeof status === 'number' && status >= 400 && status < 500;
}

/** Any thrown value as a domain error; unknown ones become Internal and are logged here. */
export function toKmsError(e: unknown, log: Logger, requestId: string): KmsError {
  if (e instanceof KmsError) return e;
  // A path segment that doesn't percent-decode (Express throws while matching the route).
  if (e instanceof URIError) return badRequest('Invalid request URL.', { subject: 'url', reason: 'invalid' });
  if (isBodyParserError(e)) {
    if (e.type === 'entity.too.large') return new KmsError('PayloadTooLarge', 'Request message too long.');
    if (e.type === 'entity.parse.failed') return badRequest('Invalid JSON in the request body.', { reason: 'malformed-json' });
    return badRequest('The request body could not be read.', { reason: 'malformed-json' });
  }
  if (e instanceof StoreUnavailable) return new KmsError('StoreUnavailable', 'The service is not available. Try again later.');
  // Name only: an unknown error's message is not ours to vouch for.
  log.error('unexpected error', { requestId, error: e instanceof Error ? e.name : typeof e });
  return new KmsError('Internal', 'Internal error.');
}

export function errorHandler(render: ErrorRenderer, log: Logger): ErrorRequestHandler {
  return (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const requestId = String(res.locals['requestId'] ?? '');
    const e = toKmsError(err, log, requestId);
    const op: unknown = res.locals['operation'];
    const { status, body, code } = render(e, typeof op === 'string' ? op : undefined);
    res.locals['errorCode'] = code ?? e.code;
    // The token is away or every session busy: worth retrying shortly, and saying so stops
    // well-behaved clients from retrying at once.
    if (status === 503) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S));
    if (status >= 500) log.error('request failed', { requestId, code: e.code, status });
    // The access line (middleware/outcome.ts) carries the status and code of every refusal.
    else log.debug('request refused', { requestId, code: e.code, status });
    res.status(status).json(body);
  };
}
