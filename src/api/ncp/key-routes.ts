/**
 * NCP key management and read routes: create, list, info, enable/disable, deletion, rotation,
 * versions and auto-rotation settings, keyed by method and path for routes.ts's table. Each route
 * declares its operation and scope (management: admin; reads: read). Each handler checks the
 * caller, then the input, then the key, then calls the domain, so a refused request never reaches
 * a state change.
 */
import type { Request, Response } from 'express';
import { badRequest, invalidState, KmsError } from '../../errors/kms-error';
import type { KeyRecord } from '../../store/store';
import { principalOf, type Route } from '../http';
import { noteKey, noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { compile } from '../validate';
import { keyInfo, keyListItem, keyOf, keyStatus, ok, rotationInfo, route, specOf, versionStatus } from './common';
import { CreateKeyBody, EmptyBody, ListKeysQuery, RotationPeriodBody, VersionParam } from './schemas';

const validateCreateKey = compile(CreateKeyBody);
const validateEmpty = compile(EmptyBody);
const validateListQuery = compile(ListKeysQuery);
const validateRotationPeriod = compile(RotationPeriodBody);
const validateVersion = compile(VersionParam);

/** NCP's deletion window is fixed: 72 hours. */
export const DELETION_DAYS = 3;
const DEFAULT_ROTATION_DAYS = 90;
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 200;

function versionParam(req: Request): number {
  const v = req.params['version'];
  try {
    validateVersion(v);
  } catch {
    throw badRequest('version must be an integer from 1 to 100.', { field: 'version', reason: 'invalid' });
  }
  return Number(v);
}

/** Rotation settings can't change while the key waits for deletion. */
function assertNotPendingDeletion(key: KeyRecord): void {
  if (key.state === 'PendingDeletion') throw new KmsError('KeyPendingDeletion', 'The key is pending deletion and cannot be used.');
}

const stateOf = (key: KeyRecord) => ({ keyTag: key.keyTag, status: keyStatus(key.state), statusDate: key.stateChangedAt });

export function keyRoutes(s: Services): Record<string, Route> {
  /** A management call with no body fields on one key (the route declares the admin scope). */
  const manage = async (req: Request, res: Response): Promise<KeyRecord> => {
    validateEmpty(req.body);
    return await keyOf(s, req, res);
  };

  const setVersionEnabled = (enabled: boolean) => async (req: Request, res: Response) => {
    const version = versionParam(req);
    validateEmpty(req.body);
    const v = await s.keys.setVersionEnabled(await keyOf(s, req, res), version, enabled);
    ok(res, { version: v.version, status: versionStatus(v.state), statusDate: v.stateChangedAt });
  };

  return {
    'POST /keys': route('create-key', 'admin', async (req, res) => {
      const body = validateCreateKey(req.body);
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
    }),

    'GET /keys': route('list-keys', 'read', async (req, res) => {
      const query = validateListQuery({ ...(req.query as Record<string, unknown>) });
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
    }),

    'GET /keys/:keyTag': route('get-key-info', 'read', async (req, res) => {
      ok(res, keyInfo(await keyOf(s, req, res)));
    }),

    'DELETE /keys/:keyTag': route('delete-key', 'admin', async (req, res) => {
      await s.keys.deleteNow(await manage(req, res));
      ok(res, null);
    }),

    'POST /keys/:keyTag/enable': route('enable-key', 'admin', async (req, res) => {
      ok(res, stateOf(await s.keys.enable(await manage(req, res))));
    }),

    'POST /keys/:keyTag/disable': route('disable-key', 'admin', async (req, res) => {
      ok(res, stateOf(await s.keys.disable(await manage(req, res))));
    }),

    'POST /keys/:keyTag/request-deletion': route('request-deletion', 'admin', async (req, res) => {
      const key = await s.keys.scheduleDeletion(await manage(req, res), DELETION_DAYS);
      ok(res, { ...stateOf(key), destroyDate: key.deletionDate });
    }),

    'POST /keys/:keyTag/cancel-deletion': route('cancel-deletion', 'admin', async (req, res) => {
      ok(res, stateOf(await s.keys.cancelDeletion(await manage(req, res))));
    }),

    'POST /keys/:keyTag/rotate': route('rotate-key', 'admin', async (req, res) => {
      const key = await s.keys.rotate(await manage(req, res));
      // The record names the version the rotation made, not the one it replaced.
      noteVersion(res, key.currentVersion);
      ok(res, { keyTag: key.keyTag, version: key.currentVersion, rotatedDate: key.lastRotationAt });
    }),

    'GET /keys/:keyTag/versions': route('get-key-versions', 'read', async (req, res) => {
      const key = await keyOf(s, req, res);
      ok(res, {
        keyTag: key.keyTag,
        currentVersion: key.currentVersion,
        versionList: (await s.keys.versions(key)).map((v) => ({ version: v.version, status: versionStatus(v.state), registerDate: v.createdAt })),
      });
    }),

    'POST /keys/:keyTag/versions/:version/enable': route('enable-key-version', 'admin', setVersionEnabled(true)),
    'POST /keys/:keyTag/versions/:version/disable': route('disable-key-version', 'admin', setVersionEnabled(false)),

    'PUT /keys/:keyTag/rotation-period': route('change-rotation-period', 'admin', async (req, res) => {
      const body = validateRotationPeriod(req.body);
      const key = await keyOf(s, req, res);
      assertNotPendingDeletion(key);
      if (!key.rotationEnabled) throw invalidState('rotation-not-enabled', 'Automatic rotation is not enabled for this key.');
      const updated = await s.keys.setRotation(key, { intervalDays: body.rotationPeriod });
      const { keyTag, rotationPeriod, nextRotationDate } = rotationInfo(updated);
      ok(res, { keyTag, rotationPeriod, nextRotationDate });
    }),

    'POST /keys/:keyTag/enable-auto-rotation': route('enable-auto-rotation', 'admin', async (req, res) => {
      const key = await manage(req, res);
      assertNotPendingDeletion(key);
      if (key.rotationEnabled) throw invalidState('rotation-not-disabled', 'Automatic rotation is already enabled for this key.');
      ok(res, rotationInfo(await s.keys.setRotation(key, { enabled: true })));
    }),

    'POST /keys/:keyTag/disable-auto-rotation': route('disable-auto-rotation', 'admin', async (req, res) => {
      const key = await manage(req, res);
      assertNotPendingDeletion(key);
      if (!key.rotationEnabled) throw invalidState('rotation-not-enabled', 'Automatic rotation is not enabled for this key.');
      ok(res, rotationInfo(await s.keys.setRotation(key, { enabled: false })));
    }),
  };
}
