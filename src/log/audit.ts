/**
 * The audit trail: one JSON line per key operation (success or failure), separate from the
 * application log, hash-chained so that an edited, inserted or removed line is detected, and keyed
 * by the token so that a chain rebuilt without it is detected too.
 *
 *   hash = hex(sha256(prev_hash + canonical))
 *   mac  = hex(HMAC-SHA256(token's audit key, "p11kms-audit-v1 <seq> <hash>"))
 *
 * where `canonical` is the record without `hash` and `mac` serialised as JSON with the fields in the
 * order of AUDIT_FIELDS (`count` only on a record that has one), and `prev_hash` is the previous line's hash (64 zeros for the first line of
 * a file). `seq` counts from 1 in each file. The line on disk is exactly `canonical` with
 * `,"hash":"…"` appended before the closing brace, and `,"mac":"…"` after it on the last record of
 * each batch, so any other edit (whitespace, extra field) is detected too.
 *
 * The MAC (src/hsm/audit-key.ts: a non-extractable HMAC key in the token) covers the hash of the
 * batch's last record, which chains every record before it: one token call per batch, like the one
 * write and one fdatasync. Anyone can recompute a SHA-256 chain; only a holder of the token can make
 * a MAC, so a chain rewritten from some record on fails at the first batch it touches. A batch the
 * token could not MAC (token down) is written without one and covered by the next MAC. Records
 * removed from the end leave a valid shorter chain: that is what the head (`p11kms audit head`: the
 * last MAC'd record's seq, hash and MAC), kept off the host, is for.
 *
 * A record is typed: there is no free-form field, so a request body, a token or a plaintext cannot
 * end up in it. Records are group-committed (AuditFileTransport): the service holds each response
 * until the batch holding its record is written (and fdatasync'ed unless disabled), so a failed
 * write can still become an error response.
 *
 * One writer per file: with several processes each has its own file (audit-<slot>.log), so no
 * two processes interleave in one chain.
 */
import { createHash } from 'node:crypto';
import { close, closeSync, fdatasync, fstatSync, ftruncate, openSync, readFileSync, readSync, write } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import TransportStream from 'winston-transport';
import type { Logger } from './logger';

export type AuditOutcome = 'success' | 'failure';

export interface AuditEntry {
  /** ISO 8601 time the response was decided. */
  readonly time: string;
  /** The caller's project ('' when the request carried no valid token). */
  readonly project: string;
  /** The token's public id, never the token (null when unauthenticated). */
  readonly tokenId: string | null;
  /** The dialect and operation, e.g. `huawei:create-datakey`, `ncp:encrypt`. */
  readonly operation: string;
  readonly keyId: string | null;
  readonly keyVersion: number | null;
  /** Remote address of the connection. */
  readonly source: string;
  readonly requestId: string;
  readonly status: number;
  readonly outcome: AuditOutcome;
  /** The vendor error code the client got (null on success). */
  readonly errorCode: string | null;
  /**
   * Only on a record that stands for several requests (failed authentications of one address in an
   * interval, src/api/middleware/failed-auth.ts): how many. Absent from a single request's record,
   * whose canonical form is therefore what it always was.
   */
  readonly count?: number;
}

export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly pid: number;
  readonly hash: string;
  /** On the last record of a batch the token MAC'd. */
  readonly mac?: string;
}

/** The token's audit key (src/hsm/audit-key.ts), as the trail uses it. */
export interface AuditMacKey {
  mac(data: Buffer): Promise<Buffer>;
  /** Throws when the MAC can't be checked (no key, token unreachable). */
  verify(data: Buffer, mac: Buffer): Promise<boolean>;
}

/** What the audit key MACs for a record: its place in the chain, which stands for everything up to it. */
export function macInput(seq: number, hash: string): Buffer {
  return Buffer.from(`p11kms-audit-v1 ${seq} ${hash}`, 'utf8');
}

/** Field order of the canonical form (hash excluded). */
export const AUDIT_FIELDS = [
  'seq',
  'time',
  'pid',
  'project',
  'tokenId',
  'operation',
  'keyId',
  'keyVersion',
  'source',
  'requestId',
  'status',
  'outcome',
  'errorCode',
  'count',
] as const;

export const GENESIS = '0'.repeat(64);

