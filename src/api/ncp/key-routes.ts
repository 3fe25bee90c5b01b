/**
 * NCP key management and read routes: create, list, info, enable/disable, deletion, rotation,
 * versions and auto-rotation settings. Each route declares its operation and scope (management:
 * admin; reads: read). The body is checked by the route's schema, then the key is found, then the
 * domain is called, so a refused request never reaches a state change.
 */
import { badRequest } from '../../errors/kms-error';
import type { RotationPolicy } from '../../kms/key-rules';
import { route, type Route } from '../dispatch';
import { principalOf } from '../http';
import { noteKey, noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { compile } from '../validate';
import { keyInfo, keyListItem, keyOf, keyStatus, ok, rotationInfo, specOf, versionStatus } from './common';
import { CreateKeyBody, EmptyBody, ListKeysQuery, RotationPeriodBody, VersionParam } from './schemas';
import { AutoRotationResponse, CreateKeyResponse, DeleteKeyResponse, KeyInfoResponse, KeyStateResponse, KeyVersionStateResponse, KeyVersionsResponse, ListKeysResponse, RequestDeletionResponse, RotateKeyResponse, RotationPeriodResponse } from './responses';

const validateVersion = compile(VersionParam);

/** NCP's deletion window is fixed: 72 hours. */
export const DELETION_DAYS = 3;
const DEFAULT_ROTATION_DAYS = 90;
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 200;
/** NCP rotates RSA keys too, and lets a disabled key's settings change; it refuses a no-op toggle. */
const ROTATION: RotationPolicy = { asymmetric: true, whileDisabled: true, idempotent: false };

function versionParam(params: Readonly<Record<string, string>>): number {
  const v = params['version'];
  try {
    validateVersion(v);
  } catch {
    throw badRequest('version must be an integer from 1 to 100.', { field: 'version', reason: 'invalid' });
  }
  return Number(v);
}

const stateOf = (key: { keyTag: string; state: Parameters<typeof keyStatus>[0]; stateChangedAt: number }) => ({
  keyTag: key.keyTag,
  status: keyStatus(key.state),
  statusDate: key.stateChangedAt,
});

export function keyRoutes(s: Services): Route[] {
  const setVersionEnabled = (enabled: boolean) =>
    route({
      method: 'POST',
      path: `/keys/:keyTag/versions/:version/${enabled ? 'enable' : 'disable'}`,
      operation: enabled ? 'enable-key-version' : 'disable-key-version',
      response: KeyVersionStateResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => {
        const version = versionParam(params);
        const v = await s.keys.setVersionEnabled((await keyOf(s, params, res)), version, enabled);
        ok(res, { version: v.version, status: versionStatus(v.state), statusDate: v.stateChangedAt });
      },
    });

  return [
    route({
      method: 'POST',
      path: '/keys',
      operation: 'create-key',
      response: CreateKeyResponse,
      scope: 'admin',
      body: CreateKeyBody,
      handle: async ({ body }, _req, res) => {
        if (body.keyType === 'ECDSA') throw badRequest('ECDSA keys are not supported.', { field: 'keyType', reason: 'invalid' });
        if (body.isConvergent === true && body.keyType !== 'AES256') {
          throw badRequest('Only AES256 keys can be convergent.', { field: 'isConvergent', reason: 'invalid' });
        }
        const spec = specOf(body.keyType);
        const key = await s.keys.create({
          projectId: principalOf(res).projectId,
          alias: body.keyName,
          description: body.memo ?? '',
          spec,
          usage: spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ANY',
          convergent: body.isConvergent ?? false,
          rotationEnabled: body.isAutoRotation ?? false,
          rotationIntervalDays: body.rotationPeriod ?? DEFAULT_ROTATION_DAYS,
        });
        // The record of a creation names the key it made.
        noteKey(res, key);
        ok(res, keyInfo(key));
      },
    }),

    route({
      method: 'GET',
      path: '/keys',
      operation: 'list-keys',
      response: ListKeysResponse,
      scope: 'read',
      query: ListKeysQuery,
      handle: async ({ query }, _req, res) => {
        const pageNo = query.pageNo === undefined ? 1 : Number(query.pageNo);
        const pageSize = query.pageSize === undefined ? DEFAULT_PAGE_SIZE : Number(query.pageSize);
        if (pageSize > MAX_PAGE_SIZE) throw badRequest('pageSize must be from 1 to 200.', { field: 'pageSize', reason: 'invalid' });
        const page = await s.keys.list(principalOf(res).projectId, { offset: (pageNo - 1) * pageSize, limit: pageSize });
        ok(res, {
          keyList: page.keys.map(keyListItem),
          currentPageNo: pageNo,
          totalPageNo: Math.ceil(page.total / pageSize),
          totalCount: page.total,
        });
      },
    }),

    route({
      method: 'GET',
      path: '/keys/:keyTag',
      operation: 'get-key-info',
      response: KeyInfoResponse,
      scope: 'read',
      handle: async ({ params }, _req, res) => ok(res, keyInfo((await keyOf(s, params, res)))),
    }),

    route({
      method: 'DELETE',
      path: '/keys/:keyTag',
      operation: 'delete-key',
      response: DeleteKeyResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => {
        await s.keys.deleteNow((await keyOf(s, params, res)));
        ok(res, null);
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/enable',
      operation: 'enable-key',
      response: KeyStateResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => ok(res, stateOf(await s.keys.enable((await keyOf(s, params, res))))),
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/disable',
      operation: 'disable-key',
      response: KeyStateResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => ok(res, stateOf(await s.keys.disable((await keyOf(s, params, res))))),
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/request-deletion',
      operation: 'request-deletion',
      response: RequestDeletionResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => {
        const key = await s.keys.scheduleDeletion((await keyOf(s, params, res)), DELETION_DAYS);
        ok(res, { ...stateOf(key), destroyDate: key.deletionDate });
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/cancel-deletion',
      operation: 'cancel-deletion',
      response: KeyStateResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => ok(res, stateOf(await s.keys.cancelDeletion((await keyOf(s, params, res))))),
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/rotate',
      operation: 'rotate-key',
      response: RotateKeyResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => {
        const key = await s.keys.rotate((await keyOf(s, params, res)), ROTATION);
        // The record names the version the rotation made, not the one it replaced.
        noteVersion(res, key.currentVersion);
        ok(res, { keyTag: key.keyTag, version: key.currentVersion, rotatedDate: key.lastRotationAt });
      },
    }),

    route({
      method: 'GET',
      path: '/keys/:keyTag/versions',
      operation: 'get-key-versions',
      response: KeyVersionsResponse,
      scope: 'read',
      handle: async ({ params }, _req, res) => {
        const key = (await keyOf(s, params, res));
        ok(res, {
          keyTag: key.keyTag,
          currentVersion: key.currentVersion,
          versionList: (await s.keys.versions(key)).map((v) => ({ version: v.version, status: versionStatus(v.state), registerDate: v.createdAt })),
        });
      },
    }),

    setVersionEnabled(true),
    setVersionEnabled(false),

    route({
      method: 'PUT',
      path: '/keys/:keyTag/rotation-period',
      operation: 'change-rotation-period',
      response: RotationPeriodResponse,
      scope: 'admin',
      body: RotationPeriodBody,
      handle: async ({ body, params }, _req, res) => {
        const updated = await s.keys.setRotationInterval((await keyOf(s, params, res)), body.rotationPeriod, ROTATION);
        const { keyTag, rotationPeriod, nextRotationDate } = rotationInfo(updated);
        ok(res, { keyTag, rotationPeriod, nextRotationDate });
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/enable-auto-rotation',
      operation: 'enable-auto-rotation',
      response: AutoRotationResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => ok(res, rotationInfo(await s.keys.setAutoRotation((await keyOf(s, params, res)), true, ROTATION))),
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/disable-auto-rotation',
      operation: 'disable-auto-rotation',
      response: AutoRotationResponse,
      scope: 'admin',
      body: EmptyBody,
      handle: async ({ params }, _req, res) => ok(res, rotationInfo(await s.keys.setAutoRotation((await keyOf(s, params, res)), false, ROTATION))),
    }),
  ];
}
