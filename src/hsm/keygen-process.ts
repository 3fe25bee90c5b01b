/**
 * Key generation in a process of its own (keygen-main.ts), so that it does not stall the event loop.
 *
 * Why: C_GenerateKey of a token object, and an RSA key pair far more, take long and synchronously.
 * On the event loop, concurrent key creations stalled every other request, data keys asked for
 * meanwhile above all (bench/README.md). A second process of the same user is a second PKCS#11 application, as the
 * CLI already is: SoftHSM's file locks keep the two apart, and the service sees the new objects by
 * CKA_ID like any created by the CLI.
 *
 * Why not a worker thread: SoftHSM's file backend guards its object files with fcntl locks, which
 * do not exclude threads of one process. A find in the main thread then read an object file the
 * other thread was writing, marked it invalid, and C_GenerateKey failed with CKR_GENERAL_ERROR
 * ("Could not initialize the attribute"), or the new object dropped out of the service's view.
 *
 * It also destroys token objects, so that the service process never writes one: SoftHSM tells a
 * process of other processes' changes by a generation counter in the token directory, and a
 * process that writes sets its view of that counter to what it wrote, taking in any change another
 * process made just before without reading it (OSToken::deleteObject commits the generation
 * without indexing). The crash test caught the service's view missing a version the helper had
 * just made, after the service had destroyed another. A process that only reads never misses one.
 * The helper's own view can miss others' objects the same way: a destroy that finds fewer objects
 * than the service saw initialises the helper's module again and looks once more.
 *
 * The process is started at the first key creation and lives as long as the service; it ends with
 * the service (its IPC channel closes, even on kill -9) and after a token fault, and the next job
 * starts a new one. A job of a dead process fails with CKR_DEVICE_ERROR (503, not retried: key
 * creation is not idempotent; Keys.create removes what was made).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from '../log/logger';
import { HsmError, type Template, hsmError } from './binding';
import type { KeygenJob, KeygenOpen, KeygenReply } from './keygen-protocol';

export interface KeygenSource {
  readonly modulePath: string;
  readonly label: string;
  readonly pin: string;
}

/**
 * Makes and destroys CMK versions' token objects for the service, off its event loop
 * (HsmOptions.tokenWriter): while there is one, the service itself never writes a token object.
 */
export interface TokenWriter {
  aes(templates: readonly Template[]): Promise<void>;
  rsa(publicTemplate: Template, privateTemplate: Template): Promise<void>;
  /** A generic secret key (the audit trail's HMAC key). */
  secret(template: Template): Promise<void>;
  /** Destroys every token object with one of `ids` (`expected` of them, as the caller saw); resolves how many. */
  destroy(ids: readonly Buffer[], expected: number): Promise<number>;
  close(): void;
}

interface Pending {
  readonly resolve: (count: number) => void;
  readonly reject: (e: Error) => void;
}

/** No answer for this long while jobs are out: the helper is taken for hung and replaced. */
const STALL_MS = 60_000;
/**
 * A helper that has not said it is ready (node start-up, module load, login) gets at least this
 * long: on a loaded machine a start alone can take seconds, far more than a job.
 */
const START_MS = STALL_MS;

export class KeygenProcess implements TokenWriter {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Armed while jobs are out, re-armed by every answer (see STALL_MS). */
  private watchdog: NodeJS.Timeout | undefined;
  /** The helper that said it is ready (see START_MS). */
  private ready: ChildProcess | undefined;

  constructor(
    private readonly source: KeygenSource,
    private readonly log: Logger,
    private readonly stallMs = STALL_MS,
  ) {}

  async aes(templates: readonly Template[]): Promise<void> {
    await this.run({ kind: 'aes', templates });
  }

  async rsa(publicTemplate: Template, privateTemplate: Template): Promise<void> {
    await this.run({ kind: 'rsa', publicTemplate, privateTemplate });
  }

  async secret(template: Template): Promise<void> {
    await this.run({ kind: 'secret', template });
  }

  destroy(ids: readonly Buffer[], expected: number): Promise<number> {
    return this.run({ kind: 'destroy', ids, expected });
  }

  close(): void {
    this.closed = true;
    const c = this.child;
    this.child = undefined;
    c?.kill();
    this.failAll(hsmError('CKR_CRYPTOKI_NOT_INITIALIZED', 'keygen'));
  }

  private run(job: KeygenJob): Promise<number> {
    if (this.closed) return Promise.reject(hsmError('CKR_CRYPTOKI_NOT_INITIALIZED', 'keygen'));
    const child = this.start();
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      if (this.pending.size === 0) this.arm(child);
      this.pending.set(id, { resolve, reject });
      hold(child, true);
      child.send({ ...job, id }, (e) => {
        if (e) this.settle(id, 0, hsmError('CKR_DEVICE_ERROR', 'keygen'));
      });
    });
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(path.join(__dirname, 'keygen-main.js'), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Not the service's flags: --inspect would clash on its port, profilers would double up.
      execArgv: [],
      env: helperEnv(process.env),
    });
    const open: KeygenOpen = { kind: 'open', ...this.source };
    child.send(open);
    child.on('message', (r: KeygenReply) => {
      if ('ready' in r) {
        this.ready = child;
        if (this.pending.size > 0) this.arm(child);
        return;
      }
      if (this.pending.size > 1) this.arm(child);
      if (r.ok) this.settle(r.id, r.count);
      else this.settle(r.id, 0, new HsmError(r.ckr, r.ckrName, r.method));
    });
    const lost = (how: Record<string, string | number>): void => {
      if (this.child !== child) return;
      this.child = undefined;
      if (!this.closed) this.log.warn('key generation process ended', how);
      this.failAll(hsmError('CKR_DEVICE_ERROR', 'keygen'));
    };
    child.on('exit', (code, signal) => lost({ code: code ?? -1, signal: signal ?? '' }));
    // A failed spawn emits only 'error'; a running process's 'error' (a failed kill or send) is
    // followed by 'exit', or its job is failed by send's callback.
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (child.pid === undefined) lost({ spawn: e.code ?? 'failed' });
    });
    hold(child, false);
    this.child = child;
    return child;
  }

  /** (Re)starts the no-answer watchdog for `child`. */
  private arm(child: ChildProcess): void {
    clearTimeout(this.watchdog);
    const ms = this.ready === child ? this.stallMs : Math.max(this.stallMs, START_MS);
    this.watchdog = setTimeout(() => {
      if (this.child !== child || this.pending.size === 0) return;
      this.log.warn('key generation process gave no answer; replacing it', { afterMs: ms, jobs: this.pending.size });
      child.kill('SIGKILL');
    }, ms);
    this.watchdog.unref();
  }

  private settle(id: number, count: number, failure?: HsmError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) {
      clearTimeout(this.watchdog);
      if (this.child) hold(this.child, false);
    }
    if (failure) p.reject(failure);
    else p.resolve(count);
  }

  private failAll(e: HsmError): void {
    clearTimeout(this.watchdog);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(e);
  }
}

/**
 * While a job is out, the helper (its process and its channel, so that its exit is seen) keeps
 * the service's event loop alive; idle, it must not keep a finished CLI or test process running.
 */
function hold(child: ChildProcess, on: boolean): void {
  if (on) {
    child.ref();
    child.channel?.ref();
  } else {
    child.unref();
    child.channel?.unref();
  }
}

/** The service's environment without the PIN (KMS_PIN, when set there): the helper gets it over its channel. */
export function helperEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out['KMS_PIN'];
  return out;
}
