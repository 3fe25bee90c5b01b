/**
 * The operations of hsm.ts for a token reached through session threads (threads.ts): every call
 * is a message to a thread that owns its session, with a deadline, and the event loop never waits
 * for the token. Plain on purpose: no session copies, no turn batching, no data keys sealed ahead
 * (SoftHSM's speed-ups; the in-process path keeps them). Object handles are cached per module
 * initialisation and looked up again when stale.
 */
import { C, GCM_TAG_BYTES, type Mechanism, type Template, hsmError } from './binding';
import {
  classOf,
  findTemplate,
  isStaleHandle,
  knownKey,
  LISTED_ATTRIBUTES,
  objectId,
  objectLabel,
  p11kmsObject,
  type ObjectClass,
  type ObjectRole,
  type TokenObject,
  type VersionRef,
} from './hsm';
import type { Hsm } from './index';
import type { TokenWriter } from './keygen-process';
import { aesCmkTemplate, aesSivTemplate, rsaCmkTemplates } from './templates';
import type { WireTemplate } from './thread-protocol';
import type { SessionThreads } from './threads';

const RETRY = { retry: true } as const;
const RSA_2048_BYTES = 256;
/** /healthz must answer within 3 s even while the token is silent. */
const HEALTH_DEADLINE_MS = 2000;
const READ_CHUNK = 256;
/** Listings read every object of the token: far longer than one call may take. */
const LISTING_DEADLINE_MS = 120_000;
/** An RSA key pair takes up to seconds of the token's CPU. */
const KEYGEN = { deadlineMs: 60_000 } as const;

