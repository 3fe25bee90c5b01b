/**
 * Sealing and opening bytes under a CMK version: the only code that builds or reads envelopes.
 * AES CMKs seal inside the token (AES-GCM); RSA CMKs wrap a fresh AES-256 content key with
 * RSA-OAEP in the token and seal with it here, because SoftHSM's OAEP takes no label and so can't
 * bind a context itself.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { badRequest, invalidCiphertext, invalidState, unsupported } from '../errors/kms-error';
import type { Hsm, VersionRef } from '../hsm';
import type { KeyRecord, MetadataStore } from '../store/store';
import type { Context } from './envelope/context';
import type { DataKeyStock } from './datakey-stock';
import { randomIv } from './envelope/iv';
import { aad, decodeEnvelope, encodeEnvelope, IV_BYTES, TAG_BYTES, type Envelope, type EnvelopeAlg, type EnvelopeContents } from './envelope/format';
import { assertMayOpen, type Opener } from './grant-rules';
import { KEY_SPECS } from './key-specs';
import { assertEnabled } from './key-rules';

export interface Sealed {
  readonly ciphertext: Buffer;
  readonly keyVersion: number;
}

export interface Opened {
  readonly plaintext: Buffer;
  readonly keyVersion: number;
  readonly contents: EnvelopeContents;
}

function algFor(key: KeyRecord): EnvelopeAlg {
  if (KEY_SPECS[key.spec].seal === 'rsa-oaep-hybrid') return 'rsa-oaep-hybrid';
  return key.convergent ? 'aes-gcm-siv' : 'aes-gcm';
}

/** An enabled key that may encrypt and decrypt. */
export function assertUsable(key: KeyRecord): void {
  assertEnabled(key);
  if (key.usage === 'SIGN_VERIFY') throw unsupported('sign-only-key', 'The key is for signing and verifying only.');
}

/** The context a convergent key needs; its absence is the caller's mistake, not a bad ciphertext. */
function assertContext(key: KeyRecord, context: Context): void {
  if (key.convergent && context.length === 0) {
    throw badRequest('A convergent key requires a context.', { subject: 'context', reason: 'missing' });
  }
}

/** Encryption algorithm names (AWS's, which Huawei shares): SYMMETRIC_DEFAULT for AES keys, RSAES_OAEP_* for RSA keys. */
export const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const;

/** Refuses an encryption algorithm the key's kind doesn't use (absent: the key's own). */
export function checkEncryptionAlgorithm(key: KeyRecord, algorithm: string | undefined): void {
  if (algorithm === undefined) return;
  const rsa = KEY_SPECS[key.spec].seal === 'rsa-oaep-hybrid';
  if (rsa && algorithm === 'SYMMETRIC_DEFAULT') {
    throw badRequest('This encryption algorithm is not for an asymmetric key.', { subject: 'encryption-algorithm', reason: 'invalid', rule: 'not-for-asymmetric-key' });
  }
  if (!rsa && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw badRequest('This encryption algorithm is not for a symmetric key.', { subject: 'encryption-algorithm', reason: 'invalid', rule: 'not-for-symmetric-key' });
  }
}

/** The key a ciphertext names, for decrypt calls where the caller may leave the key out. */
export function envelopeKeyId(ciphertext: Buffer): string {
  return decodeEnvelope(ciphertext).keyId;
}

/** What every seal starts from: the key is usable, the newest version, the algorithm and the AAD. */
interface Sealing {
  readonly ref: VersionRef;
  readonly alg: EnvelopeAlg;
  readonly contents: EnvelopeContents;
  readonly ad: Buffer;
}

function sealing(key: KeyRecord, context: Context, contents: EnvelopeContents): Sealing {
  assertUsable(key);
  assertContext(key, context);
  const ref: VersionRef = { keyId: key.keyId, version: key.currentVersion };
  const alg = algFor(key);
  return { ref, alg, contents, ad: aad({ alg, contents, keyId: key.keyId, keyVersion: ref.version }, context) };
}

export class Crypto {
  constructor(
    private readonly hsm: Hsm,
    private readonly store: MetadataStore,
    private readonly stock?: DataKeyStock,
  ) {}

  /**
   * Encrypts caller data (or a data key a caller brings: `contents`, which the envelope says)
   * under the key's newest version (RSA keys: at most 190 bytes, as both vendors).
   */
  async encrypt(key: KeyRecord, plaintext: Buffer, context: Context, contents: EnvelopeContents = 'data'): Promise<Sealed> {
    assertUsable(key);
    if (plaintext.length > KEY_SPECS[key.spec].maxPlaintextBytes) {
      throw badRequest('The plaintext is too long for this key spec.', { subject: 'plaintext', reason: 'invalid', rule: 'rsa-max' });
    }
    return this.seal(key, plaintext, context, contents);
  }

