/**
 * NCP KMS API 2.0 under /kms/v1 (token header `x-ncp-ocapi-token`). One handler per vendor route
 * (key-routes.ts: management and reads; crypto-routes.ts: crypto), each keyed by method and path
 * (`POST /keys/:keyTag/encrypt`) in one table built at start-up; a request finds its route with one
 * lookup instead of walking a route layer per path. Each parses its input with the schemas in
 * schemas.ts and answers `{"code":"SUCCESS","data":…}`, errors as errors.ts renders them.
 */
import { Router, type RequestHandler } from 'express';
import { KmsError } from '../../errors/kms-error';
import { authenticate, errorHandler, jsonBody, runRoute, type Route } from '../http';
import { auditTrail } from '../middleware/audit';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import { cryptoRoutes } from './crypto-routes';
import { renderNcpError } from './errors';
import { keyRoutes } from './key-routes';

/** Lower-case ASCII only, as a case-insensitive Express route matched its ASCII path. */
const asciiLower = (text: string): string => (/^[\x00-\x7f]*$/.test(text) ? text.toLowerCase() : text);

/**
 * A request path as a table key's path (`/keys/:keyTag/versions/:version/enable`) and its raw
 * parameters, or undefined when no route can have it. As Express matched: literal segments without
 * case, one optional trailing slash, no empty segment.
 */
function shapeOf(path: string): { shape: string; keyTag?: string | undefined; version?: string | undefined } | undefined {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const segs = p.slice(1).split('/');
  if (segs.includes('') || asciiLower(segs[0] ?? '') !== 'keys') return undefined;
  const [, keyTag, a, version, b] = segs;
  switch (segs.length) {
    case 1:
      return { shape: '/keys' };
    case 2:
      return { shape: '/keys/:keyTag', keyTag };
    case 3:
      return { shape: `/keys/:keyTag/${asciiLower(a ?? '')}`, keyTag };
    case 5:
      return { shape: `/keys/:keyTag/${asciiLower(a ?? '')}/:version/${asciiLower(b ?? '')}`, keyTag, version };
    default:
      return undefined;
  }
}

/** A path parameter as Express decoded it (a URIError is the client's 400, as when Express matched). */
function decodeParam(raw: string): string {
  return raw.includes('%') ? decodeURIComponent(raw) : raw;
}

/** Every route by `METHOD path` (HEAD finds GET's), built once. */
export function routeTable(s: Services): ReadonlyMap<string, Route> {
  const table = new Map<string, Route>();
  for (const [key, route] of Object.entries({ ...cryptoRoutes(s), ...keyRoutes(s) })) {
    if (table.has(key)) throw new Error(`NCP route ${key} is declared twice`);
    table.set(key, route);
  }
  return table;
}

/** Every route the NCP router answers, as method and path, for the fuzz test. */
export function ncpRoutes(s: Services): Array<{ method: string; path: string }> {
  return [...routeTable(s).keys()].map((k) => ({ method: k.slice(0, k.indexOf(' ')), path: k.slice(k.indexOf(' ') + 1) }));
}

function dispatch(table: ReadonlyMap<string, Route>): RequestHandler {
  const paths = new Set([...table.keys()].map((k) => k.slice(k.indexOf(' ') + 1)));
  return (req, res, next) => {
    const found = shapeOf(req.path);
    if (!found || !paths.has(found.shape)) {
      next();
      return;
    }
    // The path is a route's (whatever the method): its parameters decode or the request is refused.
    const params: Record<string, string> = {};
    try {
      if (found.keyTag !== undefined) params['keyTag'] = decodeParam(found.keyTag);
      if (found.version !== undefined) params['version'] = decodeParam(found.version);
    } catch (e) {
      next(e);
      return;
    }
    const route = table.get(`${req.method} ${found.shape}`) ?? (req.method === 'HEAD' ? table.get(`GET ${found.shape}`) : undefined);
    if (!route) {
      next();
      return;
    }
    req.params = params;
    runRoute(route, req, res, next);
  };
}

export function ncpRouter(s: Services, edge: Edge = {}): Router {
  const r = Router();
  if (edge.audit) r.use(auditTrail(edge.audit, 'ncp', renderNcpError, s.log));
  r.use(authenticate(s.tokens, 'x-ncp-ocapi-token'));
  if (edge.mtls) r.use(clientCertProject());
  if (edge.limits) r.use(rateLimit(edge.limits));
  r.use(dispatch(routeTable(s)));

  // A body that doesn't parse is reported first, as when every request's body was read up front.
  r.use(jsonBody(), (_req, _res, next) => next(new KmsError('RouteNotFound', 'No such API.')));
  r.use(errorHandler(renderNcpError, s.log));
  return r;
}
