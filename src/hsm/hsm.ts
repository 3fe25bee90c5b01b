/**
 * The operations the domain needs from the token, named by key version rather than by handle.
 * Every call goes through the session pool, except the making and destroying of versions' token
 * objects when a token writer is given (keygen-process.ts: another process, off the event loop, so
 * that this process never writes a token object). Object handles are cached per process (PKCS#11
 * handles of token objects stay valid across sessions of one application) and looked up again
 * when stale.
 *
 * Session copies: SoftHSM re-reads a token object's file (about 14 file system calls) on every use,
 * which made the token-object CMK the largest cost of a data-key request. So the first use of an
 * AES key version in a process makes a session copy of it (C_CopyObject with CKA_TOKEN=false; the
 * value never leaves the token and the copy stays sensitive and non-extractable) in the pool's
 * keeper session, and later uses go through the copy, which SoftHSM reads from memory. Bounded by
 * KMS_SESSION_KEY_COPIES, because SoftHSM keeps some memory for every session object it ever made; beyond
 * the bound, and for versions made non-modifiable (which SoftHSM refuses to copy), the token object
 * is used as before. A copy is destroyed with its version, and `pruneCopies` drops copies of
 * versions that another process deleted.
 *
 * The AES and random calls go through a TurnBatch (turn-batch.ts): those of one event-loop turn run
 * back to back, and a data key is drawn and sealed in one of them (gcmEncryptRandom).
 *
 * Finding objects: SoftHSM's file backend checks every object's file on each C_FindObjectsInit
 * (long on a big token), so a version's first use in a process, a destroy and a reconciliation
 * listing would stop the event loop that long. When a token writer makes and destroys the objects
 * (no token object is written in this process), those searches run on the binding's worker thread
 * instead, and a listing teaches this process every handle it sees, so that a restart on a big
 * token doesn't pay one search per key. With objects written in this process they stay on the
 * loop: SoftHSM would then see a file being written from one thread and read from another, and
 * fcntl locks don't tell threads apart. Data keys sealed ahead (gcmEncryptRandomMany) run on a
 * worker thread under the same condition. Such a thread may use a session copy while the event
 * loop destroys it (a pruned or deleted version, a keeper session closed): SoftHSM never frees a
 * session object, it marks it invalid, so the thread's call fails with a stale handle and the next
 * use finds the object again.
 */
import { endianness } from 'node:os';
import { C, GCM_TAG_BYTES, HsmError, type Listed, type Mechanism, type ObjectHandle, type SessionHandle, type Template, hsmError } from './binding';
import { classify } from './ckr';
import { Gate } from './gate';
import { hex, ListingMemo } from './listing-memo';
import type { TokenWriter } from './keygen-process';
import type { SessionPool } from './pool';
import { TurnBatch } from './turn-batch';
import { aesCmkTemplate, aesSivTemplate, rsaCmkTemplates, sessionCopyTemplate } from './templates';

/** One version of one CMK; `role` tells the objects of that version apart. */
export interface VersionRef {
  readonly keyId: string;
  readonly version: number;
}
export type ObjectRole = 'cmk' | 'siv';
export type ObjectClass = 'secret' | 'public' | 'private';

const RSA_PRIVATE_AT_ONCE = 2;
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
/** Most random bytes drawn at once for the data keys of one flush (see drawDataKey). */
const TURN_RANDOM_MAX = 2048;
const LIST_CHUNK = 256;
/** What a listing reads of each object it has not seen before. */
export const LISTED_ATTRIBUTES = [C.CKA_ID, C.CKA_LABEL, C.CKA_CLASS] as const;
/**
 * The longest a listing trusts what an earlier one read of a handle (listing-memo.ts): the orphan
 * grace period's default, so that on a module that reuses handles an orphan is still found within
 * about two grace periods.
 */
const LISTING_MEMO_MS = 3_600_000;
/** A first use this soon after another's search lists the token instead (withObject). */
const SEARCHES_CLOSE_MS = 1000;

/** A p11kms object of a listing, and what the handle cache needs to learn it. */
interface Listing {
  readonly object: TokenObject;
  readonly handle: ObjectHandle;
  readonly cls: ObjectClass | undefined;
}