type Canonical = Omit<AuditRecord, 'hash'>;

function canonical(r: Canonical): string {
  const o: Record<string, unknown> = {};
  for (const f of AUDIT_FIELDS) o[f] = r[f];
  return JSON.stringify(o);
}

const chain = (prev: string, text: string): string => createHash('sha256').update(prev + text, 'utf8').digest('hex');

const line = (text: string, hash: string, mac?: string): string =>
  `${text.slice(0, -1)},"hash":"${hash}"${mac === undefined ? '' : `,"mac":"${mac}"`}}`;

/**
 * Complete lines of a file from the end, last first, until `stop` says so (reads 64 KiB at a time).
 * Returns the line `stop` accepted, or undefined.
 */
function fromTheEnd(fd: number, stop: (line: string) => boolean): string | undefined {
  let end = fstatSync(fd).size;
  let carry = '';
  while (end > 0) {
    const n = Math.min(end, 65536);
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, end - n);
    end -= n;
    // Latin-1 keeps every byte as one character: a chunk boundary can't split a character.
    const parts = (buf.toString('latin1') + carry).split('\n');
    // Unless this chunk starts the file, its first part may continue a line of the chunk before it.
    carry = end > 0 ? parts.shift()! : '';
    for (let i = parts.length - 1; i >= 0; i--) {
      const l = Buffer.from(parts[i]!, 'latin1').toString('utf8');
      if (l.length > 0 && stop(l)) return l;
    }
  }
  return undefined;
}

/** The last complete line of a file. */
function lastLine(fd: number): string | undefined {
  return fromTheEnd(fd, () => true);
}

/** Most records one write + fdatasync carries (a batch is one buffer: ~350 bytes a record). */
export const MAX_BATCH = 512;

/** The file calls the writer makes on libuv's pool; a test may fail them (a failed fdatasync can't be provoked for real). */
export interface AuditIo {
  write(fd: number, buf: Buffer, offset: number, length: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, size: number): Promise<void>;
}

interface Queued {
  readonly entry: AuditEntry;
  readonly resolve: (r: AuditRecord) => void;
  readonly reject: (e: unknown) => void;
}

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);
const ftruncateAsync = promisify(ftruncate);
const closeAsync = promisify(close);

export const fileIo: AuditIo = {
  write: async (fd, buf, offset, length) => (await writeAsync(fd, buf, offset, length, null)).bytesWritten,
  fdatasync: (fd) => fdatasyncAsync(fd),
  ftruncate: (fd, size) => ftruncateAsync(fd, size),
};

/**
 * A winston transport that appends chained records to one file, with group commit: `append`
 * queues a record and returns a promise that settles once the record is durably in the file
 * (written, and fdatasync'ed unless disabled). One batch is in flight at a time: the records
 * queued while it is written form the next batch (at most MAX_BATCH), written with one `write`
 * and one `fdatasync` on libuv's thread pool, so the event loop keeps serving meanwhile.
 *
 * The chain (seq, hash) of a batch is computed when the batch is formed, in queue order, on the
 * one thread, from the last batch that reached the disk: so append order = queue order = chain
 * order, and a failed batch never leaves queued records chained onto lines that are not there.
 * A failed batch fails every record in it and the chain stays where it was; bytes a failed write
 * left behind (a partial line) are cut off (ftruncate to the last good size) before the next write.
 *
 * The service calls `append` directly (through AuditLog): winston's own pipeline could not turn a
 * failed write into an error response; `log` is there so the transport also works in an ordinary
 * winston logger.
 */
export interface AuditOptions {
  /** The token's audit key; without one, records are chained only (tests of the chain itself). */
  readonly key?: AuditMacKey | undefined;
  /** Where a batch written without a MAC is reported (once per outage). */
  readonly log?: Logger | undefined;
}

/**
 * Longest a batch waits for its MAC: a token that doesn't answer must not hold every response;
 * the batch goes out without one and the next MAC covers it.
 */
const MAC_WAIT_MS = 2000;

