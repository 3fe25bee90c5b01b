/**
 * Huawei Cloud / OTC KMS v1.0 under /v1.0/{project_id}/kms (token header `X-Auth-Token`): one
 * `POST /<action>` per vendor action (keys-routes.ts, crypto-routes.ts) and the tag routes
 * (tags-routes.ts). Bodies are parsed with the schemas in schemas.ts.
 */
import { Router, type ErrorRequestHandler } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import { authenticate, errorHandler, jsonBody, principalOf } from '../http';
import type { Services } from '../services';
import type { Action } from './common';
import { cryptoActions } from './crypto-routes';
import { renderHuaweiError } from './errors';
import { keyActions } from './keys-routes';
import { tagRoutes } from './tags-routes';

/** A path segment that doesn't percent-decode is the client's mistake (KMS.0201), not a 500. */
const badPath: ErrorRequestHandler = (err: unknown, _req, _res, next) => {
  if (err instanceof URIError) {
    next(badRequest('Invalid request URL.', { reason: 'invalid' }, 'KMS.0201'));
    return;
  }
  next(err);
};

export function huaweiRouter(s: Services): Router {
  const r = Router({ mergeParams: true });
  r.use(authenticate(s.tokens, 'x-auth-token'));
  r.use((req, res, next) => {
    // The path names the project; a token of another project may not act in it.
    if (req.params['project_id'] !== principalOf(res).projectId) {
      next(new KmsError('Forbidden', 'URIs in URL and X-Auth-Token do not match.', { vendorCode: 'KMS.0321' }));
      return;
    }
    next();
  });
  r.use(jsonBody());

  const actions: Record<string, Action> = { ...keyActions(s), ...cryptoActions(s) };
  for (const [action, handle] of Object.entries(actions)) {
    r.post(`/${action}`, async (req, res) => {
      res.json(await handle(req.body, res));
    });
    r.all(`/${action}`, (_req, _res, next) => next(new KmsError('MethodNotAllowed', 'Request method not supported.')));
  }
  tagRoutes(s, r);

  r.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'Invalid request URL.')));
  r.use(badPath);
  r.use(errorHandler(renderHuaweiError, s.log));
  return r;
}