/** A version's object as this process knows it: the token object's handle and, maybe, a session copy. */
interface Known {
  readonly ref: VersionRef;
  readonly token: ObjectHandle;
  /** The session copy, valid while the pool's keeper serial is `copyKeeper`. */
  copy?: ObjectHandle | undefined;
  copyKeeper?: number;
  /** The token refused to copy it (made non-modifiable) or copies are off: always the token object. */
  noCopy?: boolean;
}

export interface HsmOptions {
  /** Most session copies this process keeps (KMS_SESSION_KEY_COPIES); 0 = none. */
  readonly sessionCopies: number;
  /** Run the symmetric crypto calls of one event-loop turn back to back (turn-batch.ts); default true. */
  readonly batchPerTurn?: boolean;
  /** Who makes and destroys CMK versions' token objects (keygen-process.ts); default: this process, on pooled sessions. */
  readonly tokenWriter?: TokenWriter;
  /** RSA private-key operations on libuv's thread pool (KMS_RSA_OFF_THREAD); default true. */
  readonly rsaOffThread?: boolean;
  /** Object searches on the binding's worker thread (KMS_FIND_OFF_THREAD), when a token writer is given too; default false. */
  readonly findOffThread?: boolean;
}

export class Hsm {
  private readonly known = new Map<string, Known>();
  private readonly listing = new ListingMemo<Listing>(LISTING_MEMO_MS);
  private relisting: Promise<unknown> | undefined;
  /** When withObject last started or finished a search for one version. */
  private searchedAt = -Infinity;
  /** Searches on the worker thread in progress, by `known` key. */
  private readonly finding = new Map<string, Promise<{ known: Known; generation: number }>>();
  private knownGeneration = 0;
  private copies = 0;
  private copiesKeeper = -1;
  private readonly batch: TurnBatch;
  /** RSA private-key operations in progress off the event loop (gate.ts says why two). */
  private readonly rsaPrivate = new Gate(RSA_PRIVATE_AT_ONCE);
  /** The running flush's draw for its data keys; zeroed and dropped when the flush ends. */
  private turnRandom: Buffer | undefined;
  private turnRandomAt = 0;
  /** Whether object searches run on the worker thread (see the header for when that is safe). */
  readonly findsOffThread: boolean;

  constructor(
    readonly pool: SessionPool,
    private readonly options: HsmOptions = { sessionCopies: 0 },
  ) {
    this.batch = new TurnBatch(options.batchPerTurn ?? true, () => this.dropTurnRandom());
    this.findsOffThread = (options.findOffThread ?? false) && options.tokenWriter !== undefined;
  }

  /** Whether new AES versions are made copyable (CKA_MODIFIABLE=true; see templates.ts). */
  get copiesEnabled(): boolean {
    return this.options.sessionCopies > 0;
  }

  random(length: number): Promise<Buffer> {
    return this.batch.run(() => this.pool.use((s) => this.pool.module.generateRandom(s, length), RETRY));
  }

  async createAesVersion(ref: VersionRef, withSiv: boolean): Promise<void> {
    const templates = [aesCmkTemplate(objectId(ref, 'cmk'), objectLabel(ref, 'cmk'), this.copiesEnabled)];
    if (withSiv) templates.push(aesSivTemplate(objectId(ref, 'siv'), objectLabel(ref, 'siv'), this.copiesEnabled));
    const writer = this.options.tokenWriter;
    if (writer) return writer.aes(templates);
    await this.pool.use((s) => {
      for (const t of templates) this.pool.module.generateKey(s, { kind: 'aes-key-gen' }, t);
    });
  }

  async createRsaVersion(ref: VersionRef): Promise<void> {
    const { publicTemplate, privateTemplate } = rsaCmkTemplates(objectId(ref, 'cmk'), objectLabel(ref, 'cmk'));
    const writer = this.options.tokenWriter;
    if (writer) return writer.rsa(publicTemplate, privateTemplate);
    await this.pool.use((s) =>
      this.pool.module.generateKeyPair(s, { kind: 'rsa-key-pair-gen' }, publicTemplate, privateTemplate),
    );
  }