export class AuditFileTransport extends TransportStream {
  private readonly fd: number;
  /** A regular file (not a device or pipe): its size is tracked and a failed write is cut off. */
  private readonly regular: boolean;
  /** Size of the file up to the last record that reached the disk. */
  private size: number;
  /** A write or sync failed since the last good batch: the file may hold bytes after `size`. */
  private dirty = false;
  private prev: string;
  private seq: number;
  private readonly queue: Queued[] = [];
  /** A drain loop is scheduled or running. */
  private active = false;
  private drained: Promise<void> = Promise.resolve();
  private shut = false;
  private ok = true;
  private batches = 0;
  private records = 0;
  private macs = 0;
  /** The last batch went out without a MAC (reported once until one is MAC'd again). */
  private unkeyed = false;

  constructor(
    readonly file: string,
    private readonly fsync: boolean,
    private readonly io: AuditIo = fileIo,
    private readonly options: AuditOptions = {},
  ) {
    super();
    this.fd = openSync(file, 'a+', 0o600);
    const st = fstatSync(this.fd);
    this.regular = st.isFile();
    this.size = st.size;
    const last = lastLine(this.fd);
    if (last === undefined) {
      this.prev = GENESIS;
      this.seq = 0;
    } else {
      const r = parseRecord(last);
      if (!r) {
        closeSync(this.fd);
        throw new Error(`the last record of the audit log ${file} is unreadable: run \`p11kms audit verify\``);
      }
      this.prev = r.hash;
      this.seq = r.seq;
    }
  }

  /** False after a batch failed, until one is written again. */
  get healthy(): boolean {
    return this.ok;
  }

  /** Records, batches and MACs written so far by this writer (one write, one fdatasync and one MAC per batch). */
  get stats(): AuditStats {
    return { records: this.records, batches: this.batches, macs: this.macs };
  }

  /** Queues one record; settles when it is durably appended, or rejects when its batch failed. */
  append(entry: AuditEntry): Promise<AuditRecord> {
    if (this.shut) return Promise.reject(new Error('the audit log is closed'));
    return new Promise<AuditRecord>((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      this.kick();
    });
  }

  /** Settles when every record queued so far has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.active) await this.drained;
  }

  private kick(): void {
    if (this.active) return;
    this.active = true;
    // The first record of an idle writer waits one turn of the event loop, so that the records
    // other connections produced in the same turn go into its batch.
    this.drained = new Promise<void>((resolve) => setImmediate(() => void this.drain().then(resolve)));
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.commit(this.queue.splice(0, MAX_BATCH));
    } finally {
      this.active = false;
    }
  }

  private async commit(batch: readonly Queued[]): Promise<void> {
    const pid = process.pid;
    let seq = this.seq;
    let prev = this.prev;
    const out: AuditRecord[] = [];
    const texts: string[] = [];
    for (const q of batch) {
      const body: Canonical = { ...q.entry, seq: ++seq, pid };
      const c = canonical(body);
      prev = chain(prev, c);
      texts.push(c);
      out.push({ ...body, hash: prev });
    }
    const mac = await this.macOf(seq, prev);
    if (mac !== undefined) out[out.length - 1] = { ...out[out.length - 1]!, mac };
    let text = '';
    for (let i = 0; i < out.length; i++) text += `${line(texts[i]!, out[i]!.hash, out[i]!.mac)}\n`;
    const buf = Buffer.from(text, 'utf8');
    try {
      if (this.dirty && this.regular) await this.io.ftruncate(this.fd, this.size);
      this.dirty = true;
      let written = 0;
      while (written < buf.length) written += await this.io.write(this.fd, buf, written, buf.length - written);
      if (this.fsync) await this.io.fdatasync(this.fd);
    } catch (e) {
      this.ok = false;
      for (const q of batch) q.reject(e);
      return;
    }
    this.dirty = false;
    this.size += buf.length;
    this.seq = seq;
    this.prev = prev;
    this.ok = true;
    this.batches += 1;
    this.records += batch.length;
    if (mac !== undefined) this.macs += 1;
    batch.forEach((q, i) => q.resolve(out[i]!));
  }

  /** The token's MAC of the batch's last record, or undefined when it can't be had in time (reported). */
  private async macOf(seq: number, hash: string): Promise<string | undefined> {
    const key = this.options.key;
    if (!key) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), MAC_WAIT_MS)));
    const made = key.mac(macInput(seq, hash));
    try {
      const mac = await Promise.race([made, late]);
      if (mac === 'late') throw new Error(`no answer within ${MAC_WAIT_MS} ms`);
      if (this.unkeyed) this.options.log?.info('audit records are MACed by the token again', { file: this.file, seq });
      this.unkeyed = false;
      return mac.toString('hex');
    } catch (e) {
      made.catch(() => undefined);
      if (!this.unkeyed) {
        this.options.log?.warn('audit batch written without a MAC: the token could not make one; the next MAC covers it', {
          file: this.file,
          seq,
          error: e instanceof Error ? e.message : 'unknown',
        });
      }
      this.unkeyed = true;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  override log(info: unknown, next: () => void): void {
    this.append((info as { entry: AuditEntry }).entry).then(
      () => next(),
      (e: unknown) => {
        this.emit('error', e);
        next();
      },
    );
  }

  /** Writes what is queued, then closes the file; later appends reject. */
  override async close(): Promise<void> {
    if (this.shut) return;
    this.shut = true;
    await this.flush();
    await closeAsync(this.fd);
  }
}

