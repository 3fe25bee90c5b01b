/**
 * A session thread: a worker thread that owns one PKCS#11 session and makes every call on it, so
 * that a token that answers slowly, or not at all, holds up this thread only (threads.ts leases
 * them, with a deadline per call). It loads the same library into the same process, so it shares
 * the process's initialised module and login; the first thread of a module initialisation calls
 * C_Initialize.
 *
 * Each request is one message and runs its calls back to back (a data key is C_GenerateRandom,
 * C_EncryptInit and C_Encrypt in one round trip of messages).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { GCM_TAG_BYTES, toHsmError, toRaw, type Mechanism } from './binding';
import type { ThreadOptions, ThreadReply, ThreadRequest, WireTemplate } from './thread-protocol';

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const own = (b: Buffer): Uint8Array => new Uint8Array(b);

function template(t: WireTemplate): pkcs11js.Template {
  return t.map((a) => (a.value instanceof Uint8Array ? { type: a.type, value: buf(a.value) } : { type: a.type, ...(a.value === undefined ? {} : { value: a.value }) }));
}

function mechanism(m: Mechanism): pkcs11js.Mechanism {
  if (m.kind !== 'aes-gcm') return toRaw(m);
  return toRaw({ kind: 'aes-gcm', iv: buf(m.iv), aad: buf(m.aad) });
}

class SessionThread {
  private readonly lib = new pkcs11js.PKCS11();
  private session: Buffer | undefined;
  /** The PKCS#11 function being called, named in an error. */
  method = 'load';

  constructor(private readonly options: ThreadOptions) {
    this.lib.load(options.modulePath);
  }

  private call<T>(method: string, fn: () => T): T {
    this.method = method;
    return fn();
  }

  private get s(): Buffer {
    if (!this.session) throw new Error('no session');
    return this.session;
  }

  run(r: ThreadRequest): unknown {
    switch (r.op) {
      case 'open':
        return this.open(r.initialize, r.label, r.pin);
      case 'reinitialize':
        try {
          this.call('C_Finalize', () => this.lib.C_Finalize());
        } catch {
          // Not initialised, or the device is gone: initialising again is all that is left to try.
        }
        return this.open('yes', r.label, r.pin);
      case 'random':
        return own(this.call('C_GenerateRandom', () => this.lib.C_GenerateRandom(this.s, Buffer.alloc(r.length))));
      case 'find': {
        this.call('C_FindObjectsInit', () => this.lib.C_FindObjectsInit(this.s, template(r.template)));
        try {
          const all: Buffer[] = [];
          for (;;) {
            const want = r.max > 0 ? Math.min(256, r.max - all.length) : 256;
            const batch = this.call('C_FindObjects', () => this.lib.C_FindObjects(this.s, want));
            all.push(...batch);
            if (batch.length < want || (r.max > 0 && all.length >= r.max)) break;
          }
          return all.map(own);
        } finally {
          this.call('C_FindObjectsFinal', () => this.lib.C_FindObjectsFinal(this.s));
        }
      }
      case 'read':
        return r.handles.map((h) => {
          try {
            const got = this.call('C_GetAttributeValue', () => this.lib.C_GetAttributeValue(this.s, buf(h), r.types.map((type) => ({ type }))));
            return got.map((a) => (Buffer.isBuffer(a.value) ? own(a.value) : new Uint8Array(0)));
          } catch (e) {
            const code = e instanceof pkcs11js.Pkcs11Error ? e.code : undefined;
            if (code === pkcs11js.CKR_OBJECT_HANDLE_INVALID) return 'gone';
            if (code === pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID) return 'unreadable';
            throw e;
          }
        });
      case 'encrypt':
        this.call('C_EncryptInit', () => this.lib.C_EncryptInit(this.s, mechanism(r.mechanism), buf(r.key)));
        return own(this.call('C_Encrypt', () => this.lib.C_Encrypt(this.s, buf(r.data), Buffer.alloc(r.outLength))));
      case 'decrypt':
        this.call('C_DecryptInit', () => this.lib.C_DecryptInit(this.s, mechanism(r.mechanism), buf(r.key)));
        return own(this.call('C_Decrypt', () => this.lib.C_Decrypt(this.s, buf(r.data), Buffer.alloc(r.outLength))));
      case 'sign':
        this.call('C_SignInit', () => this.lib.C_SignInit(this.s, mechanism(r.mechanism), buf(r.key)));
        return own(this.call('C_Sign', () => this.lib.C_Sign(this.s, buf(r.data), Buffer.alloc(r.outLength))));
      case 'verify':
        this.call('C_VerifyInit', () => this.lib.C_VerifyInit(this.s, mechanism(r.mechanism), buf(r.key)));
        try {
          return this.call('C_Verify', () => this.lib.C_Verify(this.s, buf(r.data), buf(r.signature)));
        } catch (e) {
          const name = toHsmError('C_Verify', e).ckrName;
          if (name === 'CKR_SIGNATURE_INVALID' || name === 'CKR_SIGNATURE_LEN_RANGE') return false;
          throw e;
        }
      case 'sealRandom': {
        const plaintext = this.call('C_GenerateRandom', () => this.lib.C_GenerateRandom(this.s, Buffer.alloc(r.length)));
        try {
          this.call('C_EncryptInit', () => this.lib.C_EncryptInit(this.s, mechanism({ kind: 'aes-gcm', iv: buf(r.iv), aad: buf(r.aad) }), buf(r.key)));
          const sealed = this.call('C_Encrypt', () => this.lib.C_Encrypt(this.s, plaintext, Buffer.alloc(r.length + GCM_TAG_BYTES)));
          return { plaintext: own(plaintext), sealed: own(sealed) };
        } finally {
          plaintext.fill(0);
        }
      }
      case 'generateKey':
        return own(this.call('C_GenerateKey', () => this.lib.C_GenerateKey(this.s, toRaw(r.mechanism), template(r.template))));
      case 'generateKeyPair': {
        const kp = this.call('C_GenerateKeyPair', () => this.lib.C_GenerateKeyPair(this.s, toRaw(r.mechanism), template(r.publicTemplate), template(r.privateTemplate)));
        return { publicKey: own(kp.publicKey), privateKey: own(kp.privateKey) };
      }
      case 'destroy':
        this.call('C_DestroyObject', () => this.lib.C_DestroyObject(this.s, buf(r.handle)));
        return true;
      case 'retire':
        if (this.session) {
          try {
            this.lib.C_CloseSession(this.session);
          } catch {
            // Gone with a re-initialisation or the token: nothing to release.
          }
        }
        this.session = undefined;
        return true;
    }
  }

  /** Initialises the module if asked, finds the token by label, opens this thread's session and logs in. */
  private open(initialize: 'yes' | 'no', label: string, pin: string): { labels: string[] } | true {
    if (initialize === 'yes') {
      try {
        const params = this.options.libraryParameters;
        this.call('C_Initialize', () => this.lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK, ...(params ? { libraryParameters: params } : {}) }));
      } catch (e) {
        if (!(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED)) throw e;
      }
    }
    const tokens = this.call('C_GetSlotList', () => this.lib.C_GetSlotList(true)).map((slot) => ({
      slot,
      label: this.call('C_GetTokenInfo', () => this.lib.C_GetTokenInfo(slot)).label.trim(),
    }));
    const found = tokens.find((t) => t.label === label);
    if (!found) return { labels: tokens.map((t) => t.label) };
    const s = this.call('C_OpenSession', () => this.lib.C_OpenSession(found.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION));
    try {
      this.call('C_Login', () => this.lib.C_Login(s, pkcs11js.CKU_USER, pin));
    } catch (e) {
      if (!(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN)) {
        try {
          this.lib.C_CloseSession(s);
        } catch {
          // The login's error is the one to report.
        }
        throw e;
      }
    }
    this.session = s;
    return true;
  }
}

if (parentPort) {
  const port = parentPort;
  let thread: SessionThread | undefined;
  let loadError: ThreadReply | undefined;
  try {
    thread = new SessionThread(workerData as ThreadOptions);
  } catch (e) {
    loadError = { id: -1, ok: false, error: { ckr: -1, ckrName: 'MODULE_LOAD_FAILED', method: 'load', detail: e instanceof Error ? e.message : String(e) } };
  }
  port.on('message', (r: ThreadRequest) => {
    if (!thread) return port.postMessage({ ...loadError!, id: r.id });
    let reply: ThreadReply;
    try {
      reply = { id: r.id, ok: true, value: thread.run(r) };
    } catch (e) {
      const h = toHsmError(thread.method, e);
      reply = { id: r.id, ok: false, error: { ckr: h.ckr, ckrName: h.ckrName, method: h.method } };
    }
    port.postMessage(reply);
    if (r.op === 'retire') process.exit(0);
  });
}
