/**
 * The only file that imports pkcs11js, with its worker thread (binding-worker.ts). Everything above
 * it sees typed handles, typed templates and HsmError; the raw binding, its `any`-ish parameter
 * unions and its error classes stop here.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { InFlight } from '../in-flight';
import type { FindReply, FindRequest, ReadRequest, SealReply, SealRequest, WorkerError, WorkerOptions } from './binding-worker';

/** Opaque PKCS#11 handle (a Buffer in pkcs11js); branded so a session can't be passed as an object. */
export type SessionHandle = Buffer & { readonly __brand: 'session' };
export type ObjectHandle = Buffer & { readonly __brand: 'object' };
export type SlotHandle = Buffer & { readonly __brand: 'slot' };

export const C = {
  CKO_SECRET_KEY: pkcs11js.CKO_SECRET_KEY,
  CKO_PUBLIC_KEY: pkcs11js.CKO_PUBLIC_KEY,
  CKO_PRIVATE_KEY: pkcs11js.CKO_PRIVATE_KEY,
  CKK_AES: pkcs11js.CKK_AES,
  CKK_RSA: pkcs11js.CKK_RSA,
  CKK_GENERIC_SECRET: pkcs11js.CKK_GENERIC_SECRET,
  CKA_CLASS: pkcs11js.CKA_CLASS,
  CKA_KEY_TYPE: pkcs11js.CKA_KEY_TYPE,
  CKA_TOKEN: pkcs11js.CKA_TOKEN,
  CKA_PRIVATE: pkcs11js.CKA_PRIVATE,
  CKA_SENSITIVE: pkcs11js.CKA_SENSITIVE,
  CKA_EXTRACTABLE: pkcs11js.CKA_EXTRACTABLE,
  CKA_MODIFIABLE: pkcs11js.CKA_MODIFIABLE,
  CKA_ENCRYPT: pkcs11js.CKA_ENCRYPT,
  CKA_DECRYPT: pkcs11js.CKA_DECRYPT,
  CKA_WRAP: pkcs11js.CKA_WRAP,
  CKA_UNWRAP: pkcs11js.CKA_UNWRAP,
  CKA_SIGN: pkcs11js.CKA_SIGN,
  CKA_VERIFY: pkcs11js.CKA_VERIFY,
  CKA_DERIVE: pkcs11js.CKA_DERIVE,
  CKA_VALUE: pkcs11js.CKA_VALUE,
  CKA_VALUE_LEN: pkcs11js.CKA_VALUE_LEN,
  CKA_ID: pkcs11js.CKA_ID,
  CKA_LABEL: pkcs11js.CKA_LABEL,
  CKA_MODULUS: pkcs11js.CKA_MODULUS,
  CKA_MODULUS_BITS: pkcs11js.CKA_MODULUS_BITS,
  CKA_PUBLIC_EXPONENT: pkcs11js.CKA_PUBLIC_EXPONENT,
  CKM_AES_KEY_GEN: pkcs11js.CKM_AES_KEY_GEN,
  CKM_AES_GCM: pkcs11js.CKM_AES_GCM,
  CKM_AES_CMAC: pkcs11js.CKM_AES_CMAC,
  CKM_RSA_PKCS_KEY_PAIR_GEN: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
  CKM_RSA_PKCS_OAEP: pkcs11js.CKM_RSA_PKCS_OAEP,
  CKM_GENERIC_SECRET_KEY_GEN: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN,
  CKM_SHA256_HMAC: pkcs11js.CKM_SHA256_HMAC,
  CKU_USER: pkcs11js.CKU_USER,
} as const;

export type AttributeType = (typeof C)[keyof typeof C] & number;
export interface Attribute {
  readonly type: number;
  readonly value?: number | boolean | string | Buffer;
}
export type Template = readonly Attribute[];

export type Mechanism =
  | { readonly kind: 'aes-key-gen' }
  | { readonly kind: 'rsa-key-pair-gen' }
  | { readonly kind: 'aes-gcm'; readonly iv: Buffer; readonly aad: Buffer }
  | { readonly kind: 'aes-cmac' }
  /** A CKK_GENERIC_SECRET key (the audit trail's HMAC key) and HMAC-SHA256 with it. */
  | { readonly kind: 'generic-secret-key-gen' }
  | { readonly kind: 'sha256-hmac' }
  // SoftHSM only accepts SHA-1 OAEP without a label; context binding is done elsewhere (kms/crypto.ts).
  | { readonly kind: 'rsa-oaep-sha1' }
  /** PKCS#1 v1.5 over a DigestInfo the caller built (so RAW and DIGEST inputs share one path). */
  | { readonly kind: 'rsa-pkcs' }
  /** PSS over a digest; salt length = digest length. */
  | { readonly kind: 'rsa-pss'; readonly hash: 'sha256' | 'sha384' | 'sha512' };

