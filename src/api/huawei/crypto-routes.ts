/**
 * Huawei crypto actions: data keys, data encryption, random numbers, signatures. They need the
 * crypto scope (get-publickey: read), declared in routes.ts; the key must be enabled (KMS.0209 disabled, KMS.0210 pending deletion).
 * DEK ciphertexts travel as upper-case hex, data ciphertexts as base64 (as the vendor's do).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { badRequest, invalidCiphertext } from '../../errors/kms-error';
import { decodeEnvelope } from '../../kms/envelope/format';
import { KEY_SPECS } from '../../kms/key-specs';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../kms/signing';
import type { KeyRecord } from '../../store/store';
import { fromBase64 } from '../base64';
import { noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { compile } from '../validate';
import { decimal, encryptionContext, hex, invalid, keyOf, type Action } from './common';
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

const validateCreateDatakey = compile(CreateDatakeyBody);
const validateDecryptDatakey = compile(DecryptDatakeyBody);
const validateEncryptDatakey = compile(EncryptDatakeyBody);
const validateEncryptData = compile(EncryptDataBody);
const validateDecryptData = compile(DecryptDataBody);
const validateGenRandom = compile(GenRandomBody);
const validateKeyId = compile(KeyIdBody);
const validateSign = compile(SignBody);
const validateVerify = compile(VerifyBody);

export const MAX_PLAIN_TEXT_BYTES = 4096;
const DIGEST_BYTES = 32;
const CONTEXT_FIELD = 'encryption_context';
/** Vendor algorithm names this service's RSA keys can't use (they exist for EC and SM2 keys). */
const OTHER_SIGNING_ALGORITHMS = /^(?:ECDSA_SHA_(?:256|384|512)|SM2DSA_SM3)$/;

/** Data key length in bytes from `datakey_length` (bits) or, when absent, `key_spec`. */
function datakeyBytes(lengthBits: string | undefined, keySpec: string | undefined): number {
  if (lengthBits !== undefined) {
    const bits = decimal(lengthBits, 8, 8192, 'datakey_length', 'KMS.1901', 'datakey_length must be in the range 8 bits to 8,192 bits.');
    if (bits % 8 !== 0) throw invalid('datakey_length', 'KMS.1903', 'datakey_length must be a multiple of 8.');
    return bits / 8;
  }
  if (keySpec === undefined) throw badRequest('Missing parameter: datakey_length.', { field: 'datakey_length', reason: 'missing' });
  if (keySpec === 'AES_128') return 16;
  if (keySpec === 'AES_256') return 32;
  throw invalid('key_spec', 'KMS.1902', 'key_spec can only be AES_128 or AES_256.');
}

/** SYMMETRIC_DEFAULT is for AES keys, the RSAES_OAEP names for RSA keys (KMS.2105 / KMS.2106 otherwise). */
function checkEncryptionAlgorithm(key: KeyRecord, algorithm: string | undefined): void {
  if (algorithm === undefined) return;
  const rsa = KEY_SPECS[key.spec].seal === 'rsa-oaep-hybrid';
  if (rsa && algorithm === 'SYMMETRIC_DEFAULT') {
    throw invalid('encryption_algorithm', 'KMS.2106', 'The rsa key not support this encryption algorithm.');
  }
  if (!rsa && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw invalid('encryption_algorithm', 'KMS.2105', 'The symmetric key not support this encryption algorithm.');
  }
}

function signingAlgorithm(name: string): SigningAlgorithm {
  const found = SIGNING_ALGORITHMS.find((a) => a === name);
  if (found) return found;
  if (OTHER_SIGNING_ALGORITHMS.test(name)) throw invalid('signing_algorithm', 'KMS.0332', 'This key is not support the signing algorithm.');
  throw invalid('signing_algorithm', 'KMS.0308', 'Invalid signing_algorithm.');
}

/** The vendor's message: base64 of fewer than 4096 bytes. */
function message(text: string): Buffer {
  const b = fromBase64(text);
  if (!b || b.length === 0 || b.length >= MAX_PLAIN_TEXT_BYTES) throw invalid('message', 'KMS.0308', 'message must be base64 of 1 to 4095 bytes.');
  return b;
}

