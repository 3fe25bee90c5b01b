/**
 * A real p11kms server for a test file: its own data dir, its own SoftHSM token made by the
 * project's scripts, started as `node dist/src/main.js` on a free port with debug logging, and
 * every line it logs kept for the secret-leak checks.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, type Reply, type RequestOptions } from './http';
import { PATIENCE_MS } from './wait';

export const ROOT = path.resolve(__dirname, '../../..');

export type { Reply } from './http';

export interface CreatedKey {
  readonly key_id: string;
  readonly keyTag: string;
}

export class TestServer {
  private constructor(
    readonly dataDir: string,
    readonly url: string,
    private readonly child: ChildProcess,
    readonly env: NodeJS.ProcessEnv,
    private readonly sink: { text: string },
  ) {}

  /**
   * Starts on a new data dir, or on `reuse` (a restart: same token, same store). `envFor` adds
   * settings that name the data dir (a module in front of the dev token: netshim), after the dev
   * token was made.
   */
  static async start(
    extraEnv: Record<string, string> = {},
    reuse?: string,
    opts: { makeToken?: boolean; envFor?: (dataDir: string) => Record<string, string> } = {},
  ): Promise<TestServer> {
    const dataDir = reuse ?? mkdtempSync(path.join(tmpdir(), 'p11kms-test-'));
    const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir, KMS_LOG_LEVEL: 'debug', PORT: '0', HOST: '127.0.0.1', KMS_METRICS_ADDR: '127.0.0.1:0', ...extraEnv };
    delete env['SOFTHSM2_CONF'];
    if (opts.makeToken !== false) execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    Object.assign(env, opts.envFor?.(dataDir) ?? {});
    // scripts/test.sh records every answer for the OpenAPI check (helpers/openapi-recorder.ts).
    const record = env['P11KMS_OPENAPI_RECORD'] ? ['--require', path.join(ROOT, 'dist/test/helpers/openapi-recorder.js')] : [];
    const child = spawn(process.execPath, [...record, path.join(ROOT, 'dist/src/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = { text: '' };
    const url = await new Promise<string>((resolve, reject) => {
      // A guard against a hang (helpers/wait.ts): a loaded machine can take many seconds to start one.
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${sink.text}`)), PATIENCE_MS);
      const onData = (chunk: Buffer) => {
        sink.text += chunk.toString('utf8');
        const m = /"message":"listening","port":(\d+)/.exec(sink.text);
        if (m) {
          clearTimeout(timer);
          resolve(`http://127.0.0.1:${m[1]}`);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${sink.text}`));
      });
    });
    return new TestServer(dataDir, url, child, env, sink);
  }

  /** The server process's PID. */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Everything the server has logged so far (application log, both streams). */
  logs(): string {
    return this.sink.text;
  }

  pin(): string {
    return readFileSync(path.join(this.dataDir, 'token.pin'), 'utf8').trim();
  }

  softhsmConf(): string {
    return path.join(this.dataDir, 'softhsm2.conf');
  }

  /** Runs the documented CLI (`npx p11kms …` resolves to bin/p11kms.js) against this data dir. */
  cli(args: readonly string[]): string {
    return execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), ...args], {
      env: this.env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  token(project: string, admin = false): string {
    return this.cli(['token', 'create', '--project', project, ...(admin ? ['--admin'] : [])]).trim();
  }

  key(project: string, alias: string, spec: 'AES_256' | 'RSA_2048', convergent = false): CreatedKey {
    const out = this.cli(['key', 'create', '--project', project, '--alias', alias, '--spec', spec, ...(convergent ? ['--convergent'] : [])]);
    return JSON.parse(out) as CreatedKey;
  }

  /** One request on a connection of its own (helpers/http.ts says why not fetch's pool). */
  request(method: string, p: string, opts: RequestOptions = {}): Promise<Reply> {
    return request(this.url, method, p, opts);
  }

  /** Sends a signal (SIGKILL for a crash) and waits for the exit; keeps the data dir. Exit code, or the signal's name. */
  async kill(signal: NodeJS.Signals): Promise<number | string | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode ?? this.child.signalCode;
    const exited = new Promise<number | string | null>((resolve) => this.child.once('exit', (c, sig) => resolve(c ?? sig)));
    this.child.kill(signal);
    return exited;
  }

  /** SIGTERM and wait; the data dir is removed unless `keepData` (for a restart). */
  async stop(opts: { keepData?: boolean } = {}): Promise<number | null> {
    let code = this.child.exitCode;
    // Not after kill(): an exit by signal leaves exitCode null, and 'exit' has been emitted already.
    if (code === null && this.child.signalCode === null) {
      const exited = new Promise<number | null>((resolve) => this.child.once('exit', (c) => resolve(c)));
      this.child.kill('SIGTERM');
      code = await exited;
    }
    if (!opts.keepData) rmSync(this.dataDir, { recursive: true, force: true });
    return code;
  }
}

/** Every text form a secret might take in a log line. */
export function forms(secret: Buffer | string): string[] {
  if (typeof secret === 'string') return [secret];
  return [secret.toString('hex'), secret.toString('hex').toUpperCase(), secret.toString('base64')];
}

/**
 * Key-generation helper processes (src/hsm/keygen-process.ts): those whose parent is `parent`,
 * and/or that run for `dataDir` (they inherit the server's environment).
 */
export function keygenHelpers(match: { parent?: number; dataDir?: string }): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('keygen-main')) continue;
      // pid (comm) state ppid …: split after the last ')', the comm may contain spaces.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (match.parent !== undefined && ppid !== match.parent) continue;
      if (match.dataDir !== undefined && !readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`KMS_DATA_DIR=${match.dataDir}`)) continue;
      out.push(Number(name));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}
