/**
 * Key generation in a process of its own (keygen-main.ts), so that it does not stall the event loop.
 *
 * Why: C_GenerateKey of a token object takes ~5 ms on SoftHSM and an RSA key pair up to a second,
 * synchronously. On the event loop, 64 concurrent key creations stalled every other request for up
 * to half a second at a time, and data keys asked for meanwhile waited ~80 ms instead of ~2 ms
 * (README "Benchmarks"). A second process of the same user is a second PKCS#11 application, as the
 * CLI already is: SoftHSM's file locks keep the two apart, and the service sees the new objects by
 * CKA_ID like any created by the CLI.
 *
 * Why not a worker thread: SoftHSM's file backend guards its object files with fcntl locks, which
 * do not exclude threads of one process. A find in the main thread then read an object file the
 * other thread was writing, marked it invalid, and C_GenerateKey failed with CKR_GENERAL_ERROR
 * ("Could not initialize the attribute"), or the new object dropped out of the service's view.
 *
 * The process is started at the first key creation and lives as long as the service; it ends with
 * the service (its IPC channel closes, even on kill -9) and after a token fault, and the next job
 * starts a new one. A job of a dead process fails with CKR_DEVICE_ERROR (503, not retried: key
 * creation is not idempotent; Keys.create removes what was made).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from '../log/logger';
import { HsmError, type Template } from './binding';
import type { KeygenJob, KeygenOpen, KeygenReply } from './keygen-protocol';

export interface KeygenSource {
  readonly modulePath: string;
  readonly label: string;
  readonly pin: string;
}

/** Makes the token objects of a CMK version somewhere other than on the event loop (HsmOptions.keygen). */
export interface KeyGenerator {
  aes(templates: readonly Template[]): Promise<void>;
  rsa(publicTemplate: Template, privateTemplate: Template): Promise<void>;
  close(): void;
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export class KeygenProcess implements KeyGenerator {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly source: KeygenSource,
    private readonly log: Logger,
  ) {}

  aes(templates: readonly Template[]): Promise<void> {
    return this.run({ kind: 'aes', templates });
  }

  rsa(publicTemplate: Template, privateTemplate: Template): Promise<void> {
    return this.run({ kind: 'rsa', publicTemplate, privateTemplate });
  }

  /** The process's id while it runs (tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  close(): void {
    this.closed = true;
    const c = this.child;
    this.child = undefined;
    c?.kill();
    this.failAll(new HsmError(0x190, 'CKR_CRYPTOKI_NOT_INITIALIZED', 'keygen'));
  }

  private run(job: KeygenJob): Promise<void> {
    if (this.closed) return Promise.reject(new HsmError(0x190, 'CKR_CRYPTOKI_NOT_INITIALIZED', 'keygen'));
    const child = this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      hold(child, true);
      child.send({ ...job, id }, (e) => {
        if (e) this.settle(id, new HsmError(0x30, 'CKR_DEVICE_ERROR', 'keygen'));
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
    });
    const open: KeygenOpen = { kind: 'open', ...this.source };
    child.send(open);
    child.on('message', (r: KeygenReply) => {
      this.settle(r.id, r.ok ? undefined : new HsmError(r.ckr, r.ckrName, r.method));
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (!this.closed) this.log.warn('key generation process ended', { code: code ?? -1, signal: signal ?? '' });
      this.failAll(new HsmError(0x30, 'CKR_DEVICE_ERROR', 'keygen'));
    });
    child.on('error', () => {
      // 'exit' follows (or the spawn failed): jobs are failed there or by send's callback.
    });
    hold(child, false);
    this.child = child;
    return child;
  }

  private settle(id: number, failure: HsmError | undefined): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0 && this.child) hold(this.child, false);
    if (failure) p.reject(failure);
    else p.resolve();
  }

  private failAll(e: HsmError): void {
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
