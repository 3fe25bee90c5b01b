/**
 * AWS key management: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey,
 * DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, aliases, tags and rotation. Every rule
 * (states, rotation, tags, deletion windows' effect) is the domain's; this file only reads AWS's
 * fields and writes AWS's answers.
 */
import { badRequest, KmsError } from '../../errors/kms-error';
import type { RotationPolicy } from '../../kms/key-rules';
import { MAX_TAGS_PER_KEY } from '../../kms/keys';
import type { KeyRecord } from '../../store/store';
import type { Route } from '../dispatch';
import { principalOf } from '../http';
import type { Services } from '../services';
import { aliasArn, aliasOf, customAliasName, epoch, keyArn, keyMetadata, keyOf, page, unaliased, unsupportedFeature, type AwsNames } from './common';
import { operation } from './operation';
import {
  AliasBody,
  CreateKeyBody,
  DeleteAliasBody,
  EnableKeyRotationBody,
  KeyIdBody,
  ListAliasesBody,
  ListKeysBody,
  ListPagedByKeyBody,
  ScheduleKeyDeletionBody,
  TagResourceBody,
  UntagResourceBody,
  UpdateKeyDescriptionBody,
} from './schemas';
import { Empty, KeyArnResponse, KeyMetadataResponse, KeyRotationStatusResponse, ListAliasesResponse, ListKeyRotationsResponse, ListKeysResponse, ListResourceTagsResponse, ScheduleKeyDeletionResponse } from './responses';

/** AWS rotates enabled symmetric keys; enabling rotation that is on just sets its period. */
const ROTATION: RotationPolicy = { asymmetric: false, whileDisabled: false, idempotent: true };
const DEFAULT_ROTATION_DAYS = 365;
const DEFAULT_DELETION_DAYS = 30;
/** Every key of a project, for the listings AWS filters (aliases): far above any project's count. */
const ALL = { offset: 0, limit: 1_000_000 };

function tags(list: ReadonlyArray<{ TagKey: string; TagValue: string }>) {
  if (list.length > MAX_TAGS_PER_KEY) throw new KmsError('UnsupportedOperation', `A key can have at most ${MAX_TAGS_PER_KEY} tags.`, { stateRule: 'too-many-tags' });
  for (const t of list) {
    if (t.TagKey.startsWith('aws:')) throw badRequest('Tag keys starting with aws: are reserved.', { field: 'Tags', subject: 'tag', reason: 'invalid' });
  }
  return list.map((t) => ({ key: t.TagKey, value: t.TagValue }));
}

/** Idempotent state changes: AWS answers success when the key is already in the asked state. */
async function idempotent(change: Promise<unknown>, rule: 'not-disabled' | 'not-enabled'): Promise<void> {
  try {
    await change;
  } catch (e) {
    if (!(e instanceof KmsError && e.code === 'InvalidState' && e.stateRule === rule)) throw e;
  }
}