export interface AuditStats {
  readonly records: number;
  readonly batches: number;
  /** Batches MAC'd by the token. */
  readonly macs: number;
}

export class AuditLog {
  private readonly transport: AuditFileTransport;

  constructor(
    file: string,
    /** Whether a request whose record cannot be written fails (KMS_AUDIT_REQUIRED). */
    readonly required: boolean,
    fsync = true,
    options: AuditOptions = {},
  ) {
    this.transport = new AuditFileTransport(file, fsync, fileIo, options);
  }

  get file(): string {
    return this.transport.file;
  }

  /** False after a write failed, until one succeeds again. */
  get healthy(): boolean {
    return this.transport.healthy;
  }

  get stats(): AuditStats {
    return this.transport.stats;
  }

  /** Settles when the record is durably appended; rejects when it could not be written. */
  async write(entry: AuditEntry): Promise<void> {
    await this.transport.append(entry);
  }

  /** Settles when everything queued so far is written. */
  flush(): Promise<void> {
    return this.transport.flush();
  }

  /** Flushes the queue, then closes the file. */
  close(): Promise<void> {
    return this.transport.close();
  }
}

/** A line as a typed record, or undefined when it is not one (wrong fields, types or order). */
export function parseRecord(text: string): AuditRecord | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  const str = (k: string) => typeof r[k] === 'string';
  const strOrNull = (k: string) => r[k] === null || typeof r[k] === 'string';
  const int = (k: string) => Number.isSafeInteger(r[k]);
  const ok =
    int('seq') &&
    str('time') &&
    int('pid') &&
    str('project') &&
    strOrNull('tokenId') &&
    str('operation') &&
    strOrNull('keyId') &&
    (r['keyVersion'] === null || int('keyVersion')) &&
    str('source') &&
    str('requestId') &&
    int('status') &&
    (r['outcome'] === 'success' || r['outcome'] === 'failure') &&
    strOrNull('errorCode') &&
    (r['count'] === undefined || (int('count') && (r['count'] as number) > 0)) &&
    typeof r['hash'] === 'string' &&
    /^[0-9a-f]{64}$/.test(r['hash']) &&
    (r['mac'] === undefined || (typeof r['mac'] === 'string' && /^[0-9a-f]{64}$/.test(r['mac'])));
  // Every field, `count` only when present, then hash (and mac).
  const fields = AUDIT_FIELDS.length - (r['count'] === undefined ? 1 : 0);
  if (!ok || Object.keys(r).length !== fields + (r['mac'] === undefined ? 1 : 2)) return undefined;
  return r as unknown as AuditRecord;
}

/** The last MAC'd record of a file, to be kept off the host: `p11kms audit verify --head` then also detects records removed from the end. */
export interface AuditHead {
  /** The file's name (without its directory: the data dir may move). */
  readonly file: string;
  readonly seq: number;
  readonly hash: string;
  readonly mac: string;
}

/** `<file>:<seq>:<hash>:<mac>`, one word, for a command line. */
export function formatHead(h: AuditHead): string {
  return `${h.file}:${h.seq}:${h.hash}:${h.mac}`;
}

export function parseHead(text: string): AuditHead | undefined {
  const m = /^(.+):([1-9][0-9]*):([0-9a-f]{64}):([0-9a-f]{64})$/.exec(text.trim());
  if (!m || !Number.isSafeInteger(Number(m[2]))) return undefined;
  return { file: m[1]!, seq: Number(m[2]), hash: m[3]!, mac: m[4]! };
}

