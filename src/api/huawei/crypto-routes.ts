/**
 * Huawei crypto actions: data keys, data encryption, random numbers, signatures. They need the
 * crypto scope (get-publickey: read), declared in routes.ts; the key must be enabled (the domain checks).
 * DEK ciphertexts travel as upper-case hex, data ciphertexts as base64 (as the vendor's do).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { badRequest } from '../../errors/kms-error';
import { checkEncryptionAlgorithm, envelopeKeyId } from '../../kms/crypto';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../kms/signing';
import { fromBase64 } from '../base64';
import type { Route } from '../dispatch';
import { openerOf } from '../key-ref';
import { noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { action, decimal, encryptionContext, hex, invalid, keyOf } from './common';
import type { ActionScopes } from './routes';
import {
  CreateDatakeyBody,
  DecryptDataBody,
  DecryptDatakeyBody,
  EncryptDataBody,
  EncryptDatakeyBody,
  GenRandomBody,
  KeyIdBody,
  SignBody,
  VerifyBody,
} from './schemas';
import { CreateDatakeyResponse, CreateDatakeyWithoutPlaintextResponse, DecryptDataResponse, DecryptDatakeyResponse, EncryptDataResponse, EncryptDatakeyResponse, GenRandomResponse, PublicKeyResponse, SignResponse, VerifyResponse } from './responses';

export const MAX_PLAIN_TEXT_BYTES = 4096;
const DIGEST_BYTES = 32;
/** Vendor algorithm names this service's RSA keys can't use (they exist for EC and SM2 keys). */
const OTHER_SIGNING_ALGORITHMS = /^(?:ECDSA_SHA_(?:256|384|512)|SM2DSA_SM3)$/;

/** Data key length in bytes from `datakey_length` (bits) or, when absent, `key_spec`. */
function datakeyBytes(lengthBits: string | undefined, keySpec: string | undefined): number {
  if (lengthBits !== undefined) {
    const bits = decimal(lengthBits, 8, 8192, 'datakey_length', 'datakey_length must be in the range 8 bits to 8,192 bits.');
    if (bits % 8 !== 0) throw invalid('datakey_length', 'datakey_length must be a multiple of 8.', 'multiple-of-8');
    return bits / 8;
  }
  if (keySpec === undefined) throw badRequest('Missing parameter: datakey_length.', { field: 'datakey_length', reason: 'missing' });
  if (keySpec === 'AES_128') return 16;
  if (keySpec === 'AES_256') return 32;
  throw invalid('key_spec', 'key_spec can only be AES_128 or AES_256.', 'unsupported-value');
}

function signingAlgorithm(name: string): SigningAlgorithm {
  const found = SIGNING_ALGORITHMS.find((a) => a === name);
  if (found) return found;
  if (OTHER_SIGNING_ALGORITHMS.test(name)) throw invalid('signing_algorithm', 'This key is not support the signing algorithm.', 'unsupported-value');
  throw invalid('signing_algorithm', 'Invalid signing_algorithm.');
}

/** The vendor's message: base64 of fewer than 4096 bytes. */
function message(text: string): Buffer {
  const b = fromBase64(text);
  if (!b || b.length === 0 || b.length >= MAX_PLAIN_TEXT_BYTES) throw invalid('message', 'message must be base64 of 1 to 4095 bytes.');
  return b;
}

