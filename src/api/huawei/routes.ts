/**
 * Huawei Cloud / OTC KMS v1.0 under /v1.0/{project_id}/kms (token header `X-Auth-Token`): one
 * `POST /<action>` per vendor action (keys-routes.ts, crypto-routes.ts, grants-routes.ts), found
 * through one table (actionTable) rather than a route layer each; any other method on an action is
 * 405 (KMS.0215), an unknown path 400 (KMS.0201). Then the tag routes (tags-routes.ts). Every action
 * declares its scope in ACTION_SCOPES. Bodies are parsed with the schemas in schemas.ts.
 */
import { Router, type ErrorRequestHandler } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import type { Scope } from '../../kms/api-tokens';
import { authenticate, errorHandler, jsonBody, principalOf, runRoute, type Route } from '../http';
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
import { tagRoutes, type RouteInfo } from './tags-routes';

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

/** `/<action>` (Express matched routes without case and with one optional trailing slash; so does this). */
const ACTION_PATH = /^\/([^/]+)\/?$/;

/** Lower-case ASCII only, as a case-insensitive Express route matched its ASCII path. */
const asciiLower = (text: string): string => (/^[\x00-\x7f]*$/.test(text) ? text.toLowerCase() : text);

/**
 * Every `POST /<action>`: its operation (the action's name), scope (ACTION_SCOPES) and handler
 * (keys-routes.ts, crypto-routes.ts, grants-routes.ts), built once; requests find theirs by name.
 */
export function actionTable(s: Services): ReadonlyMap<string, Route> {
  const actions: Record<string, Action> = { ...keyActions(s), ...cryptoActions(s), ...grantActions(s) };
  const table = new Map<string, Route>();
  for (const [action, handle] of Object.entries(actions)) {
    const scope = ACTION_SCOPES[action];
    if (!scope) throw new Error(`Huawei action ${action} declares no scope`);
    table.set(action, {
      operation: action,
      scope,
      handle: async (req, res) => {
        res.json(await handle(req.body, res));
      },
    });
  }
  for (const action of Object.keys(ACTION_SCOPES)) {
    if (!table.has(action)) throw new Error(`Huawei action ${action} has a scope but no handler`);
  }
  return table;
}

/** Every route the Huawei router answers (method `ALL`: the 405 for any other method), for the fuzz test. */
export function huaweiRoutes(s: Services): RouteInfo[] {
  const out: RouteInfo[] = [];
  for (const action of actionTable(s).keys()) out.push({ method: 'POST', path: `/${action}` }, { method: 'ALL', path: `/${action}` });
  return [...out, ...tagRoutes(s, Router())];
}

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

  const actions = actionTable(s);
  const body = jsonBody();
  r.use((req, res, next) => {
    const action = ACTION_PATH.exec(req.path)?.[1];
    const route = action === undefined ? undefined : actions.get(asciiLower(action));
    if (!route) {
      next();
      return;
    }
    if (req.method !== 'POST') {
      // A body that doesn't parse is reported first, as when every request's body was read up front.
      body(req, res, (err?: unknown) => next(err ?? new KmsError('MethodNotAllowed', 'Request method not supported.')));
      return;
    }
    runRoute(route, req, res, next);
  });
  // The tag routes, in their own router: a request the table answered, or an error, never walks them.
  const tags = Router({ mergeParams: true });
  tagRoutes(s, tags);
  r.use(tags);

  r.use(body, (_req, _res, next) => next(new KmsError('RouteNotFound', 'Invalid request URL.')));
  r.use(badPath);
  r.use(errorHandler(renderHuaweiError, s.log));
  return r;
}
