/**
 * Huawei Cloud / OTC KMS v1.0 under /v1.0/{project_id}/kms (token header `X-Auth-Token`): one
 * `POST /<action>` per vendor action (keys-routes.ts, crypto-routes.ts, grants-routes.ts) and the
 * tag routes (tags-routes.ts). Every action declares its scope in ACTION_SCOPES. Bodies are parsed with the schemas in schemas.ts.
 */
import { Router, type ErrorRequestHandler } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import type { Scope } from '../../kms/api-tokens';
import { authenticate, errorHandler, jsonBody, operation, principalOf } from '../http';
import { auditTrail } from '../middleware/audit';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import type { Action } from './common';
import { cryptoActions } from './crypto-routes';
import { renderHuaweiError } from './errors';
import { grantActions } from './grants-routes';
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

/** The token scope each action needs: management = admin, describe/list/get = read, key use = crypto. */
export const ACTION_SCOPES: Readonly<Record<string, Scope>> = {
  'create-key': 'admin',
  'enable-key': 'admin',
  'disable-key': 'admin',
  'schedule-key-deletion': 'admin',
  'cancel-key-deletion': 'admin',
  'update-key-alias': 'admin',
  'update-key-description': 'admin',
  'enable-key-rotation': 'admin',
  'disable-key-rotation': 'admin',
  'update-key-rotation-interval': 'admin',
  'create-grant': 'admin',
  'revoke-grant': 'admin',
  'retire-grant': 'admin',
  'describe-key': 'read',
  'list-keys': 'read',
  'get-key-rotation-status': 'read',
  'get-publickey': 'read',
  'list-grants': 'read',
  'list-retirable-grants': 'read',
  'create-datakey': 'crypto',
  'create-datakey-without-plaintext': 'crypto',
  'encrypt-datakey': 'crypto',
  'decrypt-datakey': 'crypto',
  'encrypt-data': 'crypto',
  'decrypt-data': 'crypto',
  'gen-random': 'crypto',
  sign: 'crypto',
  verify: 'crypto',
};

export function huaweiRouter(s: Services, edge: Edge = {}): Router {
  const r = Router({ mergeParams: true });
  if (edge.audit) r.use(auditTrail(edge.audit, 'huawei', renderHuaweiError, s.log));
  r.use(authenticate(s.tokens, 'x-auth-token'));
  r.use((req, res, next) => {
    // The path names the project; a token of another project may not act in it.
    if (req.params['project_id'] !== principalOf(res).projectId) {
      next(new KmsError('Forbidden', 'URIs in URL and X-Auth-Token do not match.', { vendorCode: 'KMS.0321' }));
      return;
    }
    next();
  });
  if (edge.mtls) r.use(clientCertProject('KMS.0306'));
  if (edge.limits) r.use(rateLimit(edge.limits));
  r.use(jsonBody());

  const actions: Record<string, Action> = { ...keyActions(s), ...cryptoActions(s), ...grantActions(s) };
  for (const [action, handle] of Object.entries(actions)) {
    const scope = ACTION_SCOPES[action];
    if (!scope) throw new Error(`Huawei action ${action} declares no scope`);
    r.post(`/${action}`, operation(action, scope), async (req, res) => {
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
