/**
 * NCP crypto routes: create-custom-key, encrypt, decrypt, re-encrypt, sign, verify, get-pub-key.
 * They need the crypto scope (get-pub-key: read); the key's state and version states are the domain's to
 * check (a disabled key or one pending deletion refuses every call).
 */
import type { SignInput } from '../../kms/signing';
import { route, type Route } from '../dispatch';
import { openerOf } from '../key-ref';
import { noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { parseNcp, parseNcpSignature, renderNcp } from './ciphertext';
import { base64Field, context, keyOf, ok } from './common';
import { CreateCustomKeyBody, DecryptBody, EncryptBody, GetPubKeyBody, ReEncryptBody, SignBody, VerifyBody } from './schemas';
import { CreateCustomKeyResponse, DecryptResponse, EncryptResponse, PublicKeyResponse, ReEncryptResponse, SignResponse, VerifyResponse } from './responses';

const MAX_PLAINTEXT_BYTES = 32 * 1024;
const MAX_SIGN_DATA_BYTES = 8 * 1024;
/** NCP names no signing algorithm: RSA2048 keys sign with PKCS#1 v1.5 over SHA-256 of the raw data. */
const SIGNING_ALGORITHM = 'RSASSA_PKCS1_V1_5_SHA_256';

/** Applies `f` to one value or to each of an array, in order; the answer has the same shape. */
async function each<T, U>(input: T | T[], f: (x: T) => Promise<U>): Promise<U | U[]> {
  if (!Array.isArray(input)) return f(input);
  const out: U[] = [];
  for (const x of input) out.push(await f(x));
  return out;
}

function signInput(data: string): SignInput {
  return { message: base64Field('data', data, MAX_SIGN_DATA_BYTES), algorithm: SIGNING_ALGORITHM, messageType: 'RAW' };
}

export function cryptoRoutes(s: Services): Route[] {
  // The vendor lists both spellings.
  const reEncrypt = (path: string) =>
    route({
      method: 'POST',
      path,
      operation: 're-encrypt',
      response: ReEncryptResponse,
      scope: 'crypto',
      body: ReEncryptBody,
      handle: async ({ body, params }, _req, res) => {
        const ctx = context(body.context);
        const key = (await keyOf(s, params, res));
        const ciphertext = await each(body.ciphertext, async (text) => {
          // Same key, same context, newest version: the plaintext never leaves the domain.
          const sealed = await s.crypto.reEncrypt(key, parseNcp(text), ctx, key, ctx, openerOf(res));
          return renderNcp(sealed.ciphertext, sealed.keyVersion);
        });
        ok(res, { ciphertext });
      },
    });

  return [
    route({
      method: 'POST',
      path: '/keys/:keyTag/create-custom-key',
      operation: 'create-custom-key',
      response: CreateCustomKeyResponse,
      scope: 'crypto',
      body: CreateCustomKeyBody,
      handle: async ({ body, params }, _req, res) => {
        const key = (await keyOf(s, params, res));
        const dk = await s.dataKeys.create(key, (body.bits ?? 256) / 8, context(body.context));
        noteVersion(res, dk.keyVersion);
        ok(res, {
          ...(body.requestPlainKey === true ? { plaintext: dk.plaintext.toString('base64') } : {}),
          ciphertext: renderNcp(dk.ciphertext, dk.keyVersion),
          key_version: dk.keyVersion,
        });
        dk.plaintext.fill(0);
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/encrypt',
      operation: 'encrypt',
      response: EncryptResponse,
      scope: 'crypto',
      body: EncryptBody,
      handle: async ({ body, params }, _req, res) => {
        // Every plaintext is checked before any is sealed.
        const plaintexts = Array.isArray(body.plaintext)
          ? body.plaintext.map((p) => base64Field('plaintext', p, MAX_PLAINTEXT_BYTES))
          : base64Field('plaintext', body.plaintext, MAX_PLAINTEXT_BYTES);
        const ctx = context(body.context);
        const key = (await keyOf(s, params, res));
        try {
          const ciphertext = await each(plaintexts, async (p) => {
            const sealed = await s.crypto.encrypt(key, p, ctx);
            return renderNcp(sealed.ciphertext, sealed.keyVersion);
          });
          ok(res, { ciphertext });
        } finally {
          for (const p of Array.isArray(plaintexts) ? plaintexts : [plaintexts]) p.fill(0);
        }
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/decrypt',
      operation: 'decrypt',
      response: DecryptResponse,
      scope: 'crypto',
      body: DecryptBody,
      handle: async ({ body, params }, _req, res) => {
        const ctx = context(body.context);
        const key = (await keyOf(s, params, res));
        const plaintext = await each(body.ciphertext, async (text) => {
          const opened = await s.crypto.open(key, parseNcp(text), ctx, openerOf(res));
          noteVersion(res, opened.keyVersion);
          const b64 = opened.plaintext.toString('base64');
          opened.plaintext.fill(0);
          return b64;
        });
        ok(res, { plaintext });
      },
    }),

    reEncrypt('/keys/:keyTag/re-encrypt'),
    reEncrypt('/keys/:keyTag/reencrypt'),

    route({
      method: 'POST',
      path: '/keys/:keyTag/sign',
      operation: 'sign',
      response: SignResponse,
      scope: 'crypto',
      body: SignBody,
      handle: async ({ body, params }, _req, res) => {
        const input = signInput(body.data);
        const key = (await keyOf(s, params, res));
        const { signature, keyVersion } = await s.signing.sign(key, input);
        noteVersion(res, keyVersion);
        ok(res, { signature: renderNcp(signature, keyVersion) });
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/verify',
      operation: 'verify',
      response: VerifyResponse,
      scope: 'crypto',
      body: VerifyBody,
      handle: async ({ body, params }, _req, res) => {
        const input = signInput(body.data);
        const { keyVersion, signature } = parseNcpSignature(body.signature);
        const key = (await keyOf(s, params, res));
        noteVersion(res, keyVersion);
        ok(res, { valid: await s.signing.verify(key, keyVersion, input, signature) });
      },
    }),

    route({
      method: 'POST',
      path: '/keys/:keyTag/get-pub-key',
      operation: 'get-pub-key',
      response: PublicKeyResponse,
      scope: 'read',
      body: GetPubKeyBody,
      handle: async ({ body, params }, _req, res) => {
        const key = (await keyOf(s, params, res));
        ok(res, { publicKey: await s.signing.publicKeyPem(key, body.keyVersion ?? key.currentVersion) });
      },
    }),
  ];
}
