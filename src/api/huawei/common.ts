/** What every Huawei handler shares: the action route, field errors, key lookup, key_info. */
import type { Static, TSchema } from '@sinclair/typebox';
import type { Response } from 'express';
import { badRequest, type BadRequestRule, type KmsError } from '../../errors/kms-error';
import type { Scope } from '../../kms/api-tokens';
import { contextFromObject, type Context } from '../../kms/envelope/context';
import type { KeyRecord, KeyState } from '../../store/store';
import { route, type Route } from '../dispatch';
import { resolveKey } from '../key-ref';
import type { Services } from '../services';

const MAX_CONTEXT_CHARS = 8192;

/** Realm (region) reported in key_info: this service has one. */
export const REALM = 'p11kms';

export const hex = (b: Buffer): string => b.toString('hex').toUpperCase();

/** One `POST /<action>`: its body checked by `body`, its answer the handler's JSON, described by `response` (responses.ts). */
export function action<B extends TSchema, R extends TSchema>(
  name: string,
  scope: Scope,
  body: B,
  response: R,
  handle: (body: Static<B>, res: Response) => Promise<Static<R>>,
): Route {
  return route({
    method: 'POST',
    path: `/${name}`,
    operation: name,
    scope,
    body,
    response,
    handle: async (input, _req, res) => {
      res.json(await handle(input.body as Static<B>, res));
    },
  });
}

/** An invalid value of a field; errors.ts picks the vendor's code from the field and the rule. */
export function invalid(field: string, message: string, rule?: BadRequestRule): KmsError {
  return badRequest(message, { field, reason: 'invalid', ...(rule ? { rule } : {}) });
}

export function encryptionContext(o: Readonly<Record<string, unknown>> | undefined): Context {
  if (o !== undefined && JSON.stringify(o).length > MAX_CONTEXT_CHARS) {
    throw invalid('encryption_context', 'encryption_context is longer than 8192 characters.');
  }
  return contextFromObject(o);
}

/** A whole number from a decimal string already checked by the schema's digit pattern. */
export function decimal(text: string, min: number, max: number, field: string, message: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(field, message);
  return n;
}

/** The key a request names: a key id or `alias/<name>`. */
export function keyOf(s: Services, res: Response, keyId: string): Promise<KeyRecord> {
  return resolveKey(s, res, keyId.startsWith('alias/') ? { alias: keyId.slice('alias/'.length) } : { keyId });
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
