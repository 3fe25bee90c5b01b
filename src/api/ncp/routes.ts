/**
 * NCP KMS API 2.0 under /kms/v1 (token header `x-ncp-ocapi-token`). One handler per vendor route
 * (key-routes.ts: management and reads; crypto-routes.ts: crypto); each parses its input with the
 * schemas in schemas.ts and answers `{"code":"SUCCESS","data":…}`, errors as errors.ts renders them.
 */
import { Router } from 'express';
import { KmsError } from '../../errors/kms-error';
import { authenticate, errorHandler, jsonBody } from '../http';
import { auditTrail } from '../middleware/audit';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import { cryptoRoutes } from './crypto-routes';
import { renderNcpError } from './errors';
import { keyRoutes } from './key-routes';

export function ncpRouter(s: Services, edge: Edge = {}): Router {
  const r = Router();
  if (edge.audit) r.use(auditTrail(edge.audit, 'ncp', renderNcpError, s.log));
  r.use(authenticate(s.tokens, 'x-ncp-ocapi-token'));
  if (edge.mtls) r.use(clientCertProject());
  if (edge.limits) r.use(rateLimit(edge.limits));
  r.use(jsonBody());

  cryptoRoutes(r, s);
  keyRoutes(r, s);

  r.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'No such API.')));
  r.use(errorHandler(renderNcpError, s.log));
  return r;
}
