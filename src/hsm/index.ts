/**
 * The token, as the rest of the service sees it: the one module of src/hsm that others import
 * (eslint.config.mjs). Every failure it hands out is a KmsError: a token that can't be reached is
 * HsmUnavailable, a token refusing a well-formed ciphertext is InvalidCiphertext, anything else is
 * Internal, and the PKCS#11 detail (CKR name, function) goes to the server log only.
 */
import { KmsError, invalidCiphertext } from '../errors/kms-error';
import type { Logger } from '../log/logger';
import { HsmError, type Mechanism, type Pkcs11Api } from './binding';
import { classify } from './ckr';
import { AuditKey } from './audit-key';
import { Hsm as TokenHsm, type TokenObject, type VersionRef } from './hsm';
import { KeygenProcess } from './keygen-process';
import { moduleLoader } from './module';
import { SessionPool, type PoolHealth } from './pool';

export type { TokenObject, VersionRef, PoolHealth, Pkcs11Api, SessionPool };
/** How a signature is made: PKCS#1 v1.5 over a DigestInfo the caller built, or PSS over a digest. */
export type SignMechanism = Extract<Mechanism, { kind: 'rsa-pkcs' | 'rsa-pss' }>;

/** The audit trail's key in the token (src/log/audit.ts: AuditMacKey). */
export interface AuditMac {
  mac(data: Buffer): Promise<Buffer>;
  verify(data: Buffer, mac: Buffer): Promise<boolean>;
}

