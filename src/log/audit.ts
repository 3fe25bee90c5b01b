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
 * end up in it. Records are appended synchronously (and fdatasync'ed unless disabled) before the
 * response is sent, so a failed write can still become an error response.
 *
 * One writer per file: with several processes each has its own file (audit-<slot>.log), so no
 * two processes interleave in one chain.
 */
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
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

/**
 * A winston transport that appends chained records to one file. The service calls `append`
 * directly: winston's own pipeline is asynchronous and could not turn a failed write into an error
 * response; `log` is there so the transport also works in an ordinary winston logger.
 */
export class AuditFileTransport extends TransportStream {
  private fd: number;
  private prev: string;
  private seq: number;

  constructor(
    readonly file: string,
    private readonly fsync: boolean,
  ) {
    super();
    this.fd = openSync(file, 'a+', 0o600);
    const last = lastLine(this.fd);
    if (last === undefined) {
      this.prev = GENESIS;
      this.seq = 0;
    } else {
      const r = parseRecord(last);
      if (!r) throw new Error(`the last record of the audit log ${file} is unreadable: run \`p11kms audit verify\``);
      this.prev = r.hash;
      this.seq = r.seq;
    }
  }

  /** Appends one record; throws when it could not be written (the chain then stays where it was). */
  append(entry: AuditEntry): AuditRecord {
    const body: Canonical = { ...entry, seq: this.seq + 1, pid: process.pid };
    const text = canonical(body);
    const hash = chain(this.prev, text);
    const out = Buffer.from(`${line(text, hash)}\n`, 'utf8');
    let written = 0;
    while (written < out.length) written += writeSync(this.fd, out, written, out.length - written);
    if (this.fsync) fdatasyncSync(this.fd);
    this.prev = hash;
    this.seq = body.seq;
    return { ...body, hash };
  }

  override log(info: unknown, next: () => void): void {
    try {
      this.append((info as { entry: AuditEntry }).entry);
    } catch (e) {
      this.emit('error', e);
    }
    next();
  }

  override close(): void {
    closeSync(this.fd);
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

  /** False after a write failed, until one succeeds again. */
  private ok = true;

  get file(): string {
    return this.transport.file;
  }

  get healthy(): boolean {
    return this.ok;
  }

  /** Throws when the record could not be written. */
  write(entry: AuditEntry): void {
    try {
      this.transport.append(entry);
      this.ok = true;
    } catch (e) {
      this.ok = false;
      throw e;
    }
  }

  close(): void {
    this.transport.close();
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
