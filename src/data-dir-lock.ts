/**
 * One data dir, one server per node id: a server (the primary of several workers, or the single
 * process) holds `$KMS_DATA_DIR/server-<KMS_NODE_ID>.lock` while it runs, so a second server started
 * on the same data dir and node id refuses to start, naming the PID that holds it, instead of
 * appending to the same audit chain. Nodes with different ids (several nodes on one shared data
 * dir) lock separately. The lock file holds the PID, its start time (Linux /proc) and the host
 * name: on the same host, a lock whose process is gone, or is another process that got the same PID
 * (a restarted container), is stale and taken over. A lock written under another host name (another
 * container on a shared volume, whose PIDs mean nothing here) is live while its holder keeps its
 * mtime fresh (every HEARTBEAT_MS). A clean stop removes it.
 */
import { closeSync, linkSync, openSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

const HEARTBEAT_MS = 10_000;
/** A lock of another host not refreshed for this long is stale. */
const FOREIGN_STALE_MS = 3 * HEARTBEAT_MS;

export class DataDirLocked extends Error {
  override readonly name = 'DataDirLocked';
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(`the data dir is in use by another server (PID ${pid}, lock ${file}); stop it, or give this one another KMS_NODE_ID`);
  }
}

interface Holder {
  readonly pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); '' where unknown. */
  readonly started: string;
  readonly host: string;
  /** When the holder last refreshed the lock (ms). */
  readonly touched: number;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …: the comm may contain spaces and parentheses; fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(h: Holder): boolean {
  if (h.host !== hostname()) return Date.now() - h.touched < FOREIGN_STALE_MS;
  if (h.pid === process.pid) return false; // our own PID in an old lock: a previous life of this PID
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // Where /proc tells, the PID must still be the process that wrote the lock.
  const now = startTime(h.pid);
  return h.started === '' || h.started === '-' || now === undefined || now === h.started;
}

function readHolder(file: string): Holder | undefined {
  try {
    const [pid, started, host] = readFileSync(file, 'utf8').trim().split(' ');
    const n = Number(pid);
    const touched = statSync(file).mtimeMs;
    return { pid: Number.isSafeInteger(n) && n > 0 ? n : 0, started: started ?? '', host: host ?? hostname(), touched };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Takes the lock or throws DataDirLocked; the returned function releases it (on a clean stop). */
export function lockDataDir(dataDir: string, nodeId: string): () => void {
  const file = path.join(dataDir, `server-${nodeId}.lock`);
  const mine = `${process.pid} ${startTime(process.pid) ?? '-'} ${hostname()}\n`;
  // Written aside, then linked into place: link() fails if the lock exists, and the lock is never seen half-written.
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, mine);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(temp, file);
        const heartbeat = setInterval(() => {
          try {
            const now = new Date();
            utimesSync(file, now, now);
          } catch {
            // removed by hand: nothing to refresh
          }
        }, HEARTBEAT_MS);
        heartbeat.unref();
        return () => {
          clearInterval(heartbeat);
          if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readHolder(file);
      if (holder === undefined) continue; // released meanwhile
      // A lock just written may not have its content yet for a reader on some file systems: give it a moment.
      if (holder.pid === 0 && Date.now() - holder.touched < 2000) throw new DataDirLocked(file, 0);
      if (holder.pid !== 0 && alive(holder)) throw new DataDirLocked(file, holder.pid);
      unlinkSync(file); // stale: its process is gone
    }
    const holder = readHolder(file);
    throw new DataDirLocked(file, holder?.pid ?? 0);
  } finally {
    rmSync(temp, { force: true });
  }
}
