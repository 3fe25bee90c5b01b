/**
 * AWS cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
 * GenerateRandom, Sign, Verify, GetPublicKey. A CiphertextBlob is the service's one envelope, the
 * bytes Huawei writes in hex and NCP in base64 after `ncpkms:vN:`; an EncryptionContext is bound
 * with the canonical JSON Huawei's encryption_context uses, so a ciphertext opens in any dialect.
 */
import { createPublicKey } from 'node:crypto';
import { badRequest } from '../../errors/kms-error';
import { checkEncryptionAlgorithm, envelopeKeyId } from '../../kms/crypto';
import { contextFromObject } from '../../kms/envelope/context';
import { KEY_SPECS } from '../../kms/key-specs';
import { SIGNING_ALGORITHMS, type SignInput, type SigningAlgorithm } from '../../kms/signing';
import type { KeyRecord } from '../../store/store';
import type { Route } from '../dispatch';
import { openerOf, resolveKey } from '../key-ref';
import { noteVersion } from '../middleware/audit';
import type { Services } from '../services';
import { AWS_KEY_SPEC, blob, encryptionAlgorithms, keyArn, keyOf, keyUsage, signingAlgorithms, unsupportedFeature, type AwsNames } from './common';
import { operation } from './operation';
import {
  DecryptBody,
  EncryptBody,
  GenerateDataKeyBody,
  GenerateDataKeyWithoutPlaintextBody,
  GenerateRandomBody,
  KeyIdBody,
  ReEncryptBody,
  SignBody,
  VerifyBody,
} from './schemas';
import { DecryptResponse, EncryptResponse, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse, GenerateRandomResponse, GetPublicKeyResponse, ReEncryptResponse, SignResponse, VerifyResponse } from './responses';

const MAX_PLAINTEXT = 4096;
const MAX_CIPHERTEXT = 6144;
const KEY_SPEC_BYTES: Readonly<Record<string, number>> = { AES_256: 32, AES_128: 16 };

const b64 = (b: Buffer): string => b.toString('base64');

/** The algorithm a key's ciphertexts are reported with when the caller names none. */
function algorithmOf(key: KeyRecord, given: string | undefined): string {
  return given ?? (KEY_SPECS[key.spec].seal === 'rsa-oaep-hybrid' ? 'RSAES_OAEP_SHA_256' : 'SYMMETRIC_DEFAULT');
}

function dataKeyBytes(keySpec: string | undefined, numberOfBytes: number | undefined): number {
  if (keySpec !== undefined && numberOfBytes !== undefined) throw badRequest('Specify KeySpec or NumberOfBytes, not both.', { field: 'KeySpec', reason: 'invalid' });
  if (numberOfBytes !== undefined) return numberOfBytes;
  if (keySpec === undefined) throw badRequest('Specify KeySpec or NumberOfBytes.', { field: 'KeySpec', reason: 'missing' });
  const n = KEY_SPEC_BYTES[keySpec];
  if (n === undefined) throw badRequest('KeySpec must be AES_256 or AES_128.', { field: 'KeySpec', reason: 'invalid' });
  return n;
}

function signingAlgorithm(name: string): SigningAlgorithm {
  const found = SIGNING_ALGORITHMS.find((a) => a === name);
  if (!found) throw badRequest(`SigningAlgorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}.`, { field: 'SigningAlgorithm', reason: 'invalid' });
  return found;
}

function signInput(body: { Message: string; MessageType?: 'RAW' | 'DIGEST'; SigningAlgorithm: string }): SignInput {
  return { message: blob('Message', body.Message, MAX_PLAINTEXT), algorithm: signingAlgorithm(body.SigningAlgorithm), messageType: body.MessageType ?? 'RAW' };
}

