/**
 * Huawei key management actions: create, describe, list, enable/disable, scheduled deletion, alias
 * and description, rotation settings. Scopes are declared in routes.ts (changes: admin; describe,
 * list and rotation status: read).
 */
import { isKeySpecName } from '../../kms/key-specs';
import type { RotationPolicy } from '../../kms/key-rules';
import type { Route } from '../dispatch';
import { principalOf } from '../http';
import { noteKey } from '../middleware/audit';
import type { Services } from '../services';
import { action, decimal, invalid, keyInfo, keyOf, STATE_CODE, STATE_OF_CODE } from './common';
import type { ActionScopes } from './routes';
import { CreateKeyBody, KeyIdBody, ListKeysBody, RotationIntervalBody, ScheduleDeletionBody, UpdateAliasBody, UpdateDescriptionBody } from './schemas';
import { AliasResponse, CreateKeyResponse, DeletionResponse, DescribeKeyResponse, DescriptionResponse, Empty, KeyStateResponse, ListKeysResponse, RotationStatusResponse } from './responses';

export const MAX_LIST_LIMIT = 1000;
/** Huawei rotates enabled symmetric keys only and refuses a no-op toggle. */
const ROTATION: RotationPolicy = { asymmetric: false, whileDisabled: false, idempotent: false };

/** Aliases ending in /default name the cloud's default master keys; a custom key may not take one. */
function customAlias(alias: string): string {
  if (alias.endsWith('/default')) throw invalid('key_alias', 'Invalid key_alias.');
  return alias;
}

export function keyActions(s: Services, scopes: ActionScopes): Route[] {
  return [
    action('create-key', scopes['create-key'], CreateKeyBody, CreateKeyResponse, async (body, res) => {
      const alias = customAlias(body.key_alias);
      const spec = body.key_spec ?? 'AES_256';
      if (!isKeySpecName(spec)) throw invalid('key_spec', 'key_spec must be AES_256 or RSA_2048.');
      if (spec === 'AES_256' && body.key_usage === 'SIGN_VERIFY') {
        throw invalid('key_usage', 'AES_256 keys can only be used to encrypt and decrypt.');
      }
      const key = await s.keys.create({
        projectId: principalOf(res).projectId,
        alias,
        description: body.key_description ?? '',
        spec,
        usage: body.key_usage ?? (spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ANY'),
        convergent: false,
      });
      // The record of a creation names the key it made.
      noteKey(res, key);
      return { key_info: { key_id: key.keyId, domain_id: key.projectId } };
    }),

    action('describe-key', scopes['describe-key'], KeyIdBody, DescribeKeyResponse, async (body, res) => ({ key_info: keyInfo((await keyOf(s, res, body.key_id))) })),

    action('list-keys', scopes['list-keys'], ListKeysBody, ListKeysResponse, async (body, res) => {
      const limit = body.limit === undefined ? MAX_LIST_LIMIT : decimal(body.limit, 1, MAX_LIST_LIMIT, 'limit', 'Invalid limit.');
      const offset = body.marker === undefined ? 0 : decimal(body.marker, 0, Number.MAX_SAFE_INTEGER, 'marker', 'marker must be greater than or equals 0.');
      // States 1 (pending activation) and 5 (pending import) exist at the vendor only: no key is ever in them here.
      const state = body.key_state === undefined ? undefined : STATE_OF_CODE[body.key_state];
      const page =
        body.key_state !== undefined && state === undefined
          ? { keys: [], total: 0 }
          : await s.keys.list(principalOf(res).projectId, { ...(state ? { state } : {}), offset, limit });
      const next = offset + page.keys.length;
      const truncated = next < page.total;
      return {
        keys: page.keys.map((k) => k.keyId),
        key_details: page.keys.map(keyInfo),
        next_marker: truncated ? String(next) : '',
        truncated: String(truncated),
        total: page.total,
      };
    }),

    action('enable-key', scopes['enable-key'], KeyIdBody, KeyStateResponse, async (body, res) => {
      const key = await s.keys.enable((await keyOf(s, res, body.key_id)));
      return { key_info: { key_id: key.keyId, key_state: STATE_CODE[key.state] } };
    }),

    action('disable-key', scopes['disable-key'], KeyIdBody, KeyStateResponse, async (body, res) => {
      const key = await s.keys.disable((await keyOf(s, res, body.key_id)));
      return { key_info: { key_id: key.keyId, key_state: STATE_CODE[key.state] } };
    }),

    action('schedule-key-deletion', scopes['schedule-key-deletion'], ScheduleDeletionBody, DeletionResponse, async (body, res) => {
      const days = decimal(body.pending_days, 7, 1096, 'pending_days', 'Set the pending deletion period between 7 to 1096 days.');
      const key = await s.keys.scheduleDeletion((await keyOf(s, res, body.key_id)), days);
      return { key_id: key.keyId, key_state: STATE_CODE[key.state] };
    }),

    action('cancel-key-deletion', scopes['cancel-key-deletion'], KeyIdBody, DeletionResponse, async (body, res) => {
      const key = await s.keys.cancelDeletion((await keyOf(s, res, body.key_id)));
      return { key_id: key.keyId, key_state: STATE_CODE[key.state] };
    }),

    action('update-key-alias', scopes['update-key-alias'], UpdateAliasBody, AliasResponse, async (body, res) => {
      const alias = customAlias(body.key_alias);
      const key = await s.keys.updateAlias((await keyOf(s, res, body.key_id)), alias);
      return { key_info: { key_id: key.keyId, key_alias: key.alias } };
    }),

    action('update-key-description', scopes['update-key-description'], UpdateDescriptionBody, DescriptionResponse, async (body, res) => {
      const key = await s.keys.updateDescription((await keyOf(s, res, body.key_id)), body.key_description);
      return { key_info: { key_id: key.keyId, key_description: key.description } };
    }),

    action('enable-key-rotation', scopes['enable-key-rotation'], KeyIdBody, Empty, async (body, res) => {
      await s.keys.setAutoRotation((await keyOf(s, res, body.key_id)), true, ROTATION);
      return {};
    }),

    action('disable-key-rotation', scopes['disable-key-rotation'], KeyIdBody, Empty, async (body, res) => {
      await s.keys.setAutoRotation((await keyOf(s, res, body.key_id)), false, ROTATION);
      return {};
    }),

    action('update-key-rotation-interval', scopes['update-key-rotation-interval'], RotationIntervalBody, Empty, async (body, res) => {
      await s.keys.setRotationInterval((await keyOf(s, res, body.key_id)), body.rotation_interval, ROTATION);
      return {};
    }),

    action('get-key-rotation-status', scopes['get-key-rotation-status'], KeyIdBody, RotationStatusResponse, async (body, res) => {
      const key = (await keyOf(s, res, body.key_id));
      return {
        key_rotation_enabled: key.rotationEnabled,
        rotation_interval: key.rotationIntervalDays,
        last_rotation_time: key.lastRotationAt === null ? '' : String(key.lastRotationAt),
        number_of_rotations: key.rotationCount,
      };
    }),
  ];
}
