/**
 * NCP KMS API 2.0 under /kms/v1 (token header `x-ncp-ocapi-token`). One route per vendor route
 * (key-routes.ts: management and reads; crypto-routes.ts: crypto) in the shared route table
 * (dispatch.ts), each with its schemas from schemas.ts; answers `{"code":"SUCCESS","data":…}`,
 * errors as errors.ts renders them.
 */
import { Router } from 'express';
import { KmsError } from '../../errors/kms-error';
import { describeRoutes, dispatcher, type Route } from '../dispatch';
import type { DialectApi } from '../openapi';
import { authenticate, errorHandler, jsonBody } from '../http';
import { auditTrail } from '../middleware/audit';
import { dialect } from '../middleware/outcome';
import { countFailures } from '../middleware/failed-auth';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import { cryptoRoutes } from './crypto-routes';
import { NCP_ERRORS, renderNcpError } from './errors';
import { keyRoutes } from './key-routes';

/** Every NCP route, built once: the table the dispatcher, the fuzz test and the docs read. */
export function ncpRouteTable(s: Services): Route[] {
  return [...cryptoRoutes(s), ...keyRoutes(s)];
}

/** A path that is a route's with another method falls through to NCP's not-found. */
const DISPATCH = { mount: '/kms/v1', wrongMethod: 'next' } as const;

/** Every route the NCP router answers, as method and path, for the fuzz test. */
export function ncpRoutes(s: Services): Array<{ method: string; path: string }> {
  return describeRoutes(ncpRouteTable(s), DISPATCH);
}

/** The NCP part of the OpenAPI document. */
export function ncpApi(s: Services): DialectApi {
  return {
    name: 'ncp',
    title: 'NCP KMS API 2.0',
    description: 'keys named by keyTag under /kms/v1; answers {"code":"SUCCESS","data":…}, errors {"code","msg"} (docs/api/ncp.md)',
    mount: DISPATCH.mount,
    routes: ncpRouteTable(s),
    auth: { header: 'x-ncp-ocapi-token', description: 'An API token (npx p11kms token create)' },
    errors: NCP_ERRORS,
  };
}

export function ncpRouter(s: Services, edge: Edge = {}): Router {
  const r = Router();
  r.use(dialect('ncp'));
  if (edge.audit) r.use(auditTrail(edge.audit, 'ncp', renderNcpError, s.log));
  r.use(countFailures(authenticate(s.tokens, 'x-ncp-ocapi-token'), 'ncp', edge.failedAuth));
  if (edge.mtls) r.use(clientCertProject());
  if (edge.limits) r.use(rateLimit(edge.limits));
  r.use(dispatcher(ncpRouteTable(s), DISPATCH));

  // A body that doesn't parse is reported first, as when every request's body was read up front.
  r.use(jsonBody(), (_req, _res, next) => next(new KmsError('RouteNotFound', 'No such API.')));
  r.use(errorHandler(renderNcpError, s.log));
  return r;
}