export function cryptoRoutes(s: Services, names: AwsNames): Route[] {
  const key = (res: Parameters<typeof keyOf>[2], text: string, op?: string) => keyOf(s, names, res, text, op);
  /** The key to open a ciphertext with: the one named (it must be the envelope's), or the envelope's own. */
  const openingKey = (res: Parameters<typeof keyOf>[2], ciphertext: Buffer, named: string | undefined, op?: string): Promise<KeyRecord> => {
    const inEnvelope = envelopeKeyId(ciphertext);
    return named === undefined ? resolveKey(s, res, { keyId: inEnvelope }, op === undefined ? undefined : { grants: true, operation: op }) : key(res, named, op);
  };

  const generate = async (res: Parameters<typeof keyOf>[2], body: { KeyId: string; KeySpec?: string; NumberOfBytes?: number; EncryptionContext?: Record<string, string> }) => {
    const bytes = dataKeyBytes(body.KeySpec, body.NumberOfBytes);
    const k = await key(res, body.KeyId);
    const dk = await s.dataKeys.create(k, bytes, contextFromObject(body.EncryptionContext));
    noteVersion(res, dk.keyVersion);
    return { k, dk };
  };

  return [
    operation('Encrypt', 'crypto', EncryptBody, EncryptResponse, async (body, res) => {
      const plaintext = blob('Plaintext', body.Plaintext, MAX_PLAINTEXT);
      try {
        const k = await key(res, body.KeyId);
        checkEncryptionAlgorithm(k, body.EncryptionAlgorithm);
        const sealed = await s.crypto.encrypt(k, plaintext, contextFromObject(body.EncryptionContext));
        return { CiphertextBlob: b64(sealed.ciphertext), KeyId: keyArn(names, k), EncryptionAlgorithm: algorithmOf(k, body.EncryptionAlgorithm) };
      } finally {
        plaintext.fill(0);
      }
    }),

    operation('Decrypt', 'crypto', DecryptBody, DecryptResponse, async (body, res) => {
      if (body.Recipient !== undefined) throw unsupportedFeature('Recipient', 'Nitro Enclaves recipients are not supported.');
      const ciphertext = blob('CiphertextBlob', body.CiphertextBlob, MAX_CIPHERTEXT);
      const k = await openingKey(res, ciphertext, body.KeyId);
      checkEncryptionAlgorithm(k, body.EncryptionAlgorithm);
      const { plaintext, keyVersion } = await s.crypto.open(k, ciphertext, contextFromObject(body.EncryptionContext), openerOf(res));
      noteVersion(res, keyVersion);
      try {
        return { KeyId: keyArn(names, k), Plaintext: b64(plaintext), EncryptionAlgorithm: algorithmOf(k, body.EncryptionAlgorithm) };
      } finally {
        plaintext.fill(0);
      }
    }),

    operation('ReEncrypt', 'crypto', ReEncryptBody, ReEncryptResponse, async (body, res) => {
      const ciphertext = blob('CiphertextBlob', body.CiphertextBlob, MAX_CIPHERTEXT);
      // A grant names each side: ReEncryptFrom on the source key, ReEncryptTo on the destination.
      const from = await openingKey(res, ciphertext, body.SourceKeyId, 'ReEncryptFrom');
      checkEncryptionAlgorithm(from, body.SourceEncryptionAlgorithm);
      const to = await key(res, body.DestinationKeyId, 'ReEncryptTo');
      checkEncryptionAlgorithm(to, body.DestinationEncryptionAlgorithm);
      const sealed = await s.crypto.reEncrypt(
        from,
        ciphertext,
        contextFromObject(body.SourceEncryptionContext),
        to,
        contextFromObject(body.DestinationEncryptionContext),
        openerOf(res, 'ReEncryptFrom'),
      );
      return {
        CiphertextBlob: b64(sealed.ciphertext),
        SourceKeyId: keyArn(names, from),
        KeyId: keyArn(names, to),
        SourceEncryptionAlgorithm: algorithmOf(from, body.SourceEncryptionAlgorithm),
        DestinationEncryptionAlgorithm: algorithmOf(to, body.DestinationEncryptionAlgorithm),
      };
    }),

    operation('GenerateDataKey', 'crypto', GenerateDataKeyBody, GenerateDataKeyResponse, async (body, res) => {
      if (body.Recipient !== undefined) throw unsupportedFeature('Recipient', 'Nitro Enclaves recipients are not supported.');
      const { k, dk } = await generate(res, body);
      try {
        return { CiphertextBlob: b64(dk.ciphertext), Plaintext: b64(dk.plaintext), KeyId: keyArn(names, k) };
      } finally {
        dk.plaintext.fill(0);
      }
    }),

    operation('GenerateDataKeyWithoutPlaintext', 'crypto', GenerateDataKeyWithoutPlaintextBody, GenerateDataKeyWithoutPlaintextResponse, async (body, res) => {
      const { k, dk } = await generate(res, body);
      dk.plaintext.fill(0);
      return { CiphertextBlob: b64(dk.ciphertext), KeyId: keyArn(names, k) };
    }),

    operation('GenerateRandom', 'crypto', GenerateRandomBody, GenerateRandomResponse, async (body) => {
      if (body.CustomKeyStoreId !== undefined) throw unsupportedFeature('CustomKeyStoreId', 'Custom key stores are not supported.');
      if (body.Recipient !== undefined) throw unsupportedFeature('Recipient', 'Nitro Enclaves recipients are not supported.');
      if (body.NumberOfBytes === undefined) throw badRequest('NumberOfBytes is required.', { field: 'NumberOfBytes', reason: 'missing' });
      const random = await s.random(body.NumberOfBytes);
      try {
        return { Plaintext: b64(random) };
      } finally {
        random.fill(0);
      }
    }),

    operation('Sign', 'crypto', SignBody, SignResponse, async (body, res) => {
      const input = signInput(body);
      const k = await key(res, body.KeyId);
      const { signature, keyVersion } = await s.signing.sign(k, input);
      noteVersion(res, keyVersion);
      return { KeyId: keyArn(names, k), Signature: b64(signature), SigningAlgorithm: input.algorithm };
    }),

    operation('Verify', 'crypto', VerifyBody, VerifyResponse, async (body, res) => {
      const input = signInput(body);
      const signature = blob('Signature', body.Signature, MAX_CIPHERTEXT);
      const k = await key(res, body.KeyId);
      // An AWS signature names no key version: valid if any enabled version made it.
      const { valid, keyVersion } = await s.signing.verifyAnyVersion(k, input, signature);
      noteVersion(res, keyVersion);
      // AWS answers an invalid signature with an error, never SignatureValid false.
      if (!valid) throw badRequest('The signature is not valid for this key, message and algorithm.', { subject: 'invalid-signature', reason: 'invalid' });
      return { KeyId: keyArn(names, k), SignatureValid: true, SigningAlgorithm: input.algorithm };
    }),

    operation('GetPublicKey', 'read', KeyIdBody, GetPublicKeyResponse, async (body, res) => {
      const k = await key(res, body.KeyId);
      const der = createPublicKey(await s.signing.publicKeyPem(k)).export({ type: 'spki', format: 'der' });
      const enc = encryptionAlgorithms(k);
      const sig = signingAlgorithms(k);
      return {
        KeyId: keyArn(names, k),
        PublicKey: b64(der),
        CustomerMasterKeySpec: AWS_KEY_SPEC[k.spec],
        KeySpec: AWS_KEY_SPEC[k.spec],
        KeyUsage: keyUsage(k),
        ...(enc ? { EncryptionAlgorithms: enc } : {}),
        ...(sig ? { SigningAlgorithms: sig } : {}),
      };
    }),
  ];
}