const PSS_HASH = {
  sha256: { hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, saltLen: 32 },
  sha384: { hashAlg: pkcs11js.CKM_SHA384, mgf: pkcs11js.CKG_MGF1_SHA384, saltLen: 48 },
  sha512: { hashAlg: pkcs11js.CKM_SHA512, mgf: pkcs11js.CKG_MGF1_SHA512, saltLen: 64 },
} as const;

export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** AES-GCM with a 128-bit tag (exported for binding-worker.ts, which seals with the same parameters). */
export function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.GcmParams = { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: iv.length * 8, aad, tagBits: GCM_TAG_BYTES * 8 };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

/** The pkcs11js form of a mechanism (exported for the binding's threads). */
export function toRaw(m: Mechanism): pkcs11js.Mechanism {
  switch (m.kind) {
    case 'aes-key-gen':
      return { mechanism: pkcs11js.CKM_AES_KEY_GEN };
    case 'rsa-key-pair-gen':
      return { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN };
    case 'aes-gcm':
      return gcmMechanism(m.iv, m.aad);
    case 'aes-cmac':
      return { mechanism: pkcs11js.CKM_AES_CMAC };
    case 'generic-secret-key-gen':
      return { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN };
    case 'sha256-hmac':
      return { mechanism: pkcs11js.CKM_SHA256_HMAC };
    case 'rsa-oaep-sha1': {
      const parameter: pkcs11js.RsaOAEP = {
        type: pkcs11js.CK_PARAMS_RSA_OAEP,
        hashAlg: pkcs11js.CKM_SHA_1,
        mgf: pkcs11js.CKG_MGF1_SHA1,
        source: 1, // CKZ_DATA_SPECIFIED with no data: the only form SoftHSM accepts
      };
      return { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter };
    }
    case 'rsa-pkcs':
      return { mechanism: pkcs11js.CKM_RSA_PKCS };
    case 'rsa-pss': {
      const parameter: pkcs11js.RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, ...PSS_HASH[m.hash] };
      return { mechanism: pkcs11js.CKM_RSA_PKCS_PSS, parameter };
    }
  }
}

/** A PKCS#11 failure: the CKR value and the function; never any argument. */
export class HsmError extends Error {
  override readonly name = 'HsmError';
  constructor(
    readonly ckr: number,
    readonly ckrName: string,
    readonly method: string,
  ) {
    super(`${method} failed: ${ckrName}`);
  }
}

/** An HsmError this service raises itself (a token it can't find, a helper that died), by CKR name. */
export function hsmError(ckrName: Extract<keyof typeof pkcs11js, `CKR_${string}`>, method: string): HsmError {
  return new HsmError(pkcs11js[ckrName], ckrName, method);
}

// Session states (PKCS#11 v2.40 §5.6); pkcs11js doesn't export them.
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

/** CKR value when the binding cannot name one (a native error outside PKCS#11). */
export const CKR_BINDING_FAILURE = -1;

/** A pkcs11js failure as an HsmError (exported for binding-worker.ts). */
export function toHsmError(method: string, e: unknown): HsmError {
  if (e instanceof pkcs11js.Pkcs11Error) {
    // pkcs11js' message is the CKR name; keep only that, never the arguments.
    const name = /CKR_[A-Z_]+/.exec(e.message)?.[0] ?? `CKR_0x${e.code.toString(16)}`;
    return new HsmError(e.code, name, method);
  }
  // Some calls (C_CopyObject in pkcs11js 2.1) throw a plain Error whose whole message is "CKR_NAME:code".
  const plain = e instanceof Error ? /^(CKR_[A-Z_]+):(\d+)$/.exec(e.message) : null;
  if (plain) return new HsmError(Number(plain[2]), plain[1]!, method);
  return new HsmError(CKR_BINDING_FAILURE, 'BINDING_ERROR', method);
}

function call<T>(method: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toHsmError(method, e);
  }
}

