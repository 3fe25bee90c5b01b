/**
 * NCP crypto routes: create-custom-key, encrypt, decrypt, re-encrypt, sign, verify, get-pub-key,
 * keyed by method and path for routes.ts's table.
 * They need the crypto scope (get-pub-key: read); the key's state and version states are the domain's to
 * check (a disabled key or one pending deletion refuses every call).
 */
import type { Fields } from '../../kms/crypto';
import type { SignInput } from '../../kms/signing';
import type { Route } from '../http';
import { noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { compile } from '../validate';
import { parseNcp, parseNcpSignature, renderNcp } from './ciphertext';
import { base64Field, context, keyOf, ok, route } from './common';
import { CreateCustomKeyBody, DecryptBody, EncryptBody, GetPubKeyBody, ReEncryptBody, SignBody, VerifyBody } from './schemas';

const validateCreateCustomKey = compile(CreateCustomKeyBody);
const validateDecrypt = compile(DecryptBody);
const validateEncrypt = compile(EncryptBody);
const validateReEncrypt = compile(ReEncryptBody);
const validateSign = compile(SignBody);
const validateVerify = compile(VerifyBody);
const validateGetPubKey = compile(GetPubKeyBody);

const MAX_PLAINTEXT_BYTES = 32 * 1024;
const MAX_SIGN_DATA_BYTES = 8 * 1024;
/** NCP names no signing algorithm: RSA2048 keys sign with PKCS#1 v1.5 over SHA-256 of the raw data. */
const SIGNING_ALGORITHM = 'RSASSA_PKCS1_V1_5_SHA_256';

const ENCRYPT_FIELDS: Fields = { plaintext: 'plaintext', context: 'context' };
const REENCRYPT_FIELDS: Fields = { plaintext: 'ciphertext', context: 'context' };

/** Applies `f` to one value or to each of an array, in order; the answer has the same shape. */
async function each<T, U>(input: T | T[], f: (x: T) => Promise<U>): Promise<U | U[]> {
  if (!Array.isArray(input)) return f(input);
  const out: U[] = [];
  for (const x of input) out.push(await f(x));
  return out;
}

function signInput(data: string): SignInput {
  return { message: base64Field('data', data, MAX_SIGN_DATA_BYTES), algorithm: SIGNING_ALGORITHM, messageType: 'RAW', field: 'data' };
}

export function cryptoRoutes(s: Services): Record<string, Route> {
  const reEncrypt = route('re-encrypt', 'crypto', async (req, res) => {
    const body = validateReEncrypt(req.body);
    const ctx = context(body.context);
    const key = await keyOf(s, req, res);
    const ciphertext = await each(body.ciphertext, async (text) => {
      // Same key, same context, newest version: the plaintext never leaves the domain.
      const sealed = await s.crypto.reEncrypt(key, parseNcp(text), ctx, key, ctx, REENCRYPT_FIELDS);
      return renderNcp(sealed.ciphertext, sealed.keyVersion);
    });
    ok(res, { ciphertext });
  });

  return {
    'POST /keys/:keyTag/create-custom-key': route('create-custom-key', 'crypto', async (req, res) => {
      const body = validateCreateCustomKey(req.body);
      const key = await keyOf(s, req, res);
      const dk = await s.dataKeys.create(key, (body.bits ?? 256) / 8, context(body.context), { length: 'bits', context: 'context' });
      noteVersion(res, dk.keyVersion);
      ok(res, {
        ...(body.requestPlainKey === true ? { plaintext: dk.plaintext.toString('base64') } : {}),
        ciphertext: renderNcp(dk.ciphertext, dk.keyVersion),
        key_version: dk.keyVersion,
      });
      dk.plaintext.fill(0);
    }),

    'POST /keys/:keyTag/encrypt': route('encrypt', 'crypto', async (req, res) => {
      const body = validateEncrypt(req.body);
      // Every plaintext is checked before any is sealed.
      const plaintexts = Array.isArray(body.plaintext)
        ? body.plaintext.map((p) => base64Field('plaintext', p, MAX_PLAINTEXT_BYTES))
        : base64Field('plaintext', body.plaintext, MAX_PLAINTEXT_BYTES);
      const ctx = context(body.context);
      const key = await keyOf(s, req, res);
      try {
        const ciphertext = await each(plaintexts, async (p) => {
          const sealed = await s.crypto.encrypt(key, p, ctx, ENCRYPT_FIELDS);
          return renderNcp(sealed.ciphertext, sealed.keyVersion);
        });
        ok(res, { ciphertext });
      } finally {
        for (const p of Array.isArray(plaintexts) ? plaintexts : [plaintexts]) p.fill(0);
      }
    }),

    'POST /keys/:keyTag/decrypt': route('decrypt', 'crypto', async (req, res) => {
      const body = validateDecrypt(req.body);
      const ctx = context(body.context);
      const key = await keyOf(s, req, res);
      const plaintext = await each(body.ciphertext, async (text) => {
        const opened = await s.crypto.open(key, parseNcp(text), ctx, 'context');
        noteVersion(res, opened.keyVersion);
        const b64 = opened.plaintext.toString('base64');
        opened.plaintext.fill(0);
        return b64;
      });
      ok(res, { plaintext });
    }),

    // The vendor lists both spellings.
    'POST /keys/:keyTag/re-encrypt': reEncrypt,
    'POST /keys/:keyTag/reencrypt': reEncrypt,

    'POST /keys/:keyTag/sign': route('sign', 'crypto', async (req, res) => {
      const body = validateSign(req.body);
      const input = signInput(body.data);
      const key = await keyOf(s, req, res);
      const { signature, keyVersion } = await s.signing.sign(key, input);
      noteVersion(res, keyVersion);
      ok(res, { signature: renderNcp(signature, keyVersion) });
    }),

    'POST /keys/:keyTag/verify': route('verify', 'crypto', async (req, res) => {
      const body = validateVerify(req.body);
      const input = signInput(body.data);
      const { keyVersion, signature } = parseNcpSignature(body.signature);
      const key = await keyOf(s, req, res);
      noteVersion(res, keyVersion);
      ok(res, { valid: await s.signing.verify(key, keyVersion, input, signature) });
    }),

    'POST /keys/:keyTag/get-pub-key': route('get-pub-key', 'read', async (req, res) => {
      const body = validateGetPubKey(req.body);
      const key = await keyOf(s, req, res);
      ok(res, { publicKey: await s.signing.publicKeyPem(key, body.keyVersion ?? key.currentVersion) });
    }),
  };
}
