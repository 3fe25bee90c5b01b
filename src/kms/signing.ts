/**
 * Signatures with a CMK version's private key, inside the token. The message is hashed here
 * (RAW) or given as a digest (DIGEST); the token signs the digest with PKCS#1 v1.5 (over a
 * DigestInfo) or PSS (salt = digest length), so a signature verifies with any standard library
 * against the public key this module exports.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { badRequest, invalidState, unsupported } from '../errors/kms-error';
import type { Hsm, SignMechanism, VersionRef } from '../hsm';
import type { KeyRecord, MetadataStore } from '../store/store';
import { assertEnabled } from './key-rules';
import { KEY_SPECS } from './key-specs';

export const SIGNING_ALGORITHMS = [
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];
export type MessageType = 'RAW' | 'DIGEST';

type Hash = 'sha256' | 'sha384' | 'sha512';
const HASH_BYTES: Readonly<Record<Hash, number>> = { sha256: 32, sha384: 48, sha512: 64 };
/** DER prefix of DigestInfo for each hash (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Readonly<Record<Hash, Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

function parts(alg: SigningAlgorithm): { pss: boolean; hash: Hash } {
  const hash = `sha${alg.slice(-3)}` as Hash;
  return { pss: alg.startsWith('RSASSA_PSS'), hash };
}

export interface SignInput {
  readonly message: Buffer;
  readonly algorithm: SigningAlgorithm;
  readonly messageType: MessageType;
}

export class Signing {
  constructor(
    private readonly hsm: Hsm,
    private readonly store: MetadataStore,
  ) {}

  async sign(key: KeyRecord, input: SignInput): Promise<{ signature: Buffer; keyVersion: number }> {
    assertSigningKey(key);
    const ref = { keyId: key.keyId, version: key.currentVersion };
    const { mechanism, data } = this.prepare(input);
    return { signature: await this.hsm.rsaSign(ref, mechanism, data), keyVersion: ref.version };
  }

  async verify(key: KeyRecord, version: number, input: SignInput, signature: Buffer): Promise<boolean> {
    assertSigningKey(key);
    const ref = await this.enabledVersion(key, version);
    const { mechanism, data } = this.prepare(input);
    return this.hsm.rsaVerify(ref, mechanism, data, signature);
  }

  /**
   * Whether any enabled version of the key made `signature` (for dialects whose signatures don't
   * name a version), newest first.
   */
  async verifyAnyVersion(key: KeyRecord, input: SignInput, signature: Buffer): Promise<{ valid: boolean; keyVersion: number }> {
    assertSigningKey(key);
    const versions = (await this.store.versions(key.keyId))
      .filter((v) => v.state === 'Enabled')
      .map((v) => v.version)
      .sort((a, b) => b - a);
    for (const version of versions) {
      if (await this.verify(key, version, input, signature)) return { valid: true, keyVersion: version };
    }
    return { valid: false, keyVersion: key.currentVersion };
  }

  /** SubjectPublicKeyInfo PEM of a version's public key. */
  async publicKeyPem(key: KeyRecord, version = key.currentVersion): Promise<string> {
    if (!KEY_SPECS[key.spec].canSign) throw unsupported('symmetric-key', 'Symmetric keys have no public key.');
    assertEnabled(key);
    const ref = await this.enabledVersion(key, version);
    const { modulus, exponent } = await this.hsm.rsaPublicKey(ref);
    const jwk = { kty: 'RSA', n: modulus.toString('base64url'), e: exponent.toString('base64url') };
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  }

  private async enabledVersion(key: KeyRecord, version: number): Promise<VersionRef> {
    const v = await this.store.version(key.keyId, version);
    if (!v || v.state === 'Creating') throw badRequest('No such key version.', { subject: 'key-version', reason: 'invalid' });
    if (v.state === 'Disabled') throw invalidState('version-disabled', 'The key version is disabled.');
    return { keyId: key.keyId, version };
  }

  private prepare(input: SignInput): { mechanism: SignMechanism; data: Buffer } {
    const { pss, hash } = parts(input.algorithm);
    let digest: Buffer;
    if (input.messageType === 'DIGEST') {
      if (input.message.length !== HASH_BYTES[hash]) {
        throw badRequest('The digest length does not match the hash algorithm.', { subject: 'message', reason: 'invalid', rule: 'digest-length' });
      }
      digest = input.message;
    } else {
      digest = createHash(hash).update(input.message).digest();
    }
    return pss ? { mechanism: { kind: 'rsa-pss', hash }, data: digest } : { mechanism: { kind: 'rsa-pkcs' }, data: Buffer.concat([DIGEST_INFO[hash], digest]) };
  }
}

function assertSigningKey(key: KeyRecord): void {
  assertEnabled(key);
  if (!KEY_SPECS[key.spec].canSign) throw unsupported('symmetric-key', 'Symmetric keys do not support signing.');
  if (key.usage === 'ENCRYPT_DECRYPT') throw unsupported('encrypt-only-key', 'The key is used to encrypt and decrypt.');
}