  /** Destroys every object of a version (all roles, all classes); returns how many there were. */
  async destroyVersion(ref: VersionRef): Promise<number> {
    const ids = [objectId(ref, 'cmk'), objectId(ref, 'siv')];
    const writer = this.options.tokenWriter;
    // Token objects only: a session copy would match CKA_ID too, and forget() takes care of it.
    const templates = ids.map((id): Template => [{ type: C.CKA_ID, value: id }, { type: C.CKA_TOKEN, value: true }]);
    const forgetAll = (s: SessionHandle): void => {
      this.syncGeneration();
      for (const role of ['cmk', 'siv'] as const) {
        for (const cls of ['secret', 'public', 'private'] as const) this.forget(s, knownKey(ref, role, cls));
      }
    };
    // Idempotent (find, then destroy what is there), so a fault is retried.
    if (writer && this.findsOffThread) {
      const found = await this.pool.use(async (s) => {
        forgetAll(s);
        let count = 0;
        for (const t of templates) count += (await this.pool.module.findObjectsOffThread(s, t)).length;
        return count;
      }, RETRY);
      return found > 0 ? writer.destroy(ids, found) : 0;
    }
    const found = await this.pool.use((s) => {
      forgetAll(s);
      let count = 0;
      for (const t of templates) {
        for (const h of this.pool.module.findObjects(s, t)) {
          if (!writer) this.pool.module.destroyObject(s, h);
          count++;
        }
      }
      return count;
    }, RETRY);
    return writer && found > 0 ? writer.destroy(ids, found) : found;
  }

  gcmEncrypt(ref: VersionRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    return this.batch.run(() =>
      this.withObject(ref, 'cmk', 'secret', (s, key) =>
        this.pool.module.encrypt(s, { kind: 'aes-gcm', iv, aad }, key, plaintext, plaintext.length + GCM_TAG_BYTES),
      ),
    );
  }

  /**
   * `length` random bytes from the token and their GCM encryption under `ref`, in one visit to the
   * token: a data key costs one lease and one turn of the event loop, not two of each.
   */
  gcmEncryptRandom(ref: VersionRef, length: number, iv: Buffer, aad: Buffer): Promise<{ plaintext: Buffer; sealed: Buffer }> {
    return this.batch.run(() =>
      this.withObject(ref, 'cmk', 'secret', (s, key) => {
        const m = this.pool.module;
        const plaintext = this.drawDataKey(s, length);
        try {
          return { plaintext, sealed: m.encrypt(s, { kind: 'aes-gcm', iv, aad }, key, plaintext, length + GCM_TAG_BYTES) };
        } catch (e) {
          plaintext.fill(0);
          throw e;
        }
      }),
    );
  }

  /**
   * As gcmEncryptRandom for one data key per IV in `ivs`, all on the binding's seal thread, for
   * DataKeyStock: one lease and one message each way, and the event loop serves meanwhile. Only
   * where object searches may run off the loop too (findsOffThread): the same conditions.
   */
  gcmEncryptRandomMany(ref: VersionRef, length: number, ivs: readonly Buffer[], aad: Buffer): Promise<Array<{ plaintext: Buffer; sealed: Buffer }>> {
    if (!this.findsOffThread) return Promise.reject(new Error('data keys are sealed ahead only where the binding may run calls off the event loop'));
    return this.withObject(ref, 'cmk', 'secret', (s, key) => this.pool.module.sealRandomOffThread(s, key, length, ivs, aad));
  }