export function cryptoActions(s: Services): Record<string, Action> {
  const createDatakey = async (raw: unknown, res: Parameters<Action>[1]) => {
    const body = validateCreateDatakey(raw);
    const bytes = datakeyBytes(body.datakey_length, body.key_spec);
    const key = await keyOf(s, res, body.key_id);
    const dk = await s.dataKeys.create(key, bytes, encryptionContext(body.encryption_context), { length: 'datakey_length', context: CONTEXT_FIELD });
    return { key, dk };
  };

  return {
    'create-datakey': async (raw, res) => {
      const { key, dk } = await createDatakey(raw, res);
      const plainText = hex(dk.plaintext);
      dk.plaintext.fill(0);
      return { key_id: key.keyId, plain_text: plainText, cipher_text: hex(dk.ciphertext) };
    },

    'create-datakey-without-plaintext': async (raw, res) => {
      const { key, dk } = await createDatakey(raw, res);
      dk.plaintext.fill(0);
      return { key_id: key.keyId, cipher_text: hex(dk.ciphertext) };
    },

    'encrypt-datakey': async (raw, res) => {
      const body = validateEncryptDatakey(raw);
      const length = decimal(body.datakey_plain_length, 1, 1024, 'datakey_plain_length', 'KMS.2102', 'datakey_plain_length must be 1 to 1024 bytes.');
      const context = encryptionContext(body.encryption_context);
      const key = await keyOf(s, res, body.key_id);
      const given = Buffer.from(body.plain_text, 'hex');
      try {
        if (given.length !== length + DIGEST_BYTES) {
          throw invalid('plain_text', 'KMS.2104', 'The length of plain_text does not match datakey_plain_length.');
        }
        const dek = given.subarray(0, length);
        if (!timingSafeEqual(createHash('sha256').update(dek).digest(), given.subarray(length))) {
          throw invalid('plain_text', 'KMS.2103', 'Failed to verify the DEK hash.');
        }
        const sealed = await s.crypto.encrypt(key, dek, context, { plaintext: 'datakey_plain_length', context: CONTEXT_FIELD });
        return { key_id: key.keyId, cipher_text: hex(sealed.ciphertext), datakey_length: String(length) };
      } finally {
        given.fill(0);
      }
    },

    'decrypt-datakey': async (raw, res) => {
      const body = validateDecryptDatakey(raw);
      const length = decimal(body.datakey_cipher_length, 1, 1024, 'datakey_cipher_length', 'KMS.0308', 'datakey_cipher_length must be 1 to 1024 bytes.');
      const key = await keyOf(s, res, body.key_id);
      const { plaintext, keyVersion } = await s.crypto.open(key, Buffer.from(body.cipher_text, 'hex'), encryptionContext(body.encryption_context), CONTEXT_FIELD);
      noteVersion(res, keyVersion);
      try {
        if (plaintext.length !== length) {
          throw invalid('datakey_cipher_length', 'KMS.2204', 'The length of cipher_text does not match datakey_cipher_length.');
        }
        return {
          data_key: hex(plaintext),
          datakey_length: String(plaintext.length),
          datakey_dgst: hex(createHash('sha256').update(plaintext).digest()),
        };
      } finally {
        plaintext.fill(0);
      }
    },

    'encrypt-data': async (raw, res) => {
      const body = validateEncryptData(raw);
      const plaintext = Buffer.from(body.plain_text, 'utf8');
      try {
        if (plaintext.length > MAX_PLAIN_TEXT_BYTES) throw invalid('plain_text', 'KMS.2101', 'plain_text must be 1 to 4096 bytes.');
        const context = encryptionContext(body.encryption_context);
        const key = await keyOf(s, res, body.key_id);
        checkEncryptionAlgorithm(key, body.encryption_algorithm);
        const sealed = await s.crypto.encrypt(key, plaintext, context, { plaintext: 'plain_text', context: CONTEXT_FIELD });
        return { key_id: key.keyId, cipher_text: sealed.ciphertext.toString('base64') };
      } finally {
        plaintext.fill(0);
      }
    },

    'decrypt-data': async (raw, res) => {
      const body = validateDecryptData(raw);
      const ciphertext = fromBase64(body.cipher_text);
      if (!ciphertext) throw invalid('cipher_text', 'KMS.2201', 'Invalid cipher_text.');
      const context = encryptionContext(body.encryption_context);
      // No key id in the request: the envelope names its key, looked up in the caller's project only.
      const named = decodeEnvelope(ciphertext).keyId;
      const key = await keyOf(s, res, body.key_id ?? named);
      if (key.keyId !== named) throw invalidCiphertext();
      checkEncryptionAlgorithm(key, body.encryption_algorithm);
      const { plaintext, keyVersion } = await s.crypto.open(key, ciphertext, context, CONTEXT_FIELD);
      noteVersion(res, keyVersion);
      try {
        return { key_id: key.keyId, plain_text: plaintext.toString('utf8'), plain_text_base64: plaintext.toString('base64') };
      } finally {
        plaintext.fill(0);
      }
    },

    'gen-random': async (raw) => {
      const body = validateGenRandom(raw);
      const bits = decimal(body.random_data_length, 8, 8192, 'random_data_length', 'KMS.1801', 'random_data_length must be 8 to 8192 bits.');
      if (bits % 8 !== 0) throw invalid('random_data_length', 'KMS.1802', 'random_data_length must be a multiple of 8.');
      const random = await s.random(bits / 8);
      try {
        return { random_data: hex(random) };
      } finally {
        random.fill(0);
      }
    },

    'get-publickey': async (raw, res) => {
      const body = validateKeyId(raw);
      const key = await keyOf(s, res, body.key_id);
      return { key_id: key.keyId, public_key: await s.signing.publicKeyPem(key) };
    },

    sign: async (raw, res) => {
      const body = validateSign(raw);
      const key = await keyOf(s, res, body.key_id);
      const input = { message: message(body.message), algorithm: signingAlgorithm(body.signing_algorithm), messageType: body.message_type ?? 'DIGEST', field: 'message' };
      const { signature, keyVersion } = await s.signing.sign(key, input);
      noteVersion(res, keyVersion);
      return { key_id: key.keyId, signature: signature.toString('base64') };
    },

    verify: async (raw, res) => {
      const body = validateVerify(raw);
      const key = await keyOf(s, res, body.key_id);
      const input = { message: message(body.message), algorithm: signingAlgorithm(body.signing_algorithm), messageType: body.message_type ?? 'DIGEST', field: 'message' };
      const signature = fromBase64(body.signature);
      if (!signature) throw invalid('signature', 'KMS.0308', 'Invalid signature.');
      // A Huawei signature names no key version: it is valid if any enabled version made it, newest first.
      const versions = (await s.keys.versions(key))
        .filter((v) => v.state === 'Enabled')
        .map((v) => v.version)
        .sort((a, b) => b - a);
      let valid = false;
      for (const version of versions) {
        if (await s.signing.verify(key, version, input, signature)) {
          valid = true;
          break;
        }
      }
      return { key_id: key.keyId, signature_valid: String(valid) };
    },
  };
}