/** The file's last MAC'd record as a head, its MAC checked with the token; undefined when the file holds none. */
export async function readHead(file: string, key: AuditMacKey): Promise<AuditHead | undefined> {
  const fd = openSync(file, 'r');
  let found: AuditRecord | undefined;
  try {
    fromTheEnd(fd, (l) => {
      const r = parseRecord(l);
      if (r?.mac === undefined) return false;
      found = r;
      return true;
    });
  } finally {
    closeSync(fd);
  }
  if (found?.mac === undefined) return undefined;
  if (!(await key.verify(macInput(found.seq, found.hash), Buffer.from(found.mac, 'hex')))) {
    throw new Error(`the MAC of record ${found.seq} of ${file} is not the token's: run \`p11kms audit verify\``);
  }
  return { file: path.basename(file), seq: found.seq, hash: found.hash, mac: found.mac };
}

export type VerifyResult =
  | { ok: true; records: number; macs: number }
  | { ok: false; records: number; line: number; reason: string };

export interface VerifyOptions {
  /** Check the MACs with the token's audit key; without it only the chain is checked. */
  readonly key?: AuditMacKey;
  /** A head kept off the host: the file must still hold that record, unchanged. */
  readonly head?: AuditHead;
}

/**
 * Checks a whole file: every line a record, seq 1, 2, 3…, each hash chained to the previous
 * line's; with the key, every MAC the token's and every record covered by a MAC after it (a MAC
 * covers the whole chain up to its record); with a head, that record still there, unchanged. A
 * failure names the first line not vouched for: a record edited in place breaks the chain there;
 * a chain rebuilt from some record on fails at the first record of the first batch whose MAC it
 * broke.
 */
export async function verifyAuditFile(file: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else if (lines.length > 0) return { ok: false, records: lines.length - 1, line: lines.length, reason: 'incomplete last line' };
  const { key, head } = opts;
  let prev = GENESIS;
  /** Lines up to here are covered by a MAC the token made. */
  let covered = 0;
  let macs = 0;
  let headHash: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const at = i + 1;
    const r = parseRecord(lines[i]!);
    if (!r) return { ok: false, records: i, line: at, reason: 'not an audit record' };
    const { hash, mac, ...rest } = r;
    const text = canonical(rest);
    if (line(text, hash, mac) !== lines[i]) return { ok: false, records: i, line: at, reason: 'not in canonical form' };
    if (r.seq !== at) return { ok: false, records: i, line: at, reason: `sequence number ${r.seq} where ${at} was expected` };
    if (chain(prev, text) !== hash) return { ok: false, records: i, line: at, reason: 'hash does not match the record and the previous hash' };
    prev = hash;
    if (head && r.seq === head.seq) headHash = hash;
    if (key && mac !== undefined) {
      if (!(await key.verify(macInput(r.seq, hash), Buffer.from(mac, 'hex')))) {
        return {
          ok: false,
          records: covered,
          line: covered + 1,
          reason: `the MAC at line ${at} is not the token's: ${covered + 1 === at ? `record ${at} was` : `records ${covered + 1} to ${at} were`} rewritten or made without the token`,
        };
      }
      covered = at;
      macs++;
    }
  }
  if (key && covered < lines.length) {
    return {
      ok: false,
      records: covered,
      line: covered + 1,
      reason: `no MAC after line ${covered}: the last ${lines.length - covered} records are not vouched for by the token (written while it was unreachable, or made without it)`,
    };
  }
  if (head) {
    if (key && !(await key.verify(macInput(head.seq, head.hash), Buffer.from(head.mac, 'hex')))) {
      return { ok: false, records: lines.length, line: Math.min(head.seq, lines.length + 1), reason: "the head's MAC is not the token's" };
    }
    if (headHash === undefined) {
      return {
        ok: false,
        records: lines.length,
        line: lines.length + 1,
        reason: `the head names record ${head.seq} but the file ends at record ${lines.length}: records were removed from the end`,
      };
    }
    if (headHash !== head.hash) return { ok: false, records: head.seq - 1, line: head.seq, reason: `record ${head.seq} is not the one the head names` };
  }
  return { ok: true, records: lines.length, macs };
}
