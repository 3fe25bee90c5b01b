/**
 * Huawei Cloud / OTC KMS v1.0 under /v1.0/{project_id}/kms (token header `X-Auth-Token`). One
 * handler per vendor action; bodies are parsed with the schemas beside them.
 */
import { createHash } from 'node:crypto';
import { Router, type Response } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import { contextFromObject, type Context } from '../../kms/envelope/context';
import { isKeySpecName } from '../../kms/key-specs';
import type { KeyRecord } from '../../store/store';
import { authenticate, errorHandler, jsonBody, principalOf } from '../http';
import type { Services } from '../services';
import { compile } from '../validate';
import { renderHuaweiError } from './errors';
import { CreateDatakeyBody, CreateKeyBody, DecryptDatakeyBody } from './schemas';

const validateCreateKey = compile(CreateKeyBody);
const validateCreateDatakey = compile(CreateDatakeyBody);
const validateDecryptDatakey = compile(DecryptDatakeyBody);

const MAX_CONTEXT_CHARS = 8192;
const hex = (b: Buffer): string => b.toString('hex').toUpperCase();

function invalid(field: string, vendorCode: string, message: string): KmsError {
  return badRequest(message, { field, reason: 'invalid' }, vendorCode);
}

function encryptionContext(o: Readonly<Record<string, unknown>> | undefined): Context {
  if (o !== undefined && JSON.stringify(o).length > MAX_CONTEXT_CHARS) {
    throw invalid('encryption_context', 'KMS.0208', 'encryption_context is longer than 8192 characters.');
  }
  return contextFromObject(o);
}

/** Data key length in bytes from `datakey_length` (bits) or, when absent, `key_spec`. */
function datakeyBytes(lengthBits: string | undefined, keySpec: string | undefined): number {
  if (lengthBits !== undefined) {
    const bits = Number(lengthBits);
    if (bits < 8 || bits > 8192) throw invalid('datakey_length', 'KMS.1901', 'datakey_length must be in the range 8 bits to 8,192 bits.');
    if (bits % 8 !== 0) throw invalid('datakey_length', 'KMS.1903', 'datakey_length must be a multiple of 8.');
    return bits / 8;
  }
  if (keySpec === undefined) throw badRequest('Missing parameter: datakey_length.', { field: 'datakey_length', reason: 'missing' });
  if (keySpec === 'AES_128') return 16;
  if (keySpec === 'AES_256') return 32;
  throw invalid('key_spec', 'KMS.1902', 'key_spec can only be AES_128 or AES_256.');
}

export function huaweiRouter(s: Services): Router {
  const r = Router({ mergeParams: true });
  r.use(authenticate(s.tokens, 'x-auth-token'));
  r.use((req, res, next) => {
    // The path names the project; a token of another project may not act in it.
    if (req.params['project_id'] !== principalOf(res).projectId) {
      next(new KmsError('Forbidden', 'URIs in URL and X-Auth-Token do not match.', { vendorCode: 'KMS.0321' }));
      return;
    }
    next();
  });
  r.use(jsonBody());

  const keyOf = (res: Response, keyId: string): KeyRecord => {
    const project = principalOf(res).projectId;
    return keyId.startsWith('alias/') ? s.keys.byAlias(project, keyId.slice('alias/'.length)) : s.keys.byId(project, keyId);
  };

  const actions: Record<string, (body: unknown, res: Response) => Promise<unknown>> = {
    'create-key': async (raw, res) => {
      const body = validateCreateKey(raw);
      const principal = principalOf(res);
      if (!principal.admin) throw new KmsError('Forbidden', 'No access permissions.', { vendorCode: 'KMS.0306' });
      if (body.key_alias.endsWith('/default')) throw invalid('key_alias', 'KMS.1101', 'Invalid key_alias.');
      const spec = body.key_spec ?? 'AES_256';
      if (!isKeySpecName(spec)) throw invalid('key_spec', 'KMS.0308', 'key_spec must be AES_256 or RSA_2048.');
      if (spec === 'AES_256' && body.key_usage === 'SIGN_VERIFY') {
        throw invalid('key_usage', 'KMS.0308', 'AES_256 keys can only be used to encrypt and decrypt.');
      }
      const key = await s.keys.create({
        projectId: principal.projectId,
        alias: body.key_alias,
        description: body.key_description ?? '',
        spec,
        usage: body.key_usage ?? (spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ANY'),
        convergent: false,
      });
      return { key_info: { key_id: key.keyId, domain_id: key.projectId } };
    },

    'create-datakey': async (raw, res) => {
      const body = validateCreateDatakey(raw);
      const bytes = datakeyBytes(body.datakey_length, body.key_spec);
      const key = keyOf(res, body.key_id);
      const dk = await s.dataKeys.create(key, bytes, encryptionContext(body.encryption_context), {
        length: 'datakey_length',
        context: 'encryption_context',
      });
      return { key_id: key.keyId, plain_text: hex(dk.plaintext), cipher_text: hex(dk.ciphertext) };
    },

    'create-datakey-without-plaintext': async (raw, res) => {
      const body = validateCreateDatakey(raw);
      const bytes = datakeyBytes(body.datakey_length, body.key_spec);
      const key = keyOf(res, body.key_id);
      const dk = await s.dataKeys.create(key, bytes, encryptionContext(body.encryption_context), {
        length: 'datakey_length',
        context: 'encryption_context',
      });
      dk.plaintext.fill(0);
      return { key_id: key.keyId, cipher_text: hex(dk.ciphertext) };
    },

    'decrypt-datakey': async (raw, res) => {
      const body = validateDecryptDatakey(raw);
      const length = Number(body.datakey_cipher_length);
      if (length < 1 || length > 1024) throw invalid('datakey_cipher_length', 'KMS.0308', 'datakey_cipher_length must be 1 to 1024 bytes.');
      const key = keyOf(res, body.key_id);
      const { plaintext } = await s.crypto.open(
        key,
        Buffer.from(body.cipher_text, 'hex'),
        encryptionContext(body.encryption_context),
        'encryption_context',
      );
      if (plaintext.length !== length) {
        plaintext.fill(0);
        throw invalid('datakey_cipher_length', 'KMS.2204', 'The length of cipher_text does not match datakey_cipher_length.');
      }
      return {
        data_key: hex(plaintext),
        datakey_length: String(plaintext.length),
        datakey_dgst: hex(createHash('sha256').update(plaintext).digest()),
      };
    },
  };

  for (const [action, handle] of Object.entries(actions)) {
    r.post(`/${action}`, async (req, res) => {
      res.json(await handle(req.body, res));
    });
    r.all(`/${action}`, (_req, _res, next) => next(new KmsError('MethodNotAllowed', 'Request method not supported.')));
  }
  r.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'Invalid request URL.')));
  r.use(errorHandler(renderHuaweiError, s.log));
  return r;
}
