/**
 * The console's reading of the audit trail: the records of one project, newest first, from every
 * audit file of the data dir (one per server process, the CLI's, other nodes'), filtered
 * by operation, key, outcome and time. Files are streamed line by line, so a long trail never sits
 * in memory and the event loop keeps serving while it is read.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseRecord, type AuditRecord } from '../../log/audit';

export interface AuditFilter {
  readonly project: string;
  /** Part of the operation name (`rotate` matches `ncp:rotate`). */
  readonly operation?: string;
  readonly keyId?: string;
  readonly outcome?: 'success' | 'failure';
  /** ISO 8601 bounds on the record's time, inclusive. */
  readonly from?: string;
  readonly to?: string;
  /** Most records returned (the newest). */
  readonly limit: number;
}

function matches(r: AuditRecord, f: AuditFilter): boolean {
  if (r.project !== f.project) return false;
  if (f.operation !== undefined && !r.operation.includes(f.operation)) return false;
  if (f.keyId !== undefined && r.keyId !== f.keyId) return false;
  if (f.outcome !== undefined && r.outcome !== f.outcome) return false;
  // Record times are ISO 8601 in UTC: they compare as text.
  if (f.from !== undefined && r.time < f.from) return false;
  if (f.to !== undefined && r.time > f.to) return false;
  return true;
}

/** The newest `limit` matching records of one file (a line that is not a record is skipped: verify reports it). */
async function newestOf(file: string, f: AuditFilter): Promise<AuditRecord[]> {
  const kept: AuditRecord[] = [];
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const text of lines) {
      const r = parseRecord(text);
      if (!r || !matches(r, f)) continue;
      kept.push(r);
      if (kept.length > 2 * f.limit) kept.splice(0, kept.length - f.limit);
    }
  } catch (e) {
    // A file removed while listed (rotated away) has no records to show.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return kept.slice(-f.limit);
}

export interface AuditPage {
  /** Newest first. */
  readonly records: Array<AuditRecord & { readonly file: string }>;
  readonly files: string[];
}

/** The newest matching records of all `files` (every audit file of the data dir), newest first. */
export async function readAuditRecords(files: readonly string[], f: AuditFilter): Promise<AuditPage> {
  const all: Array<AuditRecord & { file: string }> = [];
  for (const file of files) for (const r of await newestOf(file, f)) all.push({ ...r, file: path.basename(file) });
  all.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : b.seq - a.seq));
  return { records: all.slice(0, f.limit), files: files.map((x) => path.basename(x)) };
}
