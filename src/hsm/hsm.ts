/**
 * The operations the domain needs from the token, named by key version rather than by handle.
 * Every call goes through the session pool; object handles are cached per process (PKCS#11 handles
 * of token objects stay valid across sessions of one application) and looked up again when stale.
 */
import { C, HsmError, type Mechanism, type ObjectHandle, type SessionHandle } from './binding';
import type { SessionPool } from './pool';
import { aesCmkTemplate, aesSivTemplate, rsaCmkTemplates } from './templates';

/** One version of one CMK; `role` tells the objects of that version apart. */
export interface VersionRef {
  readonly keyId: string;
  readonly version: number;
}
export type ObjectRole = 'cmk' | 'siv';
type ObjectClass = 'secret' | 'public' | 'private';

const GCM_TAG = 16;
const RSA_2048_BYTES = 256;
const classValue: Readonly<Record<ObjectClass, number>> = {
  secret: C.CKO_SECRET_KEY,
  public: C.CKO_PUBLIC_KEY,
  private: C.CKO_PRIVATE_KEY,
};

/** CKA_ID = key id (16 bytes) ‖ version (u32 BE) ‖ role (1 byte): derivable, so the store holds no handle. */
export function objectId(ref: VersionRef, role: ObjectRole): Buffer {
  const id = Buffer.alloc(21);
  Buffer.from(ref.keyId.replace(/-/g, ''), 'hex').copy(id, 0);
  id.writeUInt32BE(ref.version, 16);
  id.writeUInt8(role === 'cmk' ? 0 : 1, 20);
  return id;
}

export function objectLabel(ref: VersionRef, role: ObjectRole): string {
  return `p11kms/${ref.keyId}/v${ref.version}${role === 'cmk' ? '' : `/${role}`}`;
}

/** A p11kms object found on the token. */
export interface TokenObject extends VersionRef {
  readonly role: ObjectRole;
}

/** Crypto with an existing key, random, lookups: safe to run twice, so retried once after a fault. */
const RETRY = { retry: true } as const;
const LIST_CHUNK = 256;

export class Hsm {
  private readonly handles = new Map<string, ObjectHandle>();
  private handlesGeneration = 0;

  constructor(readonly pool: SessionPool) {}

  random(length: number): Promise<Buffer> {
    return this.pool.use((s) => this.pool.module.generateRandom(s, length), RETRY);
  }

  async createAesVersion(ref: VersionRef, withSiv: boolean): Promise<void> {
    await this.pool.use((s) => {
      const m = this.pool.module;
      m.generateKey(s, { kind: 'aes-key-gen' }, aesCmkTemplate(objectId(ref, 'cmk'), objectLabel(ref, 'cmk')));
      if (withSiv) {
        m.generateKey(s, { kind: 'aes-key-gen' }, aesSivTemplate(objectId(ref, 'siv'), objectLabel(ref, 'siv')));
      }
    });
  }

  async createRsaVersion(ref: VersionRef): Promise<void> {
    const { publicTemplate, privateTemplate } = rsaCmkTemplates(objectId(ref, 'cmk'), objectLabel(ref, 'cmk'));
    await this.pool.use((s) =>
      this.pool.module.generateKeyPair(s, { kind: 'rsa-key-pair-gen' }, publicTemplate, privateTemplate),
    );
  }

  /** Destroys every object of a version (all roles, all classes); returns how many there were. */
  async destroyVersion(ref: VersionRef): Promise<number> {
    // Idempotent (find, then destroy what is there), so a fault is retried.
    return this.pool.use((s) => {
      let count = 0;
      for (const role of ['cmk', 'siv'] as const) {
        const id = objectId(ref, role);
        for (const h of this.pool.module.findObjects(s, [{ type: C.CKA_ID, value: id }])) {
          this.pool.module.destroyObject(s, h);
          count++;
        }
        for (const cls of ['secret', 'public', 'private'] as const) this.handles.delete(cacheKey(id, cls));
      }
      return count;
    }, RETRY);
  }

