/**
 * Huawei Cloud / OTC KMS v1.0 under /v1.0/{project_id}/kms (token header `X-Auth-Token`): one
 * `POST /<action>` per vendor action and the tag routes, in the shared route table (dispatch.ts);
 * any other method on a route's path is 405, an unknown path 400 (errors.ts names the codes). Every
 * action declares its scope in ACTION_SCOPES. Bodies are checked with the schemas in schemas.ts.
 */
import { Router } from 'express';
import { KmsError } from '../../errors/kms-error';
import type { Scope } from '../../kms/api-tokens';
import { describeRoutes, dispatcher, type Route } from '../dispatch';
import type { DialectApi } from '../openapi';
import { authenticate, errorHandler, jsonBody, principalOf } from '../http';
import { auditTrail } from '../middleware/audit';
import { dialect } from '../middleware/outcome';
import { countFailures } from '../middleware/failed-auth';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import { cryptoActions } from './crypto-routes';
import { HUAWEI_ERRORS, renderHuaweiError } from './errors';
import { grantActions } from './grants-routes';
import { keyActions } from './keys-routes';
import { tagRoutes } from './tags-routes';

/** The token scope each action needs: management = admin, describe/list/get = read, key use = crypto. */
export const ACTION_SCOPES = {
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
} as const satisfies Readonly<Record<string, Scope>>;

/** The tag routes' scopes: changes admin, reads read. */
const TAG_SCOPES = {
  'list-project-tags': 'read',
  'list-key-tags': 'read',
  'create-key-tag': 'admin',
  'batch-key-tags': 'admin',
  'delete-key-tag': 'admin',
} as const satisfies Readonly<Record<string, Scope>>;

export type ActionScopes = typeof ACTION_SCOPES & typeof TAG_SCOPES;

/**
 * Every Huawei route, built once: `POST /<action>` (keys-routes.ts, crypto-routes.ts,
 * grants-routes.ts) and the tag routes (tags-routes.ts); the table the dispatcher, the fuzz test
 * and the docs read. Every action in ACTION_SCOPES has a route and every route a declared scope.
 */
export function huaweiRouteTable(s: Services): Route[] {
  const scopes: ActionScopes = { ...ACTION_SCOPES, ...TAG_SCOPES };
  const routes = [...keyActions(s, scopes), ...cryptoActions(s, scopes), ...grantActions(s, scopes), ...tagRoutes(s, scopes)];
  const declared = new Set(routes.map((r) => r.operation));
  for (const action of Object.keys(ACTION_SCOPES)) {
    if (!declared.has(action)) throw new Error(`Huawei action ${action} has a scope but no route`);
  }
  return routes;
}

/** Any other method on a route's path is 405 (KMS.0215). */
const DISPATCH = {
  mount: '/v1.0/{project_id}/kms',
  wrongMethod: 'method-not-allowed',
  methodNotAllowed: () => new KmsError('MethodNotAllowed', 'Request method not supported.'),
} as const;

/** Every route the Huawei router answers (method `ALL`: the 405 for any other method), for the fuzz test. */
export function huaweiRoutes(s: Services): Array<{ method: string; path: string }> {
  return describeRoutes(huaweiRouteTable(s), DISPATCH);
}

/** The Huawei part of the OpenAPI document. */
export function huaweiApi(s: Services): DialectApi {
  return {
    name: 'huawei',
    title: 'Huawei Cloud / OTC KMS v1.0',
    description: 'POST /<action> and the tag routes under /v1.0/{project_id}/kms; errors {"error":{"error_code","error_msg"}} (docs/api/huawei.md)',
    mount: DISPATCH.mount,
    routes: huaweiRouteTable(s),
    auth: { header: 'X-Auth-Token', description: "An API token of the path's project (npx p11kms token create)" },
    errors: HUAWEI_ERRORS,
  };
}

export function huaweiRouter(s: Services, edge: Edge = {}): Router {
  const r = Router({ mergeParams: true });
  r.use(dialect('huawei'));
  if (edge.audit) r.use(auditTrail(edge.audit, 'huawei', renderHuaweiError, s.log));
  r.use(countFailures(authenticate(s.tokens, 'x-auth-token'), 'huawei', edge.failedAuth));
  r.use((req, res, next) => {
    // The path names the project; a token of another project may not act in it.
    if (req.params['project_id'] !== principalOf(res).projectId) {
      next(new KmsError('Forbidden', 'URIs in URL and X-Auth-Token do not match.', { subject: 'project' }));
      return;
    }
    next();
  });
  if (edge.mtls) r.use(clientCertProject());
  if (edge.limits) r.use(rateLimit(edge.limits));

  r.use(dispatcher(huaweiRouteTable(s), DISPATCH));
  r.use(jsonBody(), (_req, _res, next) => next(new KmsError('RouteNotFound', 'Invalid request URL.')));
  r.use(errorHandler(renderHuaweiError, s.log));
  return r;
}