/**
 * Loads the library on this thread without initialising it (dlopen and C_GetFunctionList only), so
 * that it stays loaded while session threads, which load it too, come and go: when the last of
 * them exits, its dlclose would unload the library and with it the module's initialisation,
 * sessions and login. Undefined when it won't load (the threads report why).
 */
export function holdLibrary(modulePath: string): unknown {
  try {
    const lib = new pkcs11js.PKCS11();
    lib.load(modulePath);
    return lib;
  } catch {
    return undefined;
  }
}

/** A length in a FindReply: the object was destroyed since it was found (it is left out). */
export const GONE = -1;
/** A length in a FindReply: the object lacks an attribute asked for (not ours; kept, with no attributes). */
export const UNREADABLE = -2;

/** An object found on the worker thread, with the attributes that were asked for. */
export interface Listed {
  readonly handle: ObjectHandle;
  readonly attributes: ReadonlyMap<number, Buffer>;
}

/** A copy in memory of its own: a Buffer may be a slice of a shared slab, which postMessage would clone whole. */
const own = (b: Buffer): Uint8Array => new Uint8Array(b);

/** The call a request fails as when its thread dies. */
const REQUEST_METHOD = { find: 'C_FindObjects', read: 'C_GetAttributeValue', seal: 'C_Encrypt' } as const;

/** A worker thread of binding-worker.ts, started on first use; it never keeps the process alive when idle. */
class BindingThread {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: FindReply | SealReply) => void; reject: (e: Error) => void; method: string }>();

  constructor(private readonly options: WorkerOptions) {}

  request(r: Omit<FindRequest, 'id'> | Omit<ReadRequest, 'id'>): Promise<FindReply>;
  request(r: Omit<SealRequest, 'id'>): Promise<SealReply>;
  request(r: Omit<FindRequest, 'id'> | Omit<ReadRequest, 'id'> | Omit<SealRequest, 'id'>): Promise<FindReply | SealReply> {
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<FindReply | SealReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method: REQUEST_METHOD[r.kind] });
      if (this.pending.size === 1) w.ref();
      w.postMessage({ ...r, id });
    });
  }

  close(): void {
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
  }

  private start(): Worker {
    const w = new Worker(path.join(__dirname, 'binding-worker.js'), { workerData: this.options });
    w.unref();
    w.on('message', (reply: FindReply | SealReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) w.unref();
      p.resolve(reply);
    });
    // A worker that dies fails what it was doing; the next request starts another.
    const died = (): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new HsmError(CKR_BINDING_FAILURE, 'BINDING_ERROR', p.method));
      this.pending.clear();
    };
    w.on('error', died);
    w.on('exit', died);
    this.worker = w;
    return w;
  }
}

/** `parts`, each `size` bytes, end to end in memory of their own (a message to a worker thread). */
function endToEnd(parts: readonly Buffer[], size: number, what: string): Uint8Array {
  const out = new Uint8Array(parts.length * size);
  parts.forEach((p, i) => {
    if (p.length !== size) throw new RangeError(`${what} are ${size} bytes each`);
    out.set(p, i * size);
  });
  return out;
}

/** A worker's answer, or the token's error it carries. */
function answered<R extends { readonly id: number }>(reply: R | WorkerError): R {
  if ('error' in reply) throw new HsmError(reply.error.ckr, reply.error.ckrName, reply.error.method);
  return reply;
}

function unpack(reply: Extract<FindReply, { handles: Uint8Array }>, read: readonly number[]): Listed[] {
  const { handles, handleBytes, lengths, values } = reply;
  const out: Listed[] = [];
  let at = 0;
  for (let i = 0; handleBytes > 0 && i * handleBytes < handles.length; i++) {
    const handle = Buffer.from(handles.buffer, handles.byteOffset + i * handleBytes, handleBytes) as ObjectHandle;
    const attributes = new Map<number, Buffer>();
    let gone = false;
    for (let j = 0; j < read.length; j++) {
      const length = lengths[i * read.length + j] ?? GONE;
      if (length === GONE) gone = true;
      if (length < 0) continue;
      attributes.set(read[j]!, Buffer.from(values.buffer, values.byteOffset + at, length));
      at += length;
    }
    if (!gone) out.push({ handle, attributes });
  }
  return out;
}

export interface TokenSummary {
  readonly slot: SlotHandle;
  readonly label: string;
}

