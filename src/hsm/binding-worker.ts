/**
 * The other half of binding.ts: worker threads for PKCS#11 calls that should not stop the event
 * loop. Two kinds of request:
 *  - searches, listings and the attribute reads of a listing, whose cost grows with the number of
 *    objects on the token: SoftHSM's file backend opens and locks every object's file on each
 *    C_FindObjectsInit, however narrow the template, and its attribute reads add up on a big
 *    token (bench/README.md);
 *  - batches of data keys sealed ahead of demand (src/kms/datakey-stock.ts says why), on a thread
 *    of their own so that a long search doesn't hold them up.
 *
 * It loads the same library into the same process, so it shares the main thread's initialised
 * module, login and handles. It calls neither C_Initialize nor C_OpenSession: each request runs on
 * the session the main thread leased for it, and the handles it returns are valid there. Handles,
 * attribute values and data keys travel packed into one buffer each, since a cloned Buffer would
 * bring the whole pooled slab it may live in.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, gcmMechanism, GONE, toHsmError, UNREADABLE } from './binding';

/** What binding.ts starts a thread with. */
export interface WorkerOptions {
  readonly modulePath: string;
  /** Run in Linux's SCHED_IDLE class (backgroundThread). */
  readonly background: boolean;
}

export interface WireAttribute {
  readonly type: number;
  readonly value?: number | boolean | string | Uint8Array;
}

export interface FindRequest {
  readonly id: number;
  readonly kind: 'find';
  readonly session: Uint8Array;
  readonly template: readonly WireAttribute[];
  /** Most handles wanted; 0 = all. */
  readonly max: number;
}

/** The answer to a request whose PKCS#11 call failed. */
export interface WorkerError {
  readonly id: number;
  readonly error: { readonly ckr: number; readonly ckrName: string; readonly method: string };
}

/** `read` attributes of each of `handles` (found by an earlier search on this module generation). */
export interface ReadRequest {
  readonly id: number;
  readonly kind: 'read';
  readonly session: Uint8Array;
  /** The handles, each `handleBytes` long, end to end. */
  readonly handles: Uint8Array;
  readonly handleBytes: number;
  readonly read: readonly number[];
}

/** The answer to a FindRequest or a ReadRequest. */
export type FindReply =
  | {
      readonly id: number;
      /** The handles, each `handleBytes` long, end to end. */
      readonly handles: Uint8Array;
      readonly handleBytes: number;
      /** Per handle and read attribute in order, its value's length; GONE or UNREADABLE for every attribute of an object without values. */
      readonly lengths: readonly number[];
      readonly values: Uint8Array;
    }
  | WorkerError;

/**
 * `count` data keys on the caller's session: per key, `length` random bytes from the token, sealed
 * with AES-GCM under `key` with its own IV from `ivs` (12 bytes each) and the shared `aad`.
 */
export interface SealRequest {
  readonly id: number;
  readonly kind: 'seal';
  readonly session: Uint8Array;
  readonly key: Uint8Array;
  readonly ivs: Uint8Array;
  readonly aad: Uint8Array;
  readonly length: number;
}

export type SealReply =
  | {
      readonly id: number;
      /** Per key, its plaintext then its sealed bytes (length + 16), end to end. */
      readonly keys: Uint8Array;
    }
  | WorkerError;

const BATCH = 256;

function buffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** `parts` end to end in memory of their own (Buffer.concat may answer with a slice of a shared slab). */
function packed(parts: readonly Buffer[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Session states of a logged-in user (PKCS#11 v2.40 §5.6: CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS). */
const USER_STATES: ReadonlySet<number> = new Set([1, 3]);

type Found = Omit<Extract<FindReply, { handles: Uint8Array }>, 'id'>;

/**
 * Runs `body` on the request's session and answers with what it found, or with the error of the
 * call it was in (`at.method`). A session that is not logged in sees no private object, and the
 * event loop may log the application out and in again while this runs (a token fault): an answer
 * not logged in from start to end is no answer, lest an object it could not see pass for gone. The
 * pool logs in and retries, as for a search on the loop.
 */
function whileLoggedIn(lib: pkcs11js.PKCS11, id: number, s: Buffer, method: string, body: (at: { method: string }) => Found): FindReply {
  const at = { method: 'C_GetSessionInfo' };
  const loggedIn = (): boolean => USER_STATES.has(lib.C_GetSessionInfo(s).state);
  const notLoggedIn = { id, error: { ckr: pkcs11js.CKR_USER_NOT_LOGGED_IN, ckrName: 'CKR_USER_NOT_LOGGED_IN', method } };
  try {
    if (!loggedIn()) return notLoggedIn;
    const found = body(at);
    at.method = 'C_GetSessionInfo';
    if (!loggedIn()) return notLoggedIn;
    return { id, ...found };
  } catch (e) {
    const h = toHsmError(at.method, e);
    return { id, error: { ckr: h.ckr, ckrName: h.ckrName, method: at.method } };
  }
}

function find(lib: pkcs11js.PKCS11, r: FindRequest): FindReply {
  const s = buffer(r.session);
  return whileLoggedIn(lib, r.id, s, 'C_FindObjects', (at) => {
    at.method = 'C_FindObjectsInit';
    const template = r.template.map((a) => (a.value instanceof Uint8Array ? { type: a.type, value: buffer(a.value) } : a));
    lib.C_FindObjectsInit(s, template as pkcs11js.Template);
    const handles: Buffer[] = [];
    try {
      at.method = 'C_FindObjects';
      for (;;) {
        const want = r.max > 0 ? Math.min(BATCH, r.max - handles.length) : BATCH;
        const batch = lib.C_FindObjects(s, want);
        handles.push(...batch);
        if (batch.length < want || (r.max > 0 && handles.length >= r.max)) break;
      }
    } finally {
      at.method = 'C_FindObjectsFinal';
      lib.C_FindObjectsFinal(s);
    }
    // Just the handles: a listing reads the attributes of those it has not seen (a ReadRequest).
    return { handles: packed(handles), handleBytes: handles[0]?.length ?? 0, lengths: [], values: new Uint8Array(0) };
  });
}

function read(lib: pkcs11js.PKCS11, r: ReadRequest): FindReply {
  const s = buffer(r.session);
  return whileLoggedIn(lib, r.id, s, 'C_GetAttributeValue', (at) => {
    const handles: Buffer[] = [];
    for (let i = 0; r.handleBytes > 0 && i < r.handles.length; i += r.handleBytes) handles.push(buffer(r.handles.subarray(i, i + r.handleBytes)));
    at.method = 'C_GetAttributeValue';
    const { lengths, values } = readAttributes(lib, s, handles, r.read);
    return { handles: r.handles, handleBytes: r.handleBytes, lengths, values: packed(values) };
  });
}

/**
 * Per handle and attribute, its value's length, and the values: GONE for each attribute of an
 * object destroyed meanwhile, UNREADABLE for each attribute of an object lacking one of them.
 */
function readAttributes(lib: pkcs11js.PKCS11, s: Buffer, handles: readonly Buffer[], read: readonly number[]): { lengths: number[]; values: Buffer[] } {
  const lengths: number[] = [];
  const values: Buffer[] = [];
  for (const h of read.length > 0 ? handles : []) {
    let got: pkcs11js.Attribute[];
    try {
      got = lib.C_GetAttributeValue(s, h, read.map((type) => ({ type })));
    } catch (e) {
      const code = e instanceof pkcs11js.Pkcs11Error ? e.code : undefined;
      // Destroyed (by another process) since it was found: left out. Without one of the attributes
      // (another application's object: CKO_DATA has no CKA_ID): no attributes, so a listing knows it is not ours.
      if (code === pkcs11js.CKR_OBJECT_HANDLE_INVALID || code === pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID) {
        for (let i = 0; i < read.length; i++) lengths.push(code === pkcs11js.CKR_OBJECT_HANDLE_INVALID ? GONE : UNREADABLE);
        continue;
      }
      throw e;
    }
    for (const a of got) {
      const v = Buffer.isBuffer(a.value) ? a.value : Buffer.alloc(0);
      lengths.push(v.length);
      values.push(v);
    }
  }
  return { lengths, values };
}

function seal(lib: pkcs11js.PKCS11, r: SealRequest): { reply: SealReply; transfer: ArrayBuffer[] } {
  const s = buffer(r.session);
  const key = buffer(r.key);
  const aad = buffer(r.aad);
  const count = r.ivs.length / GCM_IV_BYTES;
  const per = 2 * r.length + GCM_TAG_BYTES;
  const keys = new Uint8Array(count * per);
  const out = buffer(keys);
  let method = 'C_GenerateRandom';
  try {
    // One draw for all the plaintexts, as the event loop draws one per turn.
    lib.C_GenerateRandom(s, out.subarray(0, count * r.length));
    // Key i's plaintext moves to i * per, the last first, so that no draw is overwritten before it
    // moves; what is left behind is overwritten by the sealed bytes.
    for (let i = count - 1; i >= 0; i--) out.copy(out, i * per, i * r.length, (i + 1) * r.length);
    for (let i = 0; i < count; i++) {
      const at = i * per;
      const iv = buffer(r.ivs.subarray(i * GCM_IV_BYTES, (i + 1) * GCM_IV_BYTES));
      method = 'C_EncryptInit';
      lib.C_EncryptInit(s, gcmMechanism(iv, aad), key);
      method = 'C_Encrypt';
      lib.C_Encrypt(s, out.subarray(at, at + r.length), out.subarray(at + r.length, at + per));
    }
    return { reply: { id: r.id, keys }, transfer: [keys.buffer] };
  } catch (e) {
    keys.fill(0);
    const h = toHsmError(method, e);
    return { reply: { id: r.id, error: { ckr: h.ckr, ckrName: h.ckrName, method } }, transfer: [] };
  }
}

/**
 * Puts this thread in Linux's SCHED_IDLE class, where any other thread that wakes up takes the
 * core from it at once. Why: on 1 process of 2 cores, the seal thread's bursts held up the threads
 * requests wait on, the audit writer's fdatasync on libuv's pool above all, which waited on the run
 * queue (measured in bench/README.md). Nice 19 does not do it: Linux's
 * EEVDF scheduler doesn't let a waking thread preempt a niced one sooner. SCHED_IDLE is not strict
 * idle, so the thread still makes progress on a busy machine (a small weight, not none), and a thread waiting for a SoftHSM lock it holds frees a core for it. Node has no
 * call for a thread's scheduling class, so util-linux's `chrt` sets it, once; where that fails
 * (not Linux, no chrt) the thread keeps the default class and only the speed differs.
 */
function backgroundThread(): void {
  try {
    const tid = readlinkSync('/proc/thread-self').split('/').pop() ?? '';
    if (!/^\d+$/.test(tid)) return;
    execFileSync('chrt', ['--idle', '--pid', '0', tid], { stdio: 'ignore', timeout: 5000 });
  } catch {
    // The default class: see above.
  }
}

if (parentPort) {
  const port = parentPort;
  const options = workerData as WorkerOptions;
  if (options.background) backgroundThread();
  const lib = new pkcs11js.PKCS11();
  lib.load(options.modulePath);
  port.on('message', (r: FindRequest | ReadRequest | SealRequest) => {
    if (r.kind === 'find') return port.postMessage(find(lib, r));
    if (r.kind === 'read') return port.postMessage(read(lib, r));
    // The reply's buffer moves to the event loop: no copy of the plaintexts stays on this thread.
    const { reply, transfer } = seal(lib, r);
    port.postMessage(reply, transfer);
  });
}