  /** Opens a ciphertext of `from` and seals the plaintext under `to`'s newest version; the plaintext never leaves. */
  async reEncrypt(from: KeyRecord, ciphertext: Buffer, fromContext: Context, to: KeyRecord, toContext: Context, opener: Opener): Promise<Sealed & { sourceVersion: number }> {
    const opened = await this.open(from, ciphertext, fromContext, opener);
    try {
      // What it held, it holds again: an unmarked (format 1) envelope stays unmarked.
      const sealed = await this.encrypt(to, opened.plaintext, toContext, opened.contents);
      return { ...sealed, sourceVersion: opened.keyVersion };
    } finally {
      opened.plaintext.fill(0);
    }
  }

  async seal(key: KeyRecord, plaintext: Buffer, context: Context, contents: EnvelopeContents): Promise<Sealed> {
    return this.sealAs(key, sealing(key, context, contents), plaintext);
  }

  /**
   * `length` fresh random bytes from the token, sealed under the key's newest version. An AES-GCM
   * key takes one the token sealed ahead when its combination is busy (datakey-stock.ts), else
   * does both in one token call (Hsm.gcmEncryptRandom); the others draw, then seal.
   */
  async sealRandom(key: KeyRecord, length: number, context: Context): Promise<Sealed & { plaintext: Buffer }> {
    const s = sealing(key, context, 'data-key');
    if (s.alg !== 'aes-gcm') {
      const plaintext = await this.hsm.random(length);
      try {
        return { plaintext, ...(await this.sealAs(key, s, plaintext)) };
      } catch (e) {
        plaintext.fill(0);
        throw e;
      }
    }
    const ready = this.stock?.take(s.ref, length, s.ad);
    const iv = ready?.iv ?? randomIv();
    const { plaintext, sealed } = ready ?? (await this.hsm.gcmEncryptRandom(s.ref, length, iv, s.ad));
    return { plaintext, ciphertext: encodeEnvelope({ alg: s.alg, contents: s.contents, keyId: key.keyId, keyVersion: s.ref.version, iv, sealed }), keyVersion: s.ref.version };
  }

  private async sealAs(key: KeyRecord, { ref, alg, contents, ad }: Sealing, plaintext: Buffer): Promise<Sealed> {
    let envelope: Envelope;
    if (alg === 'rsa-oaep-hybrid') {
      const contentKey = await this.hsm.random(32);
      const wrappedKey = await this.hsm.rsaEncrypt(ref, contentKey);
      const iv = randomIv();
      const cipher = createCipheriv('aes-256-gcm', contentKey, iv).setAAD(ad);
      const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      contentKey.fill(0);
      envelope = { alg, contents, keyId: key.keyId, keyVersion: ref.version, wrappedKey, iv, sealed };
    } else {
      // Convergent: the IV is a CMAC (under the version's separate SIV key) of the header, context
      // and plaintext, so equal inputs give equal ciphertexts and different inputs different IVs.
      const iv =
        alg === 'aes-gcm-siv' ? (await this.hsm.cmac(ref, Buffer.concat([ad, plaintext]))).subarray(0, IV_BYTES) : randomIv();
      const sealed = await this.hsm.gcmEncrypt(ref, iv, ad, plaintext);
      envelope = { alg, contents, keyId: key.keyId, keyVersion: ref.version, iv, sealed };
    }
    return { ciphertext: encodeEnvelope(envelope), keyVersion: ref.version };
  }

  /** Opens an envelope of `key` for `opener` (grant-rules.ts: what a grantee may open, through which operation). */
  async open(key: KeyRecord, ciphertext: Buffer, context: Context, opener: Opener): Promise<Opened> {
    assertUsable(key);
    const e = decodeEnvelope(ciphertext);
    // Structure first, token second: an envelope for another key, version or algorithm never reaches the HSM.
    if (e.keyId !== key.keyId) throw invalidCiphertext('other-key');
    if (e.keyVersion > key.currentVersion || e.alg !== algFor(key)) throw invalidCiphertext();
    await assertMayOpen(this.store, key, e.contents, opener);
    assertContext(key, context);
    const version = await this.store.version(key.keyId, e.keyVersion);
    if (!version || version.state === 'Creating') throw invalidCiphertext();
    if (version.state === 'Disabled') throw invalidState('version-disabled', 'The key version that made this ciphertext is disabled.');
    const ref: VersionRef = { keyId: key.keyId, version: e.keyVersion };
    const ad = aad(e, context);
    // A well-formed envelope that the token refuses comes back from the façade as InvalidCiphertext.
    if (e.alg === 'rsa-oaep-hybrid') {
      const contentKey = await this.hsm.rsaDecrypt(ref, e.wrappedKey);
      if (contentKey.length !== 32) throw invalidCiphertext();
      try {
        const body = e.sealed.subarray(0, e.sealed.length - TAG_BYTES);
        const decipher = createDecipheriv('aes-256-gcm', contentKey, e.iv).setAAD(ad);
        decipher.setAuthTag(e.sealed.subarray(e.sealed.length - TAG_BYTES));
        return { plaintext: Buffer.concat([decipher.update(body), decipher.final()]), keyVersion: e.keyVersion, contents: e.contents };
      } catch {
        throw invalidCiphertext();
      } finally {
        contentKey.fill(0);
      }
    }
    return { plaintext: await this.hsm.gcmDecrypt(ref, e.iv, ad, e.sealed), keyVersion: e.keyVersion, contents: e.contents };
  }
}
