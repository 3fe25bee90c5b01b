/**
 * The audit trail: one JSON line per key operation (success or failure), separate from the
 * application log, hash-chained so that an edited, inserted or removed line is detected.
 *
 *   hash = hex(sha256(prev_hash + canonical))
 *
 * where `canonical` is the record without `hash` serialised as JSON with the fields in the order of
 * AUDIT_FIELDS, and `prev_hash` is the previous line's hash (64 zeros for the first line of a file).
 * `seq` counts from 1 in each file. The line on disk is exactly `canonical` with `,"hash":"…"`
 * appended before the closing brace, so any other edit (whitespace, extra field) is detected too.
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
import { promisify } from 'node:util';
import TransportStream from 'winston-transport';

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
}

export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly pid: number;
  readonly hash: string;
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
] as const;

export const GENESIS = '0'.repeat(64);

type Canonical = Omit<AuditRecord, 'hash'>;

function canonical(r: Canonical): string {
  const o: Record<string, unknown> = {};
  for (const f of AUDIT_FIELDS) o[f] = r[f];
  return JSON.stringify(o);
}

const chain = (prev: string, text: string): string => createHash('sha256').update(prev + text, 'utf8').digest('hex');

const line = (text: string, hash: string): string => `${text.slice(0, -1)},"hash":"${hash}"}`;

/** The last complete line of a file (reads at most the last 64 KiB). */
function lastLine(fd: number): string | undefined {
  const size = fstatSync(fd).size;
  if (size === 0) return undefined;
  const n = Math.min(size, 65536);
  const buf = Buffer.alloc(n);
  readSync(fd, buf, 0, n, size - n);
  const lines = buf.toString('utf8').split('\n').filter((l) => l.length > 0);
  return lines[lines.length - 1];
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

  constructor(
    readonly file: string,
    private readonly fsync: boolean,
    private readonly io: AuditIo = fileIo,
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

  /** Records and batches written so far by this writer (one write + one fdatasync per batch). */
  get stats(): { readonly records: number; readonly batches: number } {
    return { records: this.records, batches: this.batches };
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
    let text = '';
    for (const q of batch) {
      const body: Canonical = { ...q.entry, seq: ++seq, pid };
      const c = canonical(body);
      prev = chain(prev, c);
      text += `${line(c, prev)}\n`;
      out.push({ ...body, hash: prev });
    }
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
    batch.forEach((q, i) => q.resolve(out[i]!));
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

export class AuditLog {
  private readonly transport: AuditFileTransport;

  constructor(
    file: string,
    /** Whether a request whose record cannot be written fails (KMS_AUDIT_REQUIRED). */
    readonly required: boolean,
    fsync = true,
  ) {
    this.transport = new AuditFileTransport(file, fsync);
  }

  get file(): string {
    return this.transport.file;
  }

  /** False after a write failed, until one succeeds again. */
  get healthy(): boolean {
    return this.transport.healthy;
  }

  get stats(): { readonly records: number; readonly batches: number } {
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
    typeof r['hash'] === 'string' &&
    /^[0-9a-f]{64}$/.test(r['hash']);
  if (!ok || Object.keys(r).length !== AUDIT_FIELDS.length + 1) return undefined;
  return r as unknown as AuditRecord;
}

export type VerifyResult = { ok: true; records: number } | { ok: false; records: number; line: number; reason: string };

/** Checks a whole file: every line a record, seq 1, 2, 3…, each hash chained to the previous line's. */
export function verifyAuditFile(file: string): VerifyResult {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else if (lines.length > 0) return { ok: false, records: lines.length - 1, line: lines.length, reason: 'incomplete last line' };
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const at = i + 1;
    const r = parseRecord(lines[i]!);
    if (!r) return { ok: false, records: i, line: at, reason: 'not an audit record' };
    const { hash, ...rest } = r;
    const text = canonical(rest);
    if (line(text, hash) !== lines[i]) return { ok: false, records: i, line: at, reason: 'not in canonical form' };
    if (r.seq !== at) return { ok: false, records: i, line: at, reason: `sequence number ${r.seq} where ${at} was expected` };
    if (chain(prev, text) !== hash) return { ok: false, records: i, line: at, reason: 'hash does not match the record and the previous hash' };
    prev = hash;
  }
  return { ok: true, records: lines.length };
}
