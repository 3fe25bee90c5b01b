/**
 * The benchmark's view of the service from outside: a throw-away data dir with a dev token made by
 * scripts/dev-token.sh, the documented CLI, and the real server (`node dist/src/main.js`) on a free
 * loopback port, with its start-up time and the RSS of every process it runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The repository root (this file runs as dist/scripts/bench/server.js). */
export const ROOT = path.resolve(__dirname, '../../..');

export interface DataDir {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
}

/** A fresh data dir with its own SoftHSM dev token (token + SQLite store live in it). */
export function newDataDir(): DataDir {
  const dir = mkdtempSync(path.join(tmpdir(), 'p11kms-bench-'));
  // Defaults everywhere except: warn-level logs, and a project rate limit (default 1000 req/s per
  // project) raised to its maximum, since the benchmark measures what the service can do.
  // The speed-ups that weaken the key model are opt-in; the benchmark measures them on, as its
  // history was (the KMS_DATAKEY_STOCK=0 variant measures the stock off).
  const kept: Record<string, string> = { KMS_DATA_DIR: dir, KMS_LOG_LEVEL: 'warn', KMS_RATE_LIMIT: '1000000', KMS_DATAKEY_STOCK: 'auto', KMS_SESSION_KEY_COPIES: '4096', KMS_METRICS_ADDR: '127.0.0.1:0' };
  const env: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', ...kept };
  for (const k of Object.keys(env)) if (k.startsWith('KMS_') && !(k in kept)) delete env[k];
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return { dir, env };
}

export function removeDataDir(d: DataDir): void {
  rmSync(d.dir, { recursive: true, force: true });
}

/** Runs `p11kms …` (bin/p11kms.js) against the data dir; returns its stdout. */
export function cli(d: DataDir, args: readonly string[]): string {
  return execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), ...args], {
    env: d.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Warnings the opt-ins of newDataDir print by design (src/runtime.ts). */
const OPT_IN_WARNINGS = ['are CKA_MODIFIABLE (made for session copies)'];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** VmRSS of one process in MiB, or 0 when it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Direct children of a process, from /proc (the cluster's workers). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Whether a process has the store open: main() opens the runtime right before it listens. */
function hasOpen(pid: number, file: string): boolean {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return true;
      } catch {
        // fd closed meanwhile
      }
    }
  } catch {
    return false;
  }
  return false;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on Linux). */
const HZ = 100;

