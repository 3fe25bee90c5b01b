/**
 * A real PostgreSQL for tests: `initdb` and `pg_ctl` into a temporary directory (Debian's
 * postgresql package; scripts/setup.sh installs it), listening only on a unix socket in that
 * directory, so parallel test files never share a port or a cluster. As root, the server runs as
 * the `postgres` user (PostgreSQL refuses root). fsync is off: the tests stop it cleanly or kill
 * the KMS, never the machine.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

function binDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(path.join(root, v, 'bin/initdb'))) return path.join(root, v, 'bin');
  }
  return ''; // on PATH
}

export class TestPostgres {
  private running = false;
  private dbs = 0;

  private constructor(
    readonly dir: string,
    private readonly bin: string,
    private readonly asPostgres: boolean,
  ) {}

  static start(): TestPostgres {
    const dir = mkdtempSync(path.join(tmpdir(), 'p11kms-pg-'));
    const asPostgres = process.getuid?.() === 0;
    if (asPostgres) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
    }
    const db = new TestPostgres(dir, binDir(), asPostgres);
    db.exec('initdb', ['-D', db.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    db.exec('pg_ctl', db.startArgs());
    db.running = true;
    return db;
  }

  private get data(): string {
    return path.join(this.dir, 'data');
  }

  /** A connection string for database `name` over the unix socket. */
  url(name = 'postgres'): string {
    return `postgres://postgres@/${name}?host=${encodeURIComponent(this.dir)}`;
  }

  /** A new empty database (one per test suite), as a KMS_DB value. */
  async createDatabase(prefix = 'kms'): Promise<string> {
    const name = `${prefix}_${process.pid}_${++this.dbs}`;
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  /** Stops the server (fast: open sessions are ended) and waits until it is down. */
  async stopServer(): Promise<void> {
    await this.execAsync('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
    this.running = false;
  }

  /** Starts it again (same data); the test process goes on serving its connections meanwhile. */
  async startServer(): Promise<void> {
    await this.execAsync('pg_ctl', this.startArgs());
    this.running = true;
  }

  private startArgs(): string[] {
    const opts = `-k ${this.dir} -c listen_addresses='' -c fsync=off -c max_connections=200`;
    return ['-D', this.data, '-l', path.join(this.dir, 'server.log'), '-o', opts, '-w', '-t', '120', 'start'];
  }

  destroy(): void {
    if (this.running) {
      try {
        this.exec('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      this.running = false;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private command(tool: string, args: readonly string[]): [string, string[]] {
    const cmd = this.bin ? path.join(this.bin, tool) : tool;
    return this.asPostgres ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, [...args]];
  }

  private exec(tool: string, args: readonly string[]): void {
    const [file, argv] = this.command(tool, args);
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
  }

  private async execAsync(tool: string, args: readonly string[]): Promise<void> {
    const [file, argv] = this.command(tool, args);
    await promisify(execFile)(file, argv, { cwd: this.dir });
  }
}
