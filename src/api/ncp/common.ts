/**
 * What every NCP handler shares: the success envelope, key lookup by keyTag (another project's key
 * reads exactly like a missing one), base64 fields, and the
 * vendor's names for key types and states.
 */
import type { Response } from 'express';
import { badRequest } from '../../errors/kms-error';
import { NO_CONTEXT, type Context } from '../../kms/envelope/context';
import { DAY_MS } from '../../kms/keys';
import type { KeySpecName } from '../../kms/key-specs';
import type { KeyRecord, KeyState, VersionState } from '../../store/store';
import { fromBase64 } from '../base64';
import { resolveKey } from '../key-ref';
import type { Services } from '../services';
import { compile } from '../validate';
import { KeyTagParam } from './schemas';

const validateKeyTag = compile(KeyTagParam);

export const MAX_CONTEXT_BYTES = 50;

export function ok(res: Response, data: unknown): void {
  res.json({ code: 'SUCCESS', data });
}

/** `context` as bytes: absent is no context. */
export function context(text: string | undefined): Context {
  if (text === undefined) return NO_CONTEXT;
  const bytes = fromBase64(text);
  if (!bytes || bytes.length > MAX_CONTEXT_BYTES) {
    throw badRequest('context must be base64 of at most 50 bytes.', { field: 'context', reason: 'invalid' });
  }
  return bytes;
}

/** A base64 field already matched against BASE64, decoded strictly, at most `max` bytes. */
export function base64Field(field: string, text: string, max: number): Buffer {
  const bytes = fromBase64(text);
  if (!bytes) throw badRequest(`Invalid parameter: ${field}.`, { field, reason: 'invalid' });
  if (bytes.length > max) throw badRequest(`${field} is too long.`, { field, reason: 'too-long' });
  return bytes;
}

/**
 * The key named by the `keyTag` path parameter: a key of the caller's project (NCP has no grants,
 * so another project's key always reads as missing).
 */
export async function keyOf(s: Services, params: Readonly<Record<string, string>>, res: Response): Promise<KeyRecord> {
  const tag = params['keyTag'];
  try {
    validateKeyTag(tag);
  } catch {
    throw badRequest('Invalid keyTag.', { field: 'keyTag', reason: 'invalid' });
  }
  return resolveKey(s, res, { keyTag: String(tag) }, { grants: false });
}

export type NcpKeyType = 'AES256' | 'RSA2048';

export function specOf(type: NcpKeyType): KeySpecName {
  return type === 'AES256' ? 'AES_256' : 'RSA_2048';
}

export function keyType(spec: KeySpecName): NcpKeyType {
  return spec === 'AES_256' ? 'AES256' : 'RSA2048';
}

export function keyStatus(state: KeyState): 'ENABLE' | 'DISABLE' | 'REVOKE' {
  if (state === 'Enabled') return 'ENABLE';
  if (state === 'Disabled') return 'DISABLE';
  // PendingDeletion (a Deleted key is never found, so never shown).
  return 'REVOKE';
}

export function versionStatus(state: VersionState): 'ENABLE' | 'DISABLE' {
  return state === 'Enabled' ? 'ENABLE' : 'DISABLE';
}

/** Every key lives in the token, so every key is reported as HSM-protected. */
export const PROTECTION_TYPE = 'COMMON_HSM';

/** When the sweep rotates the key next: rotationPeriod days after the last rotation (or creation); null without auto rotation. */
export function nextRotationDate(key: KeyRecord): number | null {
  return key.rotationEnabled ? (key.lastRotationAt ?? key.createdAt) + key.rotationIntervalDays * DAY_MS : null;
}

/** One item of Get Key List's `keyList`. */
export function keyListItem(key: KeyRecord) {
  return {
    keyId: key.num,
    keyTag: key.keyTag,
    keyName: key.alias,
    keyType: keyType(key.spec),
    status: keyStatus(key.state),
    protectionType: PROTECTION_TYPE,
    isConvergent: key.convergent,
    registerDate: key.createdAt,
    destroyDate: key.deletionDate,
  };
}

/** Get Key Info's `data` (also Create Key's): the list item plus versions, rotation and memo. */
export function keyInfo(key: KeyRecord) {
  return {
    ...keyListItem(key),
    currentVersion: key.currentVersion,
    isAutoRotation: key.rotationEnabled,
    rotationPeriod: key.rotationIntervalDays,
    nextRotationDate: nextRotationDate(key),
    memo: key.description,
  };
}

/** The answer of the calls that change auto-rotation settings. */
export function rotationInfo(key: KeyRecord) {
  return {
    keyTag: key.keyTag,
    isAutoRotation: key.rotationEnabled,
    rotationPeriod: key.rotationIntervalDays,
    nextRotationDate: nextRotationDate(key),
  };
}