export function keyRoutes(s: Services, names: AwsNames): Route[] {
  const key = (res: Parameters<typeof keyOf>[2], text: string) => keyOf(s, names, res, text);
  /** A key that has no AWS alias yet, for an alias to point at (one alias per key here). */
  const aliasFree = (k: KeyRecord): KeyRecord => {
    if (aliasOf(k) !== undefined) throw new KmsError('UnsupportedOperation', 'The key already has an alias; this service keeps one alias per key.', { stateRule: 'too-many-aliases' });
    return k;
  };
  const byAlias = (res: Parameters<typeof keyOf>[2], aliasName: string): Promise<KeyRecord> => {
    const name = customAliasName(aliasName);
    return key(res, `alias/${name}`);
  };

  return [
    operation('CreateKey', 'admin', CreateKeyBody, KeyMetadataResponse, async (body, res) => {
      if (body.Policy !== undefined) throw unsupportedFeature('Policy', 'Key policies are not supported: access is by project and token scope.');
      if (body.CustomKeyStoreId !== undefined || body.XksKeyId !== undefined) throw unsupportedFeature('CustomKeyStoreId', 'Custom key stores are not supported.');
      if (body.MultiRegion === true) throw unsupportedFeature('MultiRegion', 'Multi-Region keys are not supported.');
      if (body.Origin !== undefined && body.Origin !== 'AWS_KMS') throw unsupportedFeature('Origin', 'Only Origin AWS_KMS (key material made in the HSM) is supported.');
      const spec = body.KeySpec ?? body.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
      if (spec !== 'SYMMETRIC_DEFAULT' && spec !== 'RSA_2048') throw unsupportedFeature('KeySpec', 'KeySpec must be SYMMETRIC_DEFAULT or RSA_2048.');
      const usage = body.KeyUsage ?? 'ENCRYPT_DECRYPT';
      if (usage !== 'ENCRYPT_DECRYPT' && (usage !== 'SIGN_VERIFY' || spec !== 'RSA_2048')) {
        throw badRequest('KeyUsage must be ENCRYPT_DECRYPT, or SIGN_VERIFY for an RSA_2048 key.', { field: 'KeyUsage', reason: 'invalid' });
      }
      const wanted = tags(body.Tags ?? []);
      const created = await s.keys.create({
        projectId: principalOf(res).projectId,
        alias: unaliased(),
        description: body.Description ?? '',
        spec: spec === 'RSA_2048' ? 'RSA_2048' : 'AES_256',
        usage,
        convergent: false,
      });
      if (wanted.length > 0) await s.keys.changeTags(created, wanted, []);
      return { KeyMetadata: keyMetadata(names, created) };
    }),

    operation('DescribeKey', 'read', KeyIdBody, KeyMetadataResponse, async (body, res) => ({ KeyMetadata: keyMetadata(names, await key(res, body.KeyId)) })),

    operation('ListKeys', 'read', ListKeysBody, ListKeysResponse, async (body, res) => {
      const offset = body.Marker === undefined ? 0 : Number(body.Marker);
      if (body.Marker !== undefined && !/^[0-9]{1,10}$/.test(body.Marker)) throw badRequest('Invalid marker.', { field: 'Marker', subject: 'marker', reason: 'invalid' });
      const limit = body.Limit ?? 100;
      const found = await s.keys.list(principalOf(res).projectId, { offset, limit });
      const next = offset + found.keys.length;
      const truncated = next < found.total;
      return { Keys: found.keys.map((k) => ({ KeyId: k.keyId, KeyArn: keyArn(names, k) })), Truncated: truncated, ...(truncated ? { NextMarker: String(next) } : {}) };
    }),

    operation('UpdateKeyDescription', 'admin', UpdateKeyDescriptionBody, Empty, async (body, res) => {
      await s.keys.updateDescription(await key(res, body.KeyId), body.Description);
      return {};
    }),

    operation('EnableKey', 'admin', KeyIdBody, Empty, async (body, res) => {
      await idempotent(s.keys.enable(await key(res, body.KeyId)), 'not-disabled');
      return {};
    }),

    operation('DisableKey', 'admin', KeyIdBody, Empty, async (body, res) => {
      await idempotent(s.keys.disable(await key(res, body.KeyId)), 'not-enabled');
      return {};
    }),

    operation('ScheduleKeyDeletion', 'admin', ScheduleKeyDeletionBody, ScheduleKeyDeletionResponse, async (body, res) => {
      const days = body.PendingWindowInDays ?? DEFAULT_DELETION_DAYS;
      const k = await s.keys.scheduleDeletion(await key(res, body.KeyId), days);
      return { KeyId: keyArn(names, k), DeletionDate: epoch(k.deletionDate ?? 0), KeyState: k.state, PendingWindowInDays: days };
    }),

    operation('CancelKeyDeletion', 'admin', KeyIdBody, KeyArnResponse, async (body, res) => {
      const k = await s.keys.cancelDeletion(await key(res, body.KeyId));
      return { KeyId: keyArn(names, k) };
    }),

    operation('CreateAlias', 'admin', AliasBody, Empty, async (body, res) => {
      const name = customAliasName(body.AliasName);
      const target = aliasFree(await key(res, body.TargetKeyId));
      await s.keys.updateAlias(target, name);
      return {};
    }),

    operation('UpdateAlias', 'admin', AliasBody, Empty, async (body, res) => {
      const current = await byAlias(res, body.AliasName);
      const target = await key(res, body.TargetKeyId);
      if (target.keyId === current.keyId) return {};
      aliasFree(target);
      const name = current.alias;
      await s.keys.updateAlias(current, unaliased());
      try {
        await s.keys.updateAlias(target, name);
      } catch (e) {
        // The alias goes back where it was: a refused update changes nothing.
        await s.keys.updateAlias(current, name);
        throw e;
      }
      return {};
    }),

    operation('DeleteAlias', 'admin', DeleteAliasBody, Empty, async (body, res) => {
      await s.keys.updateAlias(await byAlias(res, body.AliasName), unaliased());
      return {};
    }),

    operation('ListAliases', 'read', ListAliasesBody, ListAliasesResponse, async (body, res) => {
      const project = principalOf(res).projectId;
      const only = body.KeyId === undefined ? undefined : (await key(res, body.KeyId)).keyId;
      const all = (await s.keys.list(project, ALL)).keys
        .filter((k) => (only === undefined || k.keyId === only) && aliasOf(k) !== undefined)
        .map((k) => {
          const aliasName = aliasOf(k)!;
          return { AliasName: aliasName, AliasArn: aliasArn(names, project, aliasName), TargetKeyId: k.keyId };
        });
      const p = page(all, body.Limit, body.Marker, 1000, 50);
      return { Aliases: p.items, Truncated: p.truncated, ...(p.nextMarker ? { NextMarker: p.nextMarker } : {}) };
    }),

    operation('TagResource', 'admin', TagResourceBody, Empty, async (body, res) => {
      await s.keys.changeTags(await key(res, body.KeyId), tags(body.Tags), []);
      return {};
    }),

    operation('UntagResource', 'admin', UntagResourceBody, Empty, async (body, res) => {
      await s.keys.changeTags(await key(res, body.KeyId), [], body.TagKeys);
      return {};
    }),

    operation('ListResourceTags', 'read', ListPagedByKeyBody, ListResourceTagsResponse, async (body, res) => {
      const all = (await s.keys.tags(await key(res, body.KeyId))).map((t) => ({ TagKey: t.key, TagValue: t.value }));
      const p = page(all, body.Limit, body.Marker, 50, 50);
      return { Tags: p.items, Truncated: p.truncated, ...(p.nextMarker ? { NextMarker: p.nextMarker } : {}) };
    }),

    operation('EnableKeyRotation', 'admin', EnableKeyRotationBody, Empty, async (body, res) => {
      const k = await key(res, body.KeyId);
      const days = body.RotationPeriodInDays ?? (k.rotationEnabled ? undefined : DEFAULT_ROTATION_DAYS);
      await s.keys.setAutoRotation(k, true, ROTATION, days);
      return {};
    }),

    operation('DisableKeyRotation', 'admin', KeyIdBody, Empty, async (body, res) => {
      await s.keys.setAutoRotation(await key(res, body.KeyId), false, ROTATION);
      return {};
    }),

    operation('GetKeyRotationStatus', 'read', KeyIdBody, KeyRotationStatusResponse, async (body, res) => {
      const k = await key(res, body.KeyId);
      const next = (k.lastRotationAt ?? k.createdAt) + k.rotationIntervalDays * 86_400_000;
      return {
        KeyRotationEnabled: k.rotationEnabled,
        KeyId: keyArn(names, k),
        ...(k.rotationEnabled ? { RotationPeriodInDays: k.rotationIntervalDays, NextRotationDate: epoch(next) } : {}),
      };
    }),

    operation('RotateKeyOnDemand', 'admin', KeyIdBody, KeyArnResponse, async (body, res) => {
      const k = await s.keys.rotate(await key(res, body.KeyId), ROTATION);
      return { KeyId: keyArn(names, k) };
    }),

    operation('ListKeyRotations', 'read', ListPagedByKeyBody, ListKeyRotationsResponse, async (body, res) => {
      const k = await key(res, body.KeyId);
      // Every version after the first is one rotation; which kind (automatic or on demand) is not recorded.
      const all = (await s.keys.versions(k))
        .filter((v) => v.version > 1)
        .sort((a, b) => a.version - b.version)
        .map((v) => ({ KeyId: keyArn(names, k), RotationDate: epoch(v.createdAt) }));
      const p = page(all, body.Limit, body.Marker, 1000, 100);
      return { Rotations: p.items, Truncated: p.truncated, ...(p.nextMarker ? { NextMarker: p.nextMarker } : {}) };
    }),
  ];
}