export function cryptoActions(s: Services, scopes: ActionScopes): Route[] {
  const createDatakey = async (body: (typeof CreateDatakeyBody)['static'], res: Parameters<typeof keyOf>[1]) => {
    const bytes = datakeyBytes(body.datakey_length, body.key_spec);
    const key = (await keyOf(s, res, body.key_id));
    const dk = await s.dataKeys.create(key, bytes, encryptionContext(body.encryption_context));
    return { key, dk };
  };

  return [
    action('create-datakey', scopes['create-datakey'], CreateDatakeyBody, CreateDatakeyResponse, async (body, res) => {
      const { key, dk } = await createDatakey(body, res);
      const plainText = hex(dk.plaintext);
      dk.plaintext.fill(0);
      return { key_id: key.keyId, plain_text: plainText, cipher_text: hex(dk.ciphertext) };
    }),

    action('create-datakey-without-plaintext', scopes['create-datakey-without-plaintext'], CreateDatakeyBody, CreateDatakeyWithoutPlaintextResponse, async (body, res) => {
      const { key, dk } = await createDatakey(body, res);
      dk.plaintext.fill(0);
      return { key_id: key.keyId, cipher_text: hex(dk.ciphertext) };
    }),

    action('encrypt-datakey', scopes['encrypt-datakey'], EncryptDatakeyBody, EncryptDatakeyResponse, async (body, res) => {
      const length = decimal(body.datakey_plain_length, 1, 1024, 'datakey_plain_length', 'datakey_plain_length must be 1 to 1024 bytes.');
      const context = encryptionContext(body.encryption_context);
      const key = (await keyOf(s, res, body.key_id));
      const given = Buffer.from(body.plain_text, 'hex');
      try {
        if (given.length !== length + DIGEST_BYTES) {
          throw invalid('plain_text', 'The length of plain_text does not match datakey_plain_length.', 'length-mismatch');
        }
        const dek = given.subarray(0, length);
        if (!timingSafeEqual(createHash('sha256').update(dek).digest(), given.subarray(length))) {
          throw invalid('plain_text', 'Failed to verify the DEK hash.', 'digest-mismatch');
        }
        const sealed = await s.crypto.encrypt(key, dek, context, 'data-key');
        return { key_id: key.keyId, cipher_text: hex(sealed.ciphertext), datakey_length: String(length) };
      } finally {
        given.fill(0);
      }
    }),

    action('decrypt-datakey', scopes['decrypt-datakey'], DecryptDatakeyBody, DecryptDatakeyResponse, async (body, res) => {
      const length = decimal(body.datakey_cipher_length, 1, 1024, 'datakey_cipher_length', 'datakey_cipher_length must be 1 to 1024 bytes.');
      const key = (await keyOf(s, res, body.key_id));
      const { plaintext, keyVersion } = await s.crypto.open(key, Buffer.from(body.cipher_text, 'hex'), encryptionContext(body.encryption_context), openerOf(res));
      noteVersion(res, keyVersion);
      try {
        if (plaintext.length !== length) {
          throw invalid('datakey_cipher_length', 'The length of cipher_text does not match datakey_cipher_length.', 'length-mismatch');
        }
        return {
          data_key: hex(plaintext),
          datakey_length: String(plaintext.length),
          datakey_dgst: hex(createHash('sha256').update(plaintext).digest()),
        };
      } finally {
        plaintext.fill(0);
      }
    }),

    action('encrypt-data', scopes['encrypt-data'], EncryptDataBody, EncryptDataResponse, async (body, res) => {
      const plaintext = Buffer.from(body.plain_text, 'utf8');
      try {
        if (plaintext.length > MAX_PLAIN_TEXT_BYTES) throw invalid('plain_text', 'plain_text must be 1 to 4096 bytes.');
        const context = encryptionContext(body.encryption_context);
        const key = (await keyOf(s, res, body.key_id));
        checkEncryptionAlgorithm(key, body.encryption_algorithm);
        const sealed = await s.crypto.encrypt(key, plaintext, context);
        return { key_id: key.keyId, cipher_text: sealed.ciphertext.toString('base64') };
      } finally {
        plaintext.fill(0);
      }
    }),

    action('decrypt-data', scopes['decrypt-data'], DecryptDataBody, DecryptDataResponse, async (body, res) => {
      const ciphertext = fromBase64(body.cipher_text);
      if (!ciphertext) throw invalid('cipher_text', 'Invalid cipher_text.');
      const context = encryptionContext(body.encryption_context);
      // The envelope is parsed first (a malformed one is refused before any key lookup); without a
      // key id in the request, the key it names is used, looked up as the caller may see it.
      const named = envelopeKeyId(ciphertext);
      const key = (await keyOf(s, res, body.key_id ?? named));
      checkEncryptionAlgorithm(key, body.encryption_algorithm);
      const { plaintext, keyVersion } = await s.crypto.open(key, ciphertext, context, openerOf(res));
      noteVersion(res, keyVersion);
      try {
        return { key_id: key.keyId, plain_text: plaintext.toString('utf8'), plain_text_base64: plaintext.toString('base64') };
      } finally {
        plaintext.fill(0);
      }
    }),

    action('gen-random', scopes['gen-random'], GenRandomBody, GenRandomResponse, async (body) => {
      const bits = decimal(body.random_data_length, 8, 8192, 'random_data_length', 'random_data_length must be 8 to 8192 bits.');
      if (bits % 8 !== 0) throw invalid('random_data_length', 'random_data_length must be a multiple of 8.', 'multiple-of-8');
      const random = await s.random(bits / 8);
      try {
        return { random_data: hex(random) };
      } finally {
        random.fill(0);
      }
    }),

    action('get-publickey', scopes['get-publickey'], KeyIdBody, PublicKeyResponse, async (body, res) => {
      const key = (await keyOf(s, res, body.key_id));
      return { key_id: key.keyId, public_key: await s.signing.publicKeyPem(key) };
    }),

    action('sign', scopes['sign'], SignBody, SignResponse, async (body, res) => {
      const key = (await keyOf(s, res, body.key_id));
      const input = { message: message(body.message), algorithm: signingAlgorithm(body.signing_algorithm), messageType: body.message_type ?? 'DIGEST' };
      const { signature, keyVersion } = await s.signing.sign(key, input);
      noteVersion(res, keyVersion);
      return { key_id: key.keyId, signature: signature.toString('base64') };
    }),

    action('verify', scopes['verify'], VerifyBody, VerifyResponse, async (body, res) => {
      const key = (await keyOf(s, res, body.key_id));
      const input = { message: message(body.message), algorithm: signingAlgorithm(body.signing_algorithm), messageType: body.message_type ?? 'DIGEST' };
      const signature = fromBase64(body.signature);
      if (!signature) throw invalid('signature', 'Invalid signature.');
      // A Huawei signature names no key version: valid if any enabled version made it.
      const { valid } = await s.signing.verifyAnyVersion(key, input, signature);
      return { key_id: key.keyId, signature_valid: String(valid) };
    }),
  ];
}