  gcmEncrypt(ref: VersionRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'cmk', 'secret', (s, key) =>
      this.pool.module.encrypt(s, { kind: 'aes-gcm', iv, aad }, key, plaintext, plaintext.length + GCM_TAG),
    );
  }

  /** Throws HsmError of class bad-input when the tag, AAD or key does not match. */
  gcmDecrypt(ref: VersionRef, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'cmk', 'secret', (s, key) =>
      this.pool.module.decrypt(s, { kind: 'aes-gcm', iv, aad }, key, sealed, sealed.length),
    );
  }

  cmac(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'siv', 'secret', (s, key) =>
      this.pool.module.sign(s, { kind: 'aes-cmac' }, key, data, 16),
    );
  }

  rsaEncrypt(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'cmk', 'public', (s, key) =>
      this.pool.module.encrypt(s, { kind: 'rsa-oaep-sha1' }, key, data, RSA_2048_BYTES),
    );
  }

  rsaDecrypt(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'cmk', 'private', (s, key) =>
      this.pool.module.decrypt(s, { kind: 'rsa-oaep-sha1' }, key, data, RSA_2048_BYTES),
    );
  }

  rsaSign(ref: VersionRef, m: Mechanism, data: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'cmk', 'private', (s, key) => this.pool.module.sign(s, m, key, data, RSA_2048_BYTES));
  }

  rsaVerify(ref: VersionRef, m: Mechanism, data: Buffer, signature: Buffer): Promise<boolean> {
    return this.withObject(ref, 'cmk', 'public', (s, key) => this.pool.module.verify(s, m, key, data, signature));
  }

  /** Modulus and public exponent of a version's public key (public values, readable by design). */
  rsaPublicKey(ref: VersionRef): Promise<{ modulus: Buffer; exponent: Buffer }> {
    return this.withObject(ref, 'cmk', 'public', (s, key) => {
      const a = this.pool.module.getAttributes(s, key, [C.CKA_MODULUS, C.CKA_PUBLIC_EXPONENT]);
      return { modulus: a.get(C.CKA_MODULUS)!, exponent: a.get(C.CKA_PUBLIC_EXPONENT)! };
    });
  }

  /**
   * Every p11kms object on the token (CKA_ID in the objectId layout), for reconciliation with the
   * store. Objects of other applications on a shared token are left out.
   */
  async listObjects(): Promise<TokenObject[]> {
    return this.pool.use(async (s) => {
      const m = this.pool.module;
      const out: TokenObject[] = [];
      const handles = m.findAllObjects(s, [{ type: C.CKA_TOKEN, value: true }]);
      for (let i = 0; i < handles.length; i++) {
        // Thousands of attribute reads are slow and synchronous: let requests run between chunks.
        if (i > 0 && i % LIST_CHUNK === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        let a: Map<number, Buffer>;
        try {
          a = m.getAttributes(s, handles[i]!, [C.CKA_ID, C.CKA_LABEL]);
        } catch (e) {
          // Destroyed by a request (a purge) since it was listed: it is simply gone.
          if (e instanceof HsmError && e.ckrName === 'CKR_OBJECT_HANDLE_INVALID') continue;
          throw e;
        }
        const id = a.get(C.CKA_ID);
        const label = a.get(C.CKA_LABEL)?.toString('utf8') ?? '';
        if (!id || id.length !== 21 || !label.startsWith('p11kms/')) continue;
        const hex = id.subarray(0, 16).toString('hex');
        const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
        out.push({ keyId, version: id.readUInt32BE(16), role: id.readUInt8(20) === 0 ? 'cmk' : 'siv' });
      }
      return out;
    }, RETRY);
  }

  /** Whether a session works end to end: open or reuse one and draw random bytes from it. */
  async healthy(): Promise<boolean> {
    try {
      await this.random(8);
      return true;
    } catch {
      return false;
    }
  }

  private async withObject<T>(
    ref: VersionRef,
    role: ObjectRole,
    cls: ObjectClass,
    fn: (s: SessionHandle, key: ObjectHandle) => T,
  ): Promise<T> {
    const id = objectId(ref, role);
    const k = cacheKey(id, cls);
    return this.pool.use((s) => {
      // Handles don't survive a re-initialisation of the module.
      if (this.handlesGeneration !== this.pool.generation) {
        this.handles.clear();
        this.handlesGeneration = this.pool.generation;
      }
      const cached = this.handles.get(k);
      if (cached) {
        try {
          return fn(s, cached);
        } catch (e) {
          // A handle can go stale when another process destroyed and re-created objects.
          if (!(e instanceof HsmError && (e.ckrName === 'CKR_KEY_HANDLE_INVALID' || e.ckrName === 'CKR_OBJECT_HANDLE_INVALID'))) {
            throw e;
          }
          this.handles.delete(k);
        }
      }
      const [found] = this.pool.module.findObjects(
        s,
        [
          { type: C.CKA_ID, value: id },
          { type: C.CKA_CLASS, value: classValue[cls] },
        ],
        1,
      );
      if (!found) {
        // A session that lost its login (token logged out under us) sees no private objects:
        // report that as what it is, so the pool logs in on a fresh session and retries.
        if (!this.pool.module.isLoggedIn(s)) throw new HsmError(0x101, 'CKR_USER_NOT_LOGGED_IN', 'findKey');
        throw new HsmError(0x82, 'CKR_OBJECT_HANDLE_INVALID', 'findKey');
      }
      this.handles.set(k, found);
      return fn(s, found);
    }, RETRY);
  }
}

function cacheKey(id: Buffer, cls: ObjectClass): string {
  return `${cls}:${id.toString('hex')}`;
}
