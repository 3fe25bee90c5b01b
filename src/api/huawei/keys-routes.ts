/**
 * Huawei key management actions: create, describe, list, enable/disable, scheduled deletion, alias
 * and description, rotation settings. Scopes are declared in routes.ts (changes: admin; describe,
 * list and rotation status: read).
 */
import { invalidState } from '../../errors/kms-error';
import { assertEnabled } from '../../kms/crypto';
import { isKeySpecName } from '../../kms/key-specs';
import { rotationCapable } from '../../kms/keys';
import { principalOf } from '../http';
import { noteKey } from '../middleware/audit';
import type { Services } from '../services';
import { compile } from '../validate';
import { decimal, invalid, keyInfo, keyOf, notPendingDeletion, STATE_CODE, STATE_OF_CODE, type Action } from './common';
import { CreateKeyBody, KeyIdBody, ListKeysBody, RotationIntervalBody, ScheduleDeletionBody, UpdateAliasBody, UpdateDescriptionBody } from './schemas';

const validateCreateKey = compile(CreateKeyBody);
const validateKeyId = compile(KeyIdBody);
const validateListKeys = compile(ListKeysBody);
const validateSchedule = compile(ScheduleDeletionBody);
const validateAlias = compile(UpdateAliasBody);
const validateDescription = compile(UpdateDescriptionBody);
const validateInterval = compile(RotationIntervalBody);

export const MAX_LIST_LIMIT = 1000;

/** Aliases ending in /default name the cloud's default master keys; a custom key may not take one. */
function customAlias(alias: string): string {
  if (alias.endsWith('/default')) throw invalid('key_alias', 'KMS.1101', 'Invalid key_alias.');
  return alias;
}

export function keyActions(s: Services): Record<string, Action> {
  return {
    'create-key': async (raw, res) => {
      const body = validateCreateKey(raw);
      const alias = customAlias(body.key_alias);
      const spec = body.key_spec ?? 'AES_256';
      if (!isKeySpecName(spec)) throw invalid('key_spec', 'KMS.0308', 'key_spec must be AES_256 or RSA_2048.');
      if (spec === 'AES_256' && body.key_usage === 'SIGN_VERIFY') {
        throw invalid('key_usage', 'KMS.0308', 'AES_256 keys can only be used to encrypt and decrypt.');
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
    },

    'describe-key': async (raw, res) => {
      const body = validateKeyId(raw);
      return { key_info: keyInfo(await keyOf(s, res, body.key_id)) };
    },

    'list-keys': async (raw, res) => {
      const body = validateListKeys(raw);
      const limit = body.limit === undefined ? MAX_LIST_LIMIT : decimal(body.limit, 1, MAX_LIST_LIMIT, 'limit', 'KMS.1601', 'Invalid limit.');
      const offset = body.marker === undefined ? 0 : decimal(body.marker, 0, Number.MAX_SAFE_INTEGER, 'marker', 'KMS.1602', 'marker must be greater than or equals 0.');
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
    },

    'enable-key': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = await s.keys.enable(await keyOf(s, res, body.key_id));
      return { key_info: { key_id: key.keyId, key_state: STATE_CODE[key.state] } };
    },

    'disable-key': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = await s.keys.disable(await keyOf(s, res, body.key_id));
      return { key_info: { key_id: key.keyId, key_state: STATE_CODE[key.state] } };
    },

    'schedule-key-deletion': async (raw, res) => {
      const body = validateSchedule(raw);
      const days = decimal(body.pending_days, 7, 1096, 'pending_days', 'KMS.1401', 'Set the pending deletion period between 7 to 1096 days.');
      const key = await s.keys.scheduleDeletion(await keyOf(s, res, body.key_id), days);
      return { key_id: key.keyId, key_state: STATE_CODE[key.state] };
    },

    'cancel-key-deletion': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = await s.keys.cancelDeletion(await keyOf(s, res, body.key_id));
      return { key_id: key.keyId, key_state: STATE_CODE[key.state] };
    },

    'update-key-alias': async (raw, res) => {
      const body = validateAlias(raw);
      const alias = customAlias(body.key_alias);
      const found = await keyOf(s, res, body.key_id);
      notPendingDeletion(found);
      const key = await s.keys.updateAlias(found, alias);
      return { key_info: { key_id: key.keyId, key_alias: key.alias } };
    },

    'update-key-description': async (raw, res) => {
      const body = validateDescription(raw);
      const found = await keyOf(s, res, body.key_id);
      notPendingDeletion(found);
      const key = await s.keys.updateDescription(found, body.key_description);
      return { key_info: { key_id: key.keyId, key_description: key.description } };
    },

    'enable-key-rotation': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = rotatable(await keyOf(s, res, body.key_id));
      if (key.rotationEnabled) throw invalidState('rotation-not-disabled', 'Key rotation is not disabled.');
      await s.keys.setRotation(key, { enabled: true });
      return {};
    },

    'disable-key-rotation': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = rotatable(await keyOf(s, res, body.key_id));
      if (!key.rotationEnabled) throw invalidState('rotation-not-enabled', 'Key rotation is not enabled.');
      await s.keys.setRotation(key, { enabled: false });
      return {};
    },

    'update-key-rotation-interval': async (raw, res) => {
      const body = validateInterval(raw);
      const key = rotatable(await keyOf(s, res, body.key_id));
      if (!key.rotationEnabled) throw invalidState('rotation-not-enabled', 'Key rotation is not enabled.');
      await s.keys.setRotation(key, { intervalDays: body.rotation_interval });
      return {};
    },

    'get-key-rotation-status': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = await keyOf(s, res, body.key_id);
      return {
        key_rotation_enabled: key.rotationEnabled,
        rotation_interval: key.rotationIntervalDays,
        last_rotation_time: key.lastRotationAt === null ? '' : String(key.lastRotationAt),
        number_of_rotations: key.rotationCount,
      };
    },
  };
}

/** Rotation settings change only for an enabled AES key (RSA keys: KMS.0324). */
function rotatable<K extends Parameters<typeof rotationCapable>[0]>(key: K): K {
  rotationCapable(key);
  assertEnabled(key);
  return key;
}
