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
import { ThreadedAuditKey } from './threaded-audit-key';
import { ThreadedHsm } from './threaded-hsm';
import { SessionThreads, type CallObserver } from './threads';

export { exitProcess } from './exit';

export type { TokenObject, VersionRef, PoolHealth, Pkcs11Api, SessionPool, CallObserver };
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
  /**
   * softhsm2: calls inline on the event loop (an in-process token, measured faster) with SoftHSM's
   * speed-ups; nss and generic: every call on a session thread with a deadline (threads.ts).
   */
  readonly profile: 'softhsm2' | 'nss' | 'generic';
  /** Deadline of each call on a session thread. */
  readonly callTimeoutMs: number;
  /** C_Initialize's library parameters (NSS softokn). */
  readonly libraryParameters?: string;
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
  /**
   * The inline profile's module object, wrapped: metrics time its calls; tests inject faults
   * (test/helpers/fault-binding.ts).
   */
  readonly wrapModule?: (m: Pkcs11Api) => Pkcs11Api;
  /** The session threads' calls (the other profiles), timed: they never pass the main thread's module object. */
  readonly observeCall?: CallObserver;
}

/** What an operator checks first about the token (the console's HSM page). */
export interface TokenReport {
  /** The profile in use and how it drives the module. */
  readonly profile: string;
  readonly sessions: {
    readonly size: number;
    readonly up: boolean;
    readonly reason?: string;
    readonly since?: number;
    readonly open: number;
    readonly idle: number;
    readonly busy: number;
    readonly waiting: number;
    readonly recoveries: number;
  };
}

/** The token of one process: its operations, its connection state and its life. */
export interface Token {
  readonly hsm: Hsm;
  /** The audit trail's HMAC key. */
  readonly auditKey: AuditMac;
  /** The session pool of the inline profile (tests and stats look at it). */
  readonly pool: SessionPool | undefined;
  /** The session threads of the other profiles. */
  readonly threads: SessionThreads | undefined;
  readonly status: PoolHealth;
  report(): TokenReport;
  /** Called after every successful (re)connection. */
  onConnected(fn: () => void): void;
  /**
   * First connection attempt. Resolves undefined once up or while a passing failure is retried in
   * the background; or with why the token can't be used at all (module, label, PIN): one line for
   * the operator, and the process should end.
   */
  start(): Promise<string | undefined>;
  /** Resolves once the module is finalized (the inline profile) or every session thread is told to end. */
  close(): Promise<void>;
}

export function openToken(s: TokenSettings, log: Logger): Token {
  if (s.profile !== 'softhsm2') return threadedToken(s, log);
  const pool = new SessionPool(
    { open: moduleLoader(s.modulePath, s.wrapModule), label: s.label, pin: s.pin, modulePath: s.modulePath },
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
    threads: undefined,
    get status() {
      return pool.status;
    },
    report: () => {
      const st = pool.stats;
      return {
        profile: 'softhsm2: calls inline on the event loop (an in-process token)',
        sessions: { size: s.poolSize, ...health(pool.status), open: st.open, idle: st.idle, busy: st.busy, waiting: st.waiting, recoveries: st.recoveries },
      };
    },
    onConnected: (fn) => pool.onConnected(fn),
    start: async () => pool.start(),
    close() {
      keygen?.close();
      return pool.close();
    },
  };
}

/**
 * The token's audit key alone (the CLI's audit records and `audit` commands), on one session.
 * Never fails because the token is missing: its calls then fail. Close when done.
 */
export function openAuditKey(s: TokenSettings, log: Logger): { key: AuditMac; close(): Promise<void> } {
  if (s.profile !== 'softhsm2') {
    const t = threadedToken({ ...s, poolSize: 1 }, log);
    void t.start();
    return { key: t.auditKey, close: () => t.close() };
  }
  const pool = new SessionPool(
    { open: moduleLoader(s.modulePath), label: s.label, pin: s.pin, modulePath: s.modulePath },
    { size: 1, waitMs: s.poolWaitMs, retryMaxMs: s.retryMaxMs },
    log,
  );
  pool.start();
  return { key: new AuditKey(pool), close: () => pool.close() };
}

function threadedToken(s: TokenSettings, log: Logger): Token {
  const threads = new SessionThreads(
    {
      modulePath: s.modulePath,
      ...(s.libraryParameters ? { libraryParameters: s.libraryParameters } : {}),
      label: s.label,
      pin: s.pin,
      size: s.poolSize,
      waitMs: s.poolWaitMs,
      callTimeoutMs: s.callTimeoutMs,
      ...(s.observeCall ? { observeCall: s.observeCall } : {}),
    },
    log,
  );
  let started: ((v: unknown) => void) | undefined;
  const ready = new Promise((resolve) => (started = resolve));
  return {
    hsm: new KmsErrors(new ThreadedHsm(threads), log),
    auditKey: new ThreadedAuditKey(threads, ready),
    pool: undefined,
    threads,
    get status() {
      return threads.status;
    },
    report: () => {
      const st = threads.stats;
      return {
        profile: `${s.profile}: every call on a session thread, ${s.callTimeoutMs} ms deadline`,
        sessions: { size: st.size, ...health(threads.status), open: st.idle + st.busy, idle: st.idle, busy: st.busy, waiting: st.waiting, recoveries: st.recoveries },
      };
    },
    onConnected: (fn) => threads.onConnected(fn),
    start: () => {
      const first = threads.start();
      void first.then(started);
      return first;
    },
    close: async () => threads.close(),
  };
}

function health(h: PoolHealth): { up: boolean; reason?: string; since?: number } {
  return h.up ? { up: true } : { up: false, reason: h.reason, since: h.since };
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