/** A loaded PKCS#11 module; one per process (C_Initialize may be called only once). */
export class Pkcs11Module {
  private readonly lib: pkcs11js.PKCS11;
  private finalized = false;
  /** Calls running on another thread: libuv's pool (offThread) or a worker (findObjectsOffThread, readAttributesOffThread, sealRandomOffThread). */
  private readonly outside = new InFlight();
  private readonly pinned = new Set<readonly Buffer[]>();
  private readonly finder: BindingThread;
  /**
   * Data-key seals get a thread of their own, so that a long search doesn't hold them up,
   * and it is a background thread (binding-worker.ts, `background`): sealing ahead must never
   * delay the threads that answer requests.
   */
  private readonly sealer: BindingThread;

  constructor(modulePath: string) {
    this.lib = new pkcs11js.PKCS11();
    call('load', () => this.lib.load(modulePath));
    this.finder = new BindingThread({ modulePath, background: false });
    this.sealer = new BindingThread({ modulePath, background: true });
    this.initialize();
  }

  private initialize(): void {
    // OS locking flag: without it SoftHSM disables its mutexes and concurrent sessions corrupt its heap.
    call('C_Initialize', () => this.lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }));
    this.finalized = false;
  }

  /**
   * C_Finalize (errors ignored: the module may already be in a bad state) then C_Initialize again.
   * Every session and handle of before is gone afterwards. This is also how SoftHSM notices tokens
   * created since the last C_Initialize: it reads its token directory only then.
   */
  reinitialize(): void {
    try {
      this.lib.C_Finalize();
    } catch {
      // Not initialised, or the device is gone: initialising again is all that's left to try.
    }
    this.finalized = true;
    this.initialize();
  }

  /** C_CloseAllSessions: every session of this application on the slot, which also ends its login. */
  closeAllSessions(slot: SlotHandle): void {
    call('C_CloseAllSessions', () => this.lib.C_CloseAllSessions(slot));
  }

  logout(s: SessionHandle): void {
    call('C_Logout', () => this.lib.C_Logout(s));
  }

  /** Whether the session is in a user state (login is per application, so this is the token's view). */
  isLoggedIn(s: SessionHandle): boolean {
    const state = call('C_GetSessionInfo', () => this.lib.C_GetSessionInfo(s)).state;
    return state === CKS_RO_USER_FUNCTIONS || state === CKS_RW_USER_FUNCTIONS;
  }

  /** Every object matching the template, fetched in batches. */
  findAllObjects(s: SessionHandle, template: Template): ObjectHandle[] {
    call('C_FindObjectsInit', () => this.lib.C_FindObjectsInit(s, [...template]));
    try {
      const all: ObjectHandle[] = [];
      for (;;) {
        const batch = call('C_FindObjects', () => this.lib.C_FindObjects(s, 256)) as ObjectHandle[];
        all.push(...batch);
        if (batch.length < 256) return all;
      }
    } finally {
      call('C_FindObjectsFinal', () => this.lib.C_FindObjectsFinal(s));
    }
  }

  tokens(): TokenSummary[] {
    const slots = call('C_GetSlotList', () => this.lib.C_GetSlotList(true));
    return slots.map((slot) => ({
      slot: slot as SlotHandle,
      label: call('C_GetTokenInfo', () => this.lib.C_GetTokenInfo(slot)).label.trim(),
    }));
  }

  openSession(slot: SlotHandle): SessionHandle {
    const flags = pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION;
    return call('C_OpenSession', () => this.lib.C_OpenSession(slot, flags)) as SessionHandle;
  }

  closeSession(s: SessionHandle): void {
    call('C_CloseSession', () => this.lib.C_CloseSession(s));
  }

  login(s: SessionHandle, pin: string): void {
    call('C_Login', () => this.lib.C_Login(s, pkcs11js.CKU_USER, pin));
  }

  generateRandom(s: SessionHandle, length: number): Buffer {
    return call('C_GenerateRandom', () => this.lib.C_GenerateRandom(s, Buffer.alloc(length)));
  }

  generateKey(s: SessionHandle, m: Mechanism, template: Template): ObjectHandle {
    return call('C_GenerateKey', () => this.lib.C_GenerateKey(s, toRaw(m), [...template])) as ObjectHandle;
  }

  generateKeyPair(
    s: SessionHandle,
    m: Mechanism,
    publicTemplate: Template,
    privateTemplate: Template,
  ): { publicKey: ObjectHandle; privateKey: ObjectHandle } {
    const kp = call('C_GenerateKeyPair', () =>
      this.lib.C_GenerateKeyPair(s, toRaw(m), [...publicTemplate], [...privateTemplate]),
    );
    return { publicKey: kp.publicKey as ObjectHandle, privateKey: kp.privateKey as ObjectHandle };
  }

  findObjects(s: SessionHandle, template: Template, max = 16): ObjectHandle[] {
    call('C_FindObjectsInit', () => this.lib.C_FindObjectsInit(s, [...template]));
    try {
      return call('C_FindObjects', () => this.lib.C_FindObjects(s, max)) as ObjectHandle[];
    } finally {
      call('C_FindObjectsFinal', () => this.lib.C_FindObjectsFinal(s));
    }
  }

  getAttributes(s: SessionHandle, o: ObjectHandle, types: readonly number[]): Map<number, Buffer> {
    const got = call('C_GetAttributeValue', () =>
      this.lib.C_GetAttributeValue(s, o, types.map((type) => ({ type }))),
    );
    return new Map(got.map((a) => [a.type, a.value]));
  }

  /** C_CopyObject: a new object with the original's attributes, changed by `template` where the token allows. */
  copyObject(s: SessionHandle, o: ObjectHandle, template: Template): ObjectHandle {
    return call('C_CopyObject', () => this.lib.C_CopyObject(s, o, [...template])) as ObjectHandle;
  }

  destroyObject(s: SessionHandle, o: ObjectHandle): void {
    call('C_DestroyObject', () => this.lib.C_DestroyObject(s, o));
  }

  // Outputs: ciphertexts and signatures are public and go in Node's pooled small-buffer slabs
  // (allocUnsafe, no zero-fill, no ArrayBuffer of their own); plaintexts get a buffer of their own,
  // returned without a copy, so the caller's fill(0) wipes the only one.

  /** One-shot encrypt: no multi-part state is left in the session, whatever happens. */
  encrypt(s: SessionHandle, m: Mechanism, key: ObjectHandle, data: Buffer, outLength: number): Buffer {
    call('C_EncryptInit', () => this.lib.C_EncryptInit(s, toRaw(m), key));
    return call('C_Encrypt', () => this.lib.C_Encrypt(s, data, Buffer.allocUnsafe(outLength)));
  }

  decrypt(s: SessionHandle, m: Mechanism, key: ObjectHandle, data: Buffer, outLength: number): Buffer {
    call('C_DecryptInit', () => this.lib.C_DecryptInit(s, toRaw(m), key));
    return call('C_Decrypt', () => this.lib.C_Decrypt(s, data, Buffer.alloc(outLength)));
  }

  sign(s: SessionHandle, m: Mechanism, key: ObjectHandle, data: Buffer, outLength: number): Buffer {
    call('C_SignInit', () => this.lib.C_SignInit(s, toRaw(m), key));
    return call('C_Sign', () => this.lib.C_Sign(s, data, Buffer.allocUnsafe(outLength)));
  }

  /**
   * C_SignInit here, C_Sign on libuv's thread pool: an RSA private-key operation (a long one)
   * leaves the event loop free. The init's errors throw at once, like a synchronous call's.
   */
  signOffThread(s: SessionHandle, m: Mechanism, key: ObjectHandle, data: Buffer, outLength: number): Promise<Buffer> {
    call('C_SignInit', () => this.lib.C_SignInit(s, toRaw(m), key));
    const out = Buffer.allocUnsafe(outLength);
    return this.offThread('C_Sign', [data, out], () => this.lib.C_SignAsync(s, data, out));
  }

  /** As signOffThread, for C_Decrypt; the plaintext gets a buffer of its own, as in decrypt. */
  decryptOffThread(s: SessionHandle, m: Mechanism, key: ObjectHandle, data: Buffer, outLength: number): Promise<Buffer> {
    call('C_DecryptInit', () => this.lib.C_DecryptInit(s, toRaw(m), key));
    const out = Buffer.alloc(outLength);
    return this.offThread('C_Decrypt', [data, out], () => this.lib.C_DecryptAsync(s, data, out));
  }

  /**
   * Calls of this module running on another thread now. While there are any, the module must not
   * be finalized or re-initialised: SoftHSM would free what those threads are using.
   */
  get callsOffThread(): number {
    return this.outside.size;
  }

  /** Resolves once no call of this module runs on another thread. */
  offThreadIdle(): Promise<void> {
    return this.outside.idle();
  }

  /**
   * pkcs11js hands the other thread raw pointers into `buffers` and keeps no reference to the
   * input: they stay in `pinned` until the call has returned, so the garbage collector can't free
   * memory the token is still reading or writing.
   */
  private offThread(method: string, buffers: readonly Buffer[], fn: () => Promise<Buffer>): Promise<Buffer> {
    this.pinned.add(buffers);
    const call = (async () => {
      try {
        return await fn();
      } catch (e) {
        throw toHsmError(method, e);
      } finally {
        this.pinned.delete(buffers);
      }
    })();
    this.outside.track(call);
    return call;
  }

  /**
   * findObjects on the worker thread (binding-worker.ts says why). The session stays the caller's,
   * who must not use it until this settles; the handles are valid on the event loop.
   */
  async findObjectsOffThread(s: SessionHandle, template: Template, max = 16): Promise<ObjectHandle[]> {
    const wire = template.map((a) => (Buffer.isBuffer(a.value) ? { type: a.type, value: own(a.value) } : a));
    return (await this.listed(this.finder.request({ kind: 'find', session: own(s), template: wire, max }), [])).map((l) => l.handle);
  }

  /**
   * `read` attributes of each of `handles` on the worker thread. Those destroyed meanwhile are left
   * out; one lacking an attribute asked for comes with no attributes. The handles must all be of
   * one search's answer.
   */
  readAttributesOffThread(s: SessionHandle, handles: readonly ObjectHandle[], read: readonly number[]): Promise<Listed[]> {
    const handleBytes = handles[0]?.length ?? 0;
    const packed = endToEnd(handles, handleBytes, 'handles of one search');
    return this.listed(this.finder.request({ kind: 'read', session: own(s), handles: packed, handleBytes, read }), read);
  }

  private listed(request: Promise<FindReply>, read: readonly number[]): Promise<Listed[]> {
    const call = request.then((reply) => unpack(answered(reply), read));
    this.outside.track(call);
    return call;
  }

  /**
   * `ivs.length` data keys of `length` random bytes each, each sealed with AES-GCM under `key` with
   * its own 12-byte IV and the same `aad`, on the seal thread on the caller's session, who must not
   * use it until this settles. Each plaintext gets a buffer of its own, as in decrypt; the reply's
   * copy is zeroed.
   */
  async sealRandomOffThread(s: SessionHandle, key: ObjectHandle, length: number, ivs: readonly Buffer[], aad: Buffer): Promise<Array<{ plaintext: Buffer; sealed: Buffer }>> {
    const packedIvs = endToEnd(ivs, GCM_IV_BYTES, 'GCM IVs');
    const call = this.sealer.request({ kind: 'seal', session: own(s), key: own(key), ivs: packedIvs, aad: own(aad), length });
    this.outside.track(call);
    const { keys } = answered(await call);
    const all = Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength);
    const per = 2 * length + GCM_TAG_BYTES;
    const out: Array<{ plaintext: Buffer; sealed: Buffer }> = [];
    for (let i = 0; i < ivs.length; i++) {
      const at = i * per;
      out.push({ plaintext: Buffer.from(all.subarray(at, at + length)), sealed: all.subarray(at + length, at + per) });
      all.fill(0, at, at + length);
    }
    return out;
  }

  /** False for a signature that does not verify; throws only for real failures. */
  verify(s: SessionHandle, m: Mechanism, key: ObjectHandle, data: Buffer, signature: Buffer): boolean {
    call('C_VerifyInit', () => this.lib.C_VerifyInit(s, toRaw(m), key));
    try {
      return call('C_Verify', () => this.lib.C_Verify(s, data, signature));
    } catch (e) {
      if (e instanceof HsmError && (e.ckrName === 'CKR_SIGNATURE_INVALID' || e.ckrName === 'CKR_SIGNATURE_LEN_RANGE')) return false;
      throw e;
    }
  }

  finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    this.finder.close();
    this.sealer.close();
    call('C_Finalize', () => this.lib.C_Finalize());
  }
}

/**
 * The public surface of a loaded module. The pool and Hsm take this, not the class, so a test can
 * wrap the real module in a proxy that injects faults (test/helpers/fault-binding.ts).
 */
export type Pkcs11Api = { [K in keyof Pkcs11Module]: Pkcs11Module[K] };
