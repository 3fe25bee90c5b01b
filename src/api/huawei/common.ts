/** What every Huawei handler shares: field errors with the vendor's codes, key lookup, key_info. */
import type { Response } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import { contextFromObject, type Context } from '../../kms/envelope/context';
import type { KeyRecord, KeyState } from '../../store/store';
import { principalOf } from '../http';
import { noteKey } from '../middleware/audit';
import type { Services } from '../services';

/** A handler of one `POST /kms/<action>`: the parsed JSON body in, the JSON answer out. */
export type Action = (body: unknown, res: Response) => Promise<unknown>;

const MAX_CONTEXT_CHARS = 8192;

/** Realm (region) reported in key_info: this service has one. */
export const REALM = 'p11kms';

export const hex = (b: Buffer): string => b.toString('hex').toUpperCase();

export function invalid(field: string, vendorCode: string, message: string): KmsError {
  return badRequest(message, { field, reason: 'invalid' }, vendorCode);
}

export function encryptionContext(o: Readonly<Record<string, unknown>> | undefined): Context {
  if (o !== undefined && JSON.stringify(o).length > MAX_CONTEXT_CHARS) {
    throw invalid('encryption_context', 'KMS.0208', 'encryption_context is longer than 8192 characters.');
  }
  return contextFromObject(o);
}

/** A whole number from a decimal string already checked by the schema's digit pattern. */
export function decimal(text: string, min: number, max: number, field: string, vendorCode: string, message: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(field, vendorCode, message);
  return n;
}

/**
 * The key a request names (id or `alias/<name>`) for the route's operation: a key of the caller's
 * project, or another project's key by id when a grant gives the caller that operation on it; any
 * other key reads as missing. Noted for the audit record.
 */
export async function keyOf(s: Services, res: Response, keyId: string): Promise<KeyRecord> {
  const project = principalOf(res).projectId;
  const op: unknown = res.locals['operation'];
  const ref = keyId.startsWith('alias/') ? { alias: keyId.slice('alias/'.length) } : { keyId };
  const key = await s.keys.forOperation(project, ref, typeof op === 'string' ? op : '');
  noteKey(res, key);
  return key;
}

/** Key changes other than cancelling deletion are refused while the key waits to be deleted (KMS.0210). */
export function notPendingDeletion(key: KeyRecord): void {
  if (key.state === 'PendingDeletion') throw new KmsError('KeyPendingDeletion', 'The key is in Scheduled deletion state and cannot be used.');
}

/** Huawei's key_state codes: 1 pending activation, 2 enabled, 3 disabled, 4 pending deletion, 5 pending import. */
export const STATE_CODE: Readonly<Record<KeyState, string>> = { Enabled: '2', Disabled: '3', PendingDeletion: '4', Deleted: '4' };
export const STATE_OF_CODE: Readonly<Record<string, KeyState | undefined>> = { '2': 'Enabled', '3': 'Disabled', '4': 'PendingDeletion' };

/** The vendor's key_info / key_details item, numbers and timestamps (ms) as strings like its examples. */
export function keyInfo(key: KeyRecord) {
  return {
    key_id: key.keyId,
    domain_id: key.projectId,
    key_alias: key.alias,
    realm: REALM,
    key_spec: key.spec,
    // An RSA key usable for both (p11kms's default) reads as the vendor's asymmetric default.
    key_usage: key.spec === 'AES_256' || key.usage === 'ENCRYPT_DECRYPT' ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY',
    key_description: key.description,
    creation_date: String(key.createdAt),
    scheduled_deletion_date: key.state === 'PendingDeletion' && key.deletionDate !== null ? String(key.deletionDate) : '',
    key_state: STATE_CODE[key.state],
    default_key_flag: '0',
    key_type: '1',
    expiration_time: '',
    origin: 'kms',
    key_rotation_enabled: String(key.rotationEnabled),
  };
}