/** utime + stime in seconds of one process, or of its main thread (0 when it is gone). */
function cpuSeconds(pid: number, mainThreadOnly = false): number {
  try {
    const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is f[0], so utime (field 14) is f[11] and stime (15) f[12].
    return (Number(f[11]) + Number(f[12])) / HZ;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = first.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  return busy / HZ;
}

/** Where the CPU went during a measurement, in cores (CPU seconds per wall second). */
export interface CpuUse {
  readonly seconds: number;
  /** Every server process (the cluster primary included). */
  readonly serverCores: number;
  /**
   * Of serverCores, the main threads: the event loops. The rest is the servers' other threads
   * (libuv's pool, V8's helpers, the binding's search and seal threads).
   */
  readonly eventLoopCores: number;
  /** This process: the load generator. */
  readonly loadGeneratorCores: number;
  /** Everything else on the machine (other users' work: the noise in the figures). */
  readonly otherCores: number;
}

export class CpuMeter {
  private readonly t0 = process.hrtime.bigint();
  private readonly server0: number;
  private readonly loops0: number;
  private readonly self0 = process.cpuUsage();
  private readonly machine0 = machineBusySeconds();

  constructor(private readonly pids: () => number[]) {
    const now = pids();
    this.server0 = now.reduce((a, p) => a + cpuSeconds(p), 0);
    this.loops0 = now.reduce((a, p) => a + cpuSeconds(p, true), 0);
  }

  read(): CpuUse {
    const seconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const now = this.pids();
    const server = now.reduce((a, p) => a + cpuSeconds(p), 0) - this.server0;
    const loops = now.reduce((a, p) => a + cpuSeconds(p, true), 0) - this.loops0;
    const self = process.cpuUsage(this.self0);
    const client = (self.user + self.system) / 1e6;
    const machine = machineBusySeconds() - this.machine0;
    return {
      seconds,
      serverCores: server / seconds,
      eventLoopCores: loops / seconds,
      loadGeneratorCores: client / seconds,
      otherCores: Math.max(0, machine - server - client) / seconds,
    };
  }
}

export interface Rss {
  /** Sum over every server process (the cluster primary included), MiB. */
  readonly totalMiB: number;
  /** Per serving process (one, or each worker), MiB. */
  readonly perProcessMiB: number[];
}

export class Server {
  private output = '';

  private constructor(
    readonly url: string,
    readonly workers: number,
    private readonly child: ChildProcess,
    readonly startupMs: number,
  ) {}

  /**
   * Starts `node dist/src/main.js` and waits until /livez answers (start-up time = spawn → first
   * 200 from /livez). With several workers it then also waits until every worker has opened the
   * store and had a moment to listen.
   */
  static async start(d: DataDir, workers: number, extraEnv: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<Server> {
    const port = await freePort();
    const env = { ...d.env, PORT: String(port), KMS_WORKERS: String(workers), ...extraEnv };
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist/src/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const url = `http://127.0.0.1:${port}`;
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    let startupMs = 0;
    const deadline = Date.now() + 600_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} during start-up:\n${output}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`server did not start within 600 s:\n${output}`);
      }
      try {
        const r = await fetch(`${url}/livez`);
        await r.text();
        if (r.status === 200) {
          startupMs = Number(process.hrtime.bigint() - t0) / 1e6;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
    const dbFile = path.join(d.dir, 'p11kms.db');
    const server = new Server(url, workers, child, startupMs);
    server.output = output;
    child.stdout?.on('data', (c: Buffer) => (server.output += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (server.output += c.toString('utf8')));
    if (workers > 1) {
      while (Date.now() < deadline) {
        const kids = childrenOf(child.pid ?? 0);
        if (kids.length >= workers && kids.every((k) => hasOpen(k, dbFile))) break;
        await sleep(20);
      }
      await sleep(300);
    }
    return server;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Every process of the server: itself and, with several workers, each worker. */
  /** The server's whole process tree: workers, and the key-generation helpers of each (src/hsm/keygen-process.ts). */
  allPids(): number[] {
    const all = [this.pid];
    for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i]!));
    return all;
  }

  /**
   * Waits until the server has been idle (< 5 % of a core) for two 250 ms windows in a row, i.e.
   * its start-up background work (reconciliation, first sweep) is done; returns how long that took.
   */
  async quiesce(maxMs = 120_000): Promise<number> {
    const t0 = Date.now();
    let quiet = 0;
    while (Date.now() - t0 < maxMs && quiet < 2) {
      const m = new CpuMeter(() => this.allPids());
      await sleep(250);
      quiet = m.read().serverCores < 0.05 ? quiet + 1 : 0;
    }
    return Math.max(0, Date.now() - t0 - 500);
  }

  /** The processes that serve: the server itself, or each cluster worker. */
  servingPids(): number[] {
    return this.workers > 1 ? childrenOf(this.pid) : [this.pid];
  }

  /** Total: the whole tree (primary, workers, key-generation helpers); per process: the serving ones. */
  rss(): Rss {
    const perProcessMiB = this.servingPids().map(rssMiB);
    return { totalMiB: this.allPids().map(rssMiB).reduce((a, b) => a + b, 0), perProcessMiB };
  }

  /**
   * What the server printed (warn level: should be nothing), less the warning the session-copies
   * opt-in is meant to print: the benchmark turns it on knowingly (newDataDir).
   */
  logs(): string {
    return this.output
      .split('\n')
      .filter((line) => !OPT_IN_WARNINGS.some((w) => line.includes(w)))
      .join('\n');
  }

  /** SIGTERM and wait for the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (c) => resolve(c)));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}