  /** Throws HsmError of class bad-input when the tag, AAD or key does not match. */
  gcmDecrypt(ref: VersionRef, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer> {
    return this.batch.run(() =>
      this.withObject(ref, 'cmk', 'secret', (s, key) =>
        this.pool.module.decrypt(s, { kind: 'aes-gcm', iv, aad }, key, sealed, sealed.length),
      ),
    );
  }

  cmac(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.batch.run(() =>
      this.withObject(ref, 'siv', 'secret', (s, key) => this.pool.module.sign(s, { kind: 'aes-cmac' }, key, data, 16)),
    );
  }

  rsaEncrypt(ref: VersionRef, data: Buffer): Promise<Buffer> {
    return this.withObject(ref, 'cmk', 'public', (s, key) =>
      this.pool.module.encrypt(s, { kind: 'rsa-oaep-sha1' }, key, data, RSA_2048_BYTES),
    );
  }

  rsaDecrypt(ref: VersionRef, data: Buffer): Promise<Buffer> {
    const m: Mechanism = { kind: 'rsa-oaep-sha1' };
    return this.withPrivateKey(
      ref,
      (s, key) => this.pool.module.decrypt(s, m, key, data, RSA_2048_BYTES),
      (s, key) => this.pool.module.decryptOffThread(s, m, key, data, RSA_2048_BYTES),
    );
  }

  rsaSign(ref: VersionRef, m: Mechanism, data: Buffer): Promise<Buffer> {
    return this.withPrivateKey(
      ref,
      (s, key) => this.pool.module.sign(s, m, key, data, RSA_2048_BYTES),
      (s, key) => this.pool.module.signOffThread(s, m, key, data, RSA_2048_BYTES),
    );
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
   * store. Objects of other applications on a shared token are left out. Each listing searches the
   * whole token, and reads the attributes of the objects it has not seen before (listing-memo.ts).
   */
  async listObjects(): Promise<TokenObject[]> {
    const all: Template = [{ type: C.CKA_TOKEN, value: true }];
    return this.pool.use(async (s) => {
      const m = this.pool.module;
      const generation = this.pool.generation;
      const handles = this.findsOffThread ? await m.findObjectsOffThread(s, all, 0) : m.findAllObjects(s, all);
      const fresh = this.listing.unknown(generation, handles);
      const listed = this.findsOffThread ? await m.readAttributesOffThread(s, fresh, LISTED_ATTRIBUTES) : await this.readOnLoop(s, fresh);
      // Handles of a module re-initialised since are of no use: list, but remember and learn nothing.
      const current = generation === this.pool.generation;
      if (current) this.syncGeneration();
      const read = new Map<string, Listing | null>();
      for (const l of listed) {
        const object = p11kmsObject(l.attributes);
        read.set(hex(l.handle), object ? { object, handle: l.handle, cls: classOf(l.attributes.get(C.CKA_CLASS)) } : null);
      }
      // Handles are learned from what was read just now only: a remembered identity may be an
      // hour old, and a handle learned for a version is what its requests use.
      if (current) for (const l of read.values()) if (l) this.learn(l);
      return this.listing.settle(handles, read, current).map((l) => l.object);
    }, RETRY);
  }

  /**
   * AES CMK versions on the token that are CKA_MODIFIABLE (made for session copies, or before they
   * became opt-in): a PIN holder can change their CKA_ID and usage flags. Counted for the start-up log.
   */
  async countModifiableVersions(): Promise<number> {
    const modifiable: Template = [
      { type: C.CKA_TOKEN, value: true },
      { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
      { type: C.CKA_MODIFIABLE, value: true },
    ];
    return this.pool.use(async (s) => {
      const m = this.pool.module;
      const handles = this.findsOffThread ? await m.findObjectsOffThread(s, modifiable, 0) : m.findAllObjects(s, modifiable);
      const listed = this.findsOffThread ? await m.readAttributesOffThread(s, handles, LISTED_ATTRIBUTES) : await this.readOnLoop(s, handles);
      return listed.filter((l) => p11kmsObject(l.attributes)?.role === 'cmk').length;
    }, RETRY);
  }

  /** Attributes of each handle, on the event loop, a chunk at a time; objects destroyed meanwhile are left out, one without a CKA_ID comes with none. */
  private async readOnLoop(s: SessionHandle, handles: readonly ObjectHandle[]): Promise<Listed[]> {
    const m = this.pool.module;
    const out: Listed[] = [];
    for (let i = 0; i < handles.length; i++) {
      // Thousands of attribute reads are slow and synchronous: let requests run between chunks.
      if (i > 0 && i % LIST_CHUNK === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        out.push({ handle: handles[i]!, attributes: m.getAttributes(s, handles[i]!, LISTED_ATTRIBUTES) });
      } catch (e) {
        // Destroyed by a request (a purge) since it was listed: left out.
        if (e instanceof HsmError && e.ckrName === 'CKR_OBJECT_HANDLE_INVALID') continue;
        // Another application's object without a CKA_ID (CKO_DATA on a shared token): not ours.
        if (e instanceof HsmError && e.ckrName === 'CKR_ATTRIBUTE_TYPE_INVALID') out.push({ handle: handles[i]!, attributes: new Map() });
        else throw e;
      }
    }
    return out;
  }

  /** One listing for the first uses waiting on it (withObject), apart from the reconciler's, which must start after its store read. */
  private relist(): Promise<unknown> {
    this.relisting ??= this.listObjects().finally(() => {
      this.relisting = undefined;
    });
    return this.relisting;
  }

  /** Session copies this process holds now. */
  get sessionCopies(): number {
    this.syncGeneration();
    return this.copies;
  }

  /**
   * Destroys the session copies of versions for which `live` says no (deleted by another process;
   * this one's deletions destroy their copies at once). Returns how many were destroyed.
   */
  async pruneCopies(live: (ref: VersionRef) => Promise<boolean>): Promise<number> {
    const dead: string[] = [];
    for (const [key, k] of [...this.known]) if (k.copy !== undefined && !(await live(k.ref))) dead.push(key);
    if (dead.length === 0) return 0;
    return this.pool.use((s) => {
      this.syncGeneration();
      const before = this.copies;
      for (const key of dead) this.forget(s, key);
      return before - this.copies;
    });
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

  /**
   * An RSA private-key operation, on libuv's thread pool unless KMS_RSA_OFF_THREAD=false: on the
   * event loop, a few clients signing cut the data keys served meanwhile (bench/README.md).
   */
  private withPrivateKey(
    ref: VersionRef,
    onLoop: (s: SessionHandle, key: ObjectHandle) => Buffer,
    offLoop: (s: SessionHandle, key: ObjectHandle) => Promise<Buffer>,
  ): Promise<Buffer> {
    if (this.options.rsaOffThread === false) return this.withObject(ref, 'cmk', 'private', onLoop);
    return this.rsaPrivate.run(() => this.withObject(ref, 'cmk', 'private', offLoop));
  }

  private async withObject<T>(
    ref: VersionRef,
    role: ObjectRole,
    cls: ObjectClass,
    fn: (s: SessionHandle, key: ObjectHandle) => T | Promise<T>,
  ): Promise<T> {
    const key = knownKey(ref, role, cls);
    // Another request is searching for it: wait without holding a session, so that a burst of
    // first uses doesn't take the whole pool for one search.
    const searching = this.finding.get(key);
    if (searching) await searching.catch(() => undefined);
    else if (this.findsOffThread && !this.known.has(key) && (this.relisting !== undefined || this.finding.size > 0 || Date.now() - this.searchedAt < SEARCHES_CLOSE_MS)) {
      // Another version is being searched for, or just was: a run of first uses (keys made by
      // another process, clients going through many keys). A search looks at every object, so one
      // listing, which teaches every handle it reads, costs about what a search does and serves
      // them all. What it did not teach (made after it started) is searched for below.
      await this.relist().catch(() => undefined);
    }
    return this.pool.use((s) => {
      this.syncGeneration();
      const cached = this.known.get(key);
      if (cached) {
        let handle: ObjectHandle | undefined;
        try {
          handle = this.handleOf(cached);
          const out = fn(s, handle);
          // A call on another thread finds the handle stale later: forget it, so the next use searches.
          if (out instanceof Promise) {
            return out.catch((e: unknown) => {
              if (isStaleHandle(e)) this.forgetStale(key, cached, handle);
              throw e;
            });
          }
          return out;
        } catch (e) {
          // A handle goes stale when another process destroyed the object, when the token logged
          // out (private handles are forgotten), or when the keeper session (and with it every
          // copy) died: find the object again.
          if (!isStaleHandle(e)) throw e;
          this.forgetStale(key, cached, handle);
        }
      }
      const template = findTemplate(ref, role, cls);
      if (!this.findsOffThread) {
        const found = this.found(s, ref, cls, this.pool.module.findObjects(s, template, 1)[0]);
        this.known.set(key, found);
        return fn(s, this.handleOf(found));
      }
      // One search per object however many requests want it at once: a new key under load would
      // otherwise queue one long search per request on the worker thread.
      let finding = this.finding.get(key);
      if (!finding) {
        this.searchedAt = Date.now();
        const generation = this.pool.generation;
        finding = this.pool.module.findObjectsOffThread(s, template, 1).then(([token]) => {
          const known = this.found(s, ref, cls, token);
          if (generation === this.pool.generation) {
            this.syncGeneration();
            this.known.set(key, known);
          }
          return { known, generation };
        });
        // The window runs from the search's end too: a slow search (a big or busy token) must
        // not leave the next first use outside it.
        const done = (): void => {
          this.finding.delete(key);
          this.searchedAt = Date.now();
        };
        void finding.then(done, done);
        this.finding.set(key, finding);
      }
      return finding.then(({ known, generation }) => {
        // Re-initialised since (the pool waits for the search, not for what follows it): this
        // session and the handle are of the module before; the pool retries on a fresh session.
        if (generation !== this.pool.generation) throw hsmError('CKR_SESSION_HANDLE_INVALID', 'findKey');
        return fn(s, this.handleOf(known));
      });
    }, RETRY);
  }

  /** Forgets a version's handle that a call found stale (and the keeper, if it was the copy), so that the next use searches. */
  private forgetStale(key: string, cached: Known, handle: ObjectHandle | undefined): void {
    // Another use may have found it again meanwhile (a call on another thread fails late).
    if (this.known.get(key) !== cached) return;
    // The copy's keeper may have been replaced while the call ran: only this one is suspect.
    if (handle !== undefined && handle === cached.copy && cached.copyKeeper === this.pool.keeperSerial) this.pool.dropKeeper();
    this.known.delete(key);
  }

  /** What this process knows of a version's object once its handle is found. */
  private found(s: SessionHandle, ref: VersionRef, cls: ObjectClass, token: ObjectHandle | undefined): Known {
    if (!token) {
      // A session that lost its login (token logged out under us) sees no private objects:
      // report that as what it is, so the pool logs in on a fresh session and retries.
      if (!this.pool.module.isLoggedIn(s)) throw hsmError('CKR_USER_NOT_LOGGED_IN', 'findKey');
      throw hsmError('CKR_OBJECT_HANDLE_INVALID', 'findKey');
    }
    return this.knownFor(ref, cls, token);
  }

  private knownFor(ref: VersionRef, cls: ObjectClass, token: ObjectHandle): Known {
    const known: Known = { ref: { keyId: ref.keyId, version: ref.version }, token };
    // Only secret keys: public keys are cheap, and RSA private-key operations are dominated by the RSA math.
    if (cls !== 'secret' || !this.copiesEnabled) known.noCopy = true;
    return known;
  }

  /** Remembers the handle of an object a listing saw, unless this process knows one already (caller: syncGeneration first). */
  private learn(l: Listing): void {
    if (!l.cls) return;
    const key = knownKey(l.object, l.object.role, l.cls);
    if (!this.known.has(key)) this.known.set(key, this.knownFor(l.object, l.cls, l.handle));
  }

  /** The copy when there is a live one; otherwise makes one if allowed, else the token object. */
  private handleOf(k: Known): ObjectHandle {
    if (k.copy !== undefined && k.copyKeeper === this.pool.keeperSerial) return k.copy;
    k.copy = undefined;
    this.syncKeeper(this.pool.keeperSerial);
    if (k.noCopy || this.copies >= this.options.sessionCopies) return k.token;
    try {
      const keeper = this.pool.keeperSession();
      this.syncKeeper(keeper.serial);
      k.copy = this.pool.module.copyObject(keeper.handle, k.token, sessionCopyTemplate);
      k.copyKeeper = keeper.serial;
      this.copies++;
      return k.copy;
    } catch (e) {
      if (!(e instanceof HsmError)) return k.token; // no keeper session now (pool full, token busy): next time
      const cls = classify(e.ckrName);
      // The token object's handle itself is stale: the caller finds it again.
      if (cls === 'token-gone' || isStaleHandle(e)) throw e;
      if (cls === 'session-broken') this.pool.dropKeeper();
      // Anything else is the token refusing this object's copy (made non-modifiable, or a token without C_CopyObject).
      else k.noCopy = true;
      return k.token;
    }
  }

  /**
   * A data key's bytes from the token's RNG. Inside a flush, one C_GenerateRandom serves the data
   * keys of the whole flush (most of a call's cost is per call): each key
   * gets its own copy, its bytes are zeroed in the draw at once, and the rest of the draw is zeroed
   * when the flush ends, so no drawn byte outlives the turn it was drawn in.
   */
  private drawDataKey(s: SessionHandle, length: number): Buffer {
    let draw = this.turnRandom;
    if (draw === undefined || this.turnRandomAt + length > draw.length) {
      // Enough for the rest of the flush's jobs, as if each were a data key of this length.
      const wanted = Math.min(TURN_RANDOM_MAX, length * this.batch.remaining);
      if (wanted <= length) return this.pool.module.generateRandom(s, length);
      this.dropTurnRandom();
      draw = this.turnRandom = this.pool.module.generateRandom(s, wanted);
    }
    const key = Buffer.alloc(length);
    draw.copy(key, 0, this.turnRandomAt, this.turnRandomAt + length);
    draw.fill(0, this.turnRandomAt, this.turnRandomAt + length);
    this.turnRandomAt += length;
    return key;
  }

  private dropTurnRandom(): void {
    this.turnRandom?.fill(0);
    this.turnRandom = undefined;
    this.turnRandomAt = 0;
  }

  /** Drops what this process knows of one object, destroying its session copy. */
  private forget(s: SessionHandle, key: string): void {
    const k = this.known.get(key);
    if (!k) return;
    this.known.delete(key);
    if (k.copy === undefined || k.copyKeeper !== this.pool.keeperSerial) return;
    this.copies--;
    try {
      this.pool.module.destroyObject(s, k.copy);
    } catch (e) {
      // Already gone with its session: nothing to destroy.
      if (!isStaleHandle(e)) throw e;
    }
  }

  /** Handles and copies don't survive a re-initialisation of the module or the loss of the keeper session. */
  private syncGeneration(): void {
    if (this.knownGeneration !== this.pool.generation) {
      this.known.clear();
      this.knownGeneration = this.pool.generation;
    }
    this.syncKeeper(this.pool.keeperSerial);
  }

  /** `copies` counts the copies living in keeper `serial`: a new keeper starts from none. */
  private syncKeeper(serial: number): void {
    if (this.copiesKeeper !== serial) {
      this.copies = 0;
      this.copiesKeeper = serial;
    }
  }
}

/** What withObject searches for: a version's token object of one role and class. */
export function findTemplate(ref: VersionRef, role: ObjectRole, cls: ObjectClass): Template {
  return [
    { type: C.CKA_ID, value: objectId(ref, role) },
    { type: C.CKA_CLASS, value: classValue[cls] },
    { type: C.CKA_TOKEN, value: true },
  ];
}

/** A listed object's CKA_ID and CKA_LABEL, if they are a p11kms object's. */
export function p11kmsObject(a: ReadonlyMap<number, Buffer>): TokenObject | undefined {
  const id = a.get(C.CKA_ID);
  const label = a.get(C.CKA_LABEL)?.toString('utf8') ?? '';
  if (!id || id.length !== 21 || !label.startsWith('p11kms/')) return undefined;
  const hex = id.subarray(0, 16).toString('hex');
  const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { keyId, version: id.readUInt32BE(16), role: id.readUInt8(20) === 0 ? 'cmk' : 'siv' };
}

/** CKA_CLASS as read back: a CK_ULONG in the machine's byte order. */
export function classOf(raw: Buffer | undefined): ObjectClass | undefined {
  if (!raw) return undefined;
  const le = endianness() === 'LE';
  const n = raw.length === 8 ? Number(le ? raw.readBigUInt64LE() : raw.readBigUInt64BE()) : raw.length === 4 ? (le ? raw.readUInt32LE() : raw.readUInt32BE()) : NaN;
  return (Object.keys(classValue) as ObjectClass[]).find((c) => classValue[c] === n);
}

/** The `known` map's key: a plain string built per call on the hot path (the CKA_ID buffer is built only to find an object). */
export function knownKey(ref: VersionRef, role: ObjectRole, cls: ObjectClass): string {
  return `${cls}:${ref.keyId}:${ref.version}:${role}`;
}

export function isStaleHandle(e: unknown): boolean {
  return e instanceof HsmError && (e.ckrName === 'CKR_KEY_HANDLE_INVALID' || e.ckrName === 'CKR_OBJECT_HANDLE_INVALID');
}
