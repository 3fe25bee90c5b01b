/**
 * What every AWS handler shares: key references (id, key ARN, alias name, alias ARN), KeyMetadata,
 * base64 blobs, epoch-second timestamps, Limit/Marker paging and the answer's content type.
 */
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import { badRequest, notFound, type KmsError } from '../../errors/kms-error';
import type { KeySpecName } from '../../kms/key-specs';
import { ENCRYPTION_ALGORITHMS } from '../../kms/crypto';
import { SIGNING_ALGORITHMS } from '../../kms/signing';
import type { KeyRecord } from '../../store/store';
import { fromBase64 } from '../base64';
import { principalOf } from '../http';
import { resolveKey } from '../key-ref';
import type { Services } from '../services';
import { accountOf } from './credentials';

export const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** The service's one region (KMS_AWS_REGION) and how ARNs are spelled in it. */
export interface AwsNames {
  readonly region: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ARN = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/;
/** `alias/` and a name AWS accepts; `alias/aws/` is AWS's own and never a customer's. */
export const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

export function keyArn(names: AwsNames, key: KeyRecord): string {
  return `arn:aws:kms:${names.region}:${accountOf(key.projectId)}:key/${key.keyId}`;
}

export function aliasArn(names: AwsNames, projectId: string, aliasName: string): string {
  return `arn:aws:kms:${names.region}:${accountOf(projectId)}:${aliasName}`;
}

/**
 * The store keeps one alias per key, which other dialects require: a key made here without one
 * gets `aws:<uuid>`, which no AWS alias name can spell (they have no ':'). A key's AWS alias is
 * `alias/<its alias>` when that is a valid alias name: a key named in another dialect has one.
 */
export function aliasOf(key: KeyRecord): string | undefined {
  const name = `alias/${key.alias}`;
  return ALIAS_NAME.test(name) ? name : undefined;
}

export const unaliased = (): string => `aws:${randomUUID()}`;

/**
 * The key `text` names (key id, key ARN, alias name or alias ARN), as the caller may use it for the
 * route's operation (or `operation`, for ReEncrypt's two keys). An ARN of another region or
 * account than the key's reads as a missing key, as does anything malformed.
 */
export async function keyOf(s: Services, names: AwsNames, res: Response, text: string, operation?: string): Promise<KeyRecord> {
  const project = principalOf(res).projectId;
  const withOp = operation === undefined ? undefined : { grants: true, operation };
  if (UUID.test(text)) return resolveKey(s, res, { keyId: text }, withOp);
  if (text.startsWith('alias/')) return resolveKey(s, res, { alias: aliasPart(text) }, withOp);
  const m = ARN.exec(text);
  if (!m || m[1] !== names.region) throw notFound();
  if (m[3] === 'alias') {
    if (m[2] !== accountOf(project)) throw notFound();
    return resolveKey(s, res, { alias: aliasPart(`alias/${m[4]!}`) }, withOp);
  }
  if (!UUID.test(m[4]!)) throw notFound();
  const key = await resolveKey(s, res, { keyId: m[4]! }, withOp);
  if (accountOf(key.projectId) !== m[2]) throw notFound();
  return key;
}

/** The stored alias for `alias/<name>` (a malformed alias name names no key). */
function aliasPart(aliasName: string): string {
  if (!ALIAS_NAME.test(aliasName)) throw notFound();
  return aliasName.slice('alias/'.length);
}

/** An alias name a caller may create: `alias/…`, not AWS's own `alias/aws/…`. */
export function customAliasName(text: string): string {
  if (!ALIAS_NAME.test(text) || text.startsWith('alias/aws/')) {
    throw badRequest('Alias must start with alias/, contain only a-z A-Z 0-9 / _ -, and not start with alias/aws/.', { field: 'AliasName', subject: 'alias', reason: 'invalid' });
  }
  return text.slice('alias/'.length);
}

/** Seconds since the epoch, as AWS's JSON protocol sends timestamps. */
export const epoch = (ms: number): number => ms / 1000;

export function blob(field: string, text: string, max: number): Buffer {
  const b = fromBase64(text);
  if (!b || b.length === 0 || b.length > max) throw badRequest(`${field} must be base64 of 1 to ${max} bytes.`, { field, reason: 'invalid' });
  return b;
}

export const AWS_KEY_SPEC: Readonly<Record<KeySpecName, string>> = { AES_256: 'SYMMETRIC_DEFAULT', RSA_2048: 'RSA_2048' };

/** The AWS key usage: an RSA key usable for both (another dialect's default) reads as SIGN_VERIFY, as Huawei shows it. */
export function keyUsage(key: KeyRecord): 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' {
  return key.spec === 'AES_256' || key.usage === 'ENCRYPT_DECRYPT' ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY';
}

export function encryptionAlgorithms(key: KeyRecord): string[] | undefined {
  if (key.spec === 'AES_256') return ['SYMMETRIC_DEFAULT'];
  return key.usage === 'SIGN_VERIFY' ? undefined : ENCRYPTION_ALGORITHMS.filter((a) => a !== 'SYMMETRIC_DEFAULT');
}

export function signingAlgorithms(key: KeyRecord): string[] | undefined {
  return key.spec === 'AES_256' || key.usage === 'ENCRYPT_DECRYPT' ? undefined : [...SIGNING_ALGORITHMS];
}

export function keyMetadata(names: AwsNames, key: KeyRecord) {
  const enc = encryptionAlgorithms(key);
  const sig = signingAlgorithms(key);
  return {
    AWSAccountId: accountOf(key.projectId),
    KeyId: key.keyId,
    Arn: keyArn(names, key),
    CreationDate: epoch(key.createdAt),
    Enabled: key.state === 'Enabled',
    Description: key.description,
    KeyUsage: keyUsage(key),
    KeyState: key.state,
    ...(key.state === 'PendingDeletion' && key.deletionDate !== null ? { DeletionDate: epoch(key.deletionDate) } : {}),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: AWS_KEY_SPEC[key.spec],
    KeySpec: AWS_KEY_SPEC[key.spec],
    ...(enc ? { EncryptionAlgorithms: enc } : {}),
    ...(sig ? { SigningAlgorithms: sig } : {}),
    MultiRegion: false,
  };
}

/** A page of `all` from Limit/Marker: the marker is the offset this service handed out. */
export function page<T>(all: readonly T[], limit: number | undefined, marker: string | undefined, maxLimit: number, defaultLimit: number) {
  const offset = marker === undefined ? 0 : Number(marker);
  if (marker !== undefined && (!/^[0-9]{1,10}$/.test(marker) || offset > all.length)) {
    throw badRequest('Invalid marker.', { field: 'Marker', subject: 'marker', reason: 'invalid' });
  }
  const n = Math.min(limit ?? defaultLimit, maxLimit);
  const items = all.slice(offset, offset + n);
  const next = offset + items.length;
  const truncated = next < all.length;
  return { items, truncated, ...(truncated ? { nextMarker: String(next) } : {}) };
}

/** Refuses a field or value of a feature this service does not serve (UnsupportedOperationException). */
export function unsupportedFeature(field: string, message: string): KmsError {
  return badRequest(message, { field, subject: 'feature', reason: 'invalid' });
}

export function reply(res: Response, body: unknown): void {
  res.setHeader('Content-Type', CONTENT_TYPE);
  res.end(JSON.stringify(body));
}