const wire = (t: Template): WireTemplate => t.map((a) => (Buffer.isBuffer(a.value) ? { type: a.type, value: new Uint8Array(a.value) } : a));
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class ThreadedHsm implements Hsm {
  private readonly known = new Map<string, Buffer>();
  private knownGeneration = -1;
  readonly findsOffThread = false;
  readonly sessionCopies = 0;

  constructor(
    private readonly threads: SessionThreads,
    private readonly writer?: TokenWriter,
  ) {}

  async random(length: number): Promise<Buffer> {
    return buf(await this.threads.call({ op: 'random', length }, RETRY));
  }

  async createAesVersion(ref: VersionRef, withSiv: boolean): Promise<void> {
    const templates = [aesCmkTemplate(objectId(ref, 'cmk'), objectLabel(ref, 'cmk'), false)];
    if (withSiv) templates.push(aesSivTemplate(objectId(ref, 'siv'), objectLabel(ref, 'siv'), false));
    if (this.writer) return this.writer.aes(templates);
    for (const t of templates) await this.threads.call({ op: 'generateKey', mechanism: { kind: 'aes-key-gen' }, template: wire(t) }, KEYGEN);
  }

  async createRsaVersion(ref: VersionRef): Promise<void> {
    const { publicTemplate, privateTemplate } = rsaCmkTemplates(objectId(ref, 'cmk'), objectLabel(ref, 'cmk'));
    if (this.writer) return this.writer.rsa(publicTemplate, privateTemplate);
    await this.threads.call({ op: 'generateKeyPair', mechanism: { kind: 'rsa-key-pair-gen' }, publicTemplate: wire(publicTemplate), privateTemplate: wire(privateTemplate) }, KEYGEN);
  }

  async destroyVersion(ref: VersionRef): Promise<number> {
    const ids = [objectId(ref, 'cmk'), objectId(ref, 'siv')];
    for (const role of ['cmk', 'siv'] as const) for (const cls of ['secret', 'public', 'private'] as const) this.known.delete(knownKey(ref, role, cls));
    const handles: Buffer[] = [];
    for (const id of ids) {
      const found = await this.threads.call({ op: 'find', template: wire([{ type: C.CKA_ID, value: id }, { type: C.CKA_TOKEN, value: true }]), max: 0 }, RETRY);
      handles.push(...found.map(buf));
    }
    if (handles.length === 0) return 0;
    if (this.writer) return this.writer.destroy(ids, handles.length);
    for (const h of handles) {
      try {
        await this.threads.call({ op: 'destroy', handle: new Uint8Array(h) });
      } catch (e) {
        if (!isStaleHandle(e)) throw e; // destroyed meanwhile: fine
      }
    }
    return handles.length;
  }

  gcmEncrypt(ref: VersionRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    return this.crypt('encrypt', ref, 'cmk', 'secret', { kind: 'aes-gcm', iv, aad }, plaintext, plaintext.length + GCM_TAG_BYTES);
  }

  gcmEncryptRandom(ref: VersionRef, length: number, iv: Buffer, aad: Buffer): Promise<{ plaintext: Buffer; sealed: Buffer }> {
    return this.withKey(ref, 'cmk', 'secret', async (key) => {
      const out = await this.threads.call({ op: 'sealRandom', key, length, iv: new Uint8Array(iv), aad: new Uint8Array(aad) }, RETRY);
      return { plaintext: buf(out.plaintext), sealed: buf(out.sealed) };
    });
  }

  gcmEncryptRandomMany(): Promise<Array<{ plaintext: Buffer; sealed: Buffer }>> {
    return Promise.reject(new Error('data keys are not sealed ahead on session threads'));
  }

  gcmDecrypt(ref: VersionRef, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer> {
    return this.crypt('decrypt', ref, 'cmk', 'secret', { kind: 'aes-gcm', iv, aad }, sealed, sealed.length);
  }

  cmac(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.crypt('sign', ref, 'siv', 'secret', { kind: 'aes-cmac' }, data, 16);
  }

  rsaEncrypt(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.crypt('encrypt', ref, 'cmk', 'public', { kind: 'rsa-oaep-sha1' }, data, RSA_2048_BYTES);
  }

  rsaDecrypt(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.crypt('decrypt', ref, 'cmk', 'private', { kind: 'rsa-oaep-sha1' }, data, RSA_2048_BYTES);
  }

  rsaSign(ref: VersionRef, m: Mechanism, data: Buffer): Promise<Buffer> {
    return this.crypt('sign', ref, 'cmk', 'private', m, data, RSA_2048_BYTES);
  }

  rsaVerify(ref: VersionRef, m: Mechanism, data: Buffer, signature: Buffer): Promise<boolean> {
    return this.withKey(ref, 'cmk', 'public', (key) =>
      this.threads.call({ op: 'verify', mechanism: m, key, data: new Uint8Array(data), signature: new Uint8Array(signature) }, RETRY),
    );
  }

  rsaPublicKey(ref: VersionRef): Promise<{ modulus: Buffer; exponent: Buffer }> {
    return this.withKey(ref, 'cmk', 'public', async (key) => {
      const [values] = await this.threads.call({ op: 'read', handles: [key], types: [C.CKA_MODULUS, C.CKA_PUBLIC_EXPONENT] }, RETRY);
      if (!Array.isArray(values)) throw hsmError('CKR_OBJECT_HANDLE_INVALID', 'C_GetAttributeValue');
      return { modulus: buf(values[0]!), exponent: buf(values[1]!) };
    });
  }

  /** Every p11kms object on the token; teaches the handle cache what it reads. */
  async listObjects(): Promise<TokenObject[]> {
    const generation = this.threads.generation;
    const handles = (await this.threads.call({ op: 'find', template: wire([{ type: C.CKA_TOKEN, value: true }]), max: 0 }, { retry: true, deadlineMs: LISTING_DEADLINE_MS })).map(buf);
    const out: TokenObject[] = [];
    for (let i = 0; i < handles.length; i += READ_CHUNK) {
      const chunk = handles.slice(i, i + READ_CHUNK);
      const read = await this.threads.call({ op: 'read', handles: chunk.map((h) => new Uint8Array(h)), types: [...LISTED_ATTRIBUTES] }, { retry: true, deadlineMs: LISTING_DEADLINE_MS });
      read.forEach((values, j) => {
        if (!Array.isArray(values)) return;
        const attributes = new Map<number, Buffer>(LISTED_ATTRIBUTES.map((type, k) => [type, buf(values[k]!)]));
        const object = p11kmsObject(attributes);
        if (!object) return;
        out.push(object);
        const cls = classOf(attributes.get(C.CKA_CLASS));
        if (cls && generation === this.threads.generation) {
          this.sync();
          const key = knownKey(object, object.role, cls);
          if (!this.known.has(key)) this.known.set(key, chunk[j]!);
        }
      });
    }
    return out;
  }

  async pruneCopies(): Promise<number> {
    return 0;
  }

  async countModifiableVersions(): Promise<number> {
    const modifiable = wire([
      { type: C.CKA_TOKEN, value: true },
      { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
      { type: C.CKA_MODIFIABLE, value: true },
    ]);
    const handles = await this.threads.call({ op: 'find', template: modifiable, max: 0 }, { retry: true, deadlineMs: LISTING_DEADLINE_MS });
    let n = 0;
    for (let i = 0; i < handles.length; i += READ_CHUNK) {
      const read = await this.threads.call({ op: 'read', handles: handles.slice(i, i + READ_CHUNK), types: [...LISTED_ATTRIBUTES] }, { retry: true, deadlineMs: LISTING_DEADLINE_MS });
      for (const values of read) {
        if (Array.isArray(values) && p11kmsObject(new Map(LISTED_ATTRIBUTES.map((type, k) => [type, buf(values[k]!)])))?.role === 'cmk') n++;
      }
    }
    return n;
  }

  async healthy(): Promise<boolean> {
    try {
      await this.threads.call({ op: 'random', length: 8 }, { deadlineMs: HEALTH_DEADLINE_MS });
      return true;
    } catch {
      return false;
    }
  }

  private crypt(op: 'encrypt' | 'decrypt' | 'sign', ref: VersionRef, role: ObjectRole, cls: ObjectClass, mechanism: Mechanism, data: Buffer, outLength: number): Promise<Buffer> {
    return this.withKey(ref, role, cls, async (key) => buf(await this.threads.call({ op, mechanism, key, data: new Uint8Array(data), outLength }, RETRY)));
  }

  /** `fn` with the version's handle; a stale one (destroyed, or the module re-initialised) is searched for again, once. */
  private async withKey<T>(ref: VersionRef, role: ObjectRole, cls: ObjectClass, fn: (key: Uint8Array) => Promise<T>): Promise<T> {
    const key = knownKey(ref, role, cls);
    for (let attempt = 0; ; attempt++) {
      this.sync();
      let handle = this.known.get(key);
      if (!handle) {
        const generation = this.threads.generation;
        const [found] = await this.threads.call({ op: 'find', template: wire(findTemplate(ref, role, cls)), max: 1 }, RETRY);
        if (!found) throw hsmError('CKR_OBJECT_HANDLE_INVALID', 'findKey');
        handle = buf(found);
        if (generation === this.threads.generation) {
          this.sync();
          this.known.set(key, handle);
        }
      }
      try {
        return await fn(new Uint8Array(handle));
      } catch (e) {
        if (!isStaleHandle(e) || attempt > 0) throw e;
        if (this.known.get(key) === handle) this.known.delete(key);
      }
    }
  }

  private sync(): void {
    if (this.knownGeneration !== this.threads.generation) {
      this.known.clear();
      this.knownGeneration = this.threads.generation;
    }
  }
}