/** What kms/ and store/ may ask of the token. */
export interface Hsm {
  random(length: number): Promise<Buffer>;
  createAesVersion(ref: VersionRef, withSiv: boolean): Promise<void>;
  createRsaVersion(ref: VersionRef): Promise<void>;
  destroyVersion(ref: VersionRef): Promise<number>;
  gcmEncrypt(ref: VersionRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer>;
  gcmEncryptRandom(ref: VersionRef, length: number, iv: Buffer, aad: Buffer): Promise<{ plaintext: Buffer; sealed: Buffer }>;
  gcmEncryptRandomMany(ref: VersionRef, length: number, ivs: readonly Buffer[], aad: Buffer): Promise<Array<{ plaintext: Buffer; sealed: Buffer }>>;
  gcmDecrypt(ref: VersionRef, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer>;
  cmac(ref: VersionRef, data: Buffer): Promise<Buffer>;
  rsaEncrypt(ref: VersionRef, data: Buffer): Promise<Buffer>;
  rsaDecrypt(ref: VersionRef, data: Buffer): Promise<Buffer>;
  rsaSign(ref: VersionRef, m: SignMechanism, data: Buffer): Promise<Buffer>;
  rsaVerify(ref: VersionRef, m: SignMechanism, data: Buffer, signature: Buffer): Promise<boolean>;
  rsaPublicKey(ref: VersionRef): Promise<{ modulus: Buffer; exponent: Buffer }>;
  listObjects(): Promise<TokenObject[]>;
  pruneCopies(live: (ref: VersionRef) => Promise<boolean>): Promise<number>;
  /** AES CMK versions on the token that are CKA_MODIFIABLE (for the start-up log). */
  countModifiableVersions(): Promise<number>;
  healthy(): Promise<boolean>;
  /** Whether calls may run off the event loop on the binding's threads (data keys sealed ahead need it). */
  readonly findsOffThread: boolean;
  /** Session copies of CMKs this process holds now. */
  readonly sessionCopies: number;
}

export interface TokenSettings {
  readonly modulePath: string;
  readonly label: string;
  readonly pin: string;
  readonly poolSize: number;
  readonly poolWaitMs: number;
  readonly retryMaxMs: number;
  readonly sessionCopies: number;
  readonly batchPerTurn: boolean;
  readonly rsaOffThread: boolean;
  readonly findOffThread: boolean;
  /** Make and destroy CMK versions' token objects in a helper process (keygen-process.ts). */
  readonly keygenProcess: boolean;
  /** Tests: wrap the real module in a fault-injecting proxy (test/helpers/fault-binding.ts). */
  readonly wrapModule?: (m: Pkcs11Api) => Pkcs11Api;
}

/** The token of one process: its operations, its connection state and its life. */
export interface Token {
  readonly hsm: Hsm;
  /** The audit trail's HMAC key. */
  readonly auditKey: AuditMac;
  /** The session pool (tests and stats look at it). */
  readonly pool: SessionPool;
  readonly status: PoolHealth;
  /** Called after every successful (re)connection. */
  onConnected(fn: () => void): void;
  /** First connection attempt; the token keeps being retried in the background when it fails. */
  start(): void;
  close(): void;
}

export function openToken(s: TokenSettings, log: Logger): Token {
  const pool = new SessionPool(
    { open: moduleLoader(s.modulePath, s.wrapModule), label: s.label, pin: s.pin },
    { size: s.poolSize, waitMs: s.poolWaitMs, retryMaxMs: s.retryMaxMs },
    log,
  );
  const keygen = s.keygenProcess ? new KeygenProcess({ modulePath: s.modulePath, label: s.label, pin: s.pin }, log) : undefined;
  const inner = new TokenHsm(pool, {
    sessionCopies: s.sessionCopies,
    batchPerTurn: s.batchPerTurn,
    rsaOffThread: s.rsaOffThread,
    findOffThread: s.findOffThread,
    ...(keygen ? { tokenWriter: keygen } : {}),
  });
  return {
    hsm: new KmsErrors(inner, log),
    auditKey: new AuditKey(pool, { ...(keygen ? { writer: keygen } : {}), findOffThread: inner.findsOffThread }),
    pool,
    get status() {
      return pool.status;
    },
    onConnected: (fn) => pool.onConnected(fn),
    start: () => void pool.start(),
    close() {
      keygen?.close();
      pool.close();
    },
  };
}

/**
 * The token's audit key alone (the CLI's audit records and `audit` commands), on one session.
 * Never fails because the token is missing: its calls then fail. Close when done.
 */
export function openAuditKey(s: TokenSettings, log: Logger): { key: AuditMac; close(): void } {
  const pool = new SessionPool(
    { open: moduleLoader(s.modulePath), label: s.label, pin: s.pin },
    { size: 1, waitMs: s.poolWaitMs, retryMaxMs: s.retryMaxMs },
    log,
  );
  pool.start();
  return { key: new AuditKey(pool), close: () => pool.close() };
}

/** The operations of `inner`, with every HsmError turned into the KmsError a client may see. */
class KmsErrors implements Hsm {
  constructor(
    private readonly inner: Hsm,
    private readonly log: Logger,
  ) {}

  get findsOffThread(): boolean {
    return this.inner.findsOffThread;
  }

  get sessionCopies(): number {
    return this.inner.sessionCopies;
  }

  random(length: number) {
    return this.guard(this.inner.random(length));
  }
  createAesVersion(ref: VersionRef, withSiv: boolean) {
    return this.guard(this.inner.createAesVersion(ref, withSiv));
  }
  createRsaVersion(ref: VersionRef) {
    return this.guard(this.inner.createRsaVersion(ref));
  }
  destroyVersion(ref: VersionRef) {
    return this.guard(this.inner.destroyVersion(ref));
  }
  gcmEncrypt(ref: VersionRef, iv: Buffer, aad: Buffer, plaintext: Buffer) {
    return this.guard(this.inner.gcmEncrypt(ref, iv, aad, plaintext));
  }
  gcmEncryptRandom(ref: VersionRef, length: number, iv: Buffer, aad: Buffer) {
    return this.guard(this.inner.gcmEncryptRandom(ref, length, iv, aad));
  }
  gcmEncryptRandomMany(ref: VersionRef, length: number, ivs: readonly Buffer[], aad: Buffer) {
    return this.guard(this.inner.gcmEncryptRandomMany(ref, length, ivs, aad));
  }
  /** A well-formed envelope that the token refuses was tampered with or has another context. */
  gcmDecrypt(ref: VersionRef, iv: Buffer, aad: Buffer, sealed: Buffer) {
    return this.guard(this.inner.gcmDecrypt(ref, iv, aad, sealed), true);
  }
  cmac(ref: VersionRef, data: Buffer) {
    return this.guard(this.inner.cmac(ref, data));
  }
  rsaEncrypt(ref: VersionRef, data: Buffer) {
    return this.guard(this.inner.rsaEncrypt(ref, data));
  }
  rsaDecrypt(ref: VersionRef, data: Buffer) {
    return this.guard(this.inner.rsaDecrypt(ref, data), true);
  }
  rsaSign(ref: VersionRef, m: SignMechanism, data: Buffer) {
    return this.guard(this.inner.rsaSign(ref, m, data));
  }
  rsaVerify(ref: VersionRef, m: SignMechanism, data: Buffer, signature: Buffer) {
    return this.guard(this.inner.rsaVerify(ref, m, data, signature));
  }
  rsaPublicKey(ref: VersionRef) {
    return this.guard(this.inner.rsaPublicKey(ref));
  }
  listObjects() {
    return this.guard(this.inner.listObjects());
  }
  pruneCopies(live: (ref: VersionRef) => Promise<boolean>) {
    return this.guard(this.inner.pruneCopies(live));
  }
  countModifiableVersions() {
    return this.guard(this.inner.countModifiableVersions());
  }
  healthy() {
    return this.inner.healthy();
  }

  private guard<T>(call: Promise<T>, ciphertextIn = false): Promise<T> {
    return call.catch((e: unknown) => {
      throw this.translate(e, ciphertextIn);
    });
  }

  private translate(e: unknown, ciphertextIn: boolean): Error {
    if (e instanceof KmsError || !(e instanceof HsmError)) return e instanceof Error ? e : new KmsError('Internal', 'Internal error.');
    const cls = classify(e.ckrName);
    if (ciphertextIn && cls === 'bad-input') return invalidCiphertext();
    this.log.error('hsm call failed', { ckr: e.ckrName, method: e.method, class: cls });
    return cls === 'session-broken' || cls === 'token-gone'
      ? new KmsError('HsmUnavailable', 'The HSM is not available. Try again later.')
      : new KmsError('Internal', 'Internal error.');
  }
}
