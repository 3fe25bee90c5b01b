/**
 * Session threads: this process's door to a token that is not known to answer in-process (the
 * `generic` and `nss` profiles, index.ts). Each thread (binding-thread.ts) owns one session and
 * makes every PKCS#11 call of a request on it, so the event loop never waits for the token.
 *
 * - Every call has a deadline. A call that misses it is answered HsmUnavailable at once; its
 *   thread and session are abandoned (never used again: the thread closes its session and exits
 *   whenever the call returns), and the token is taken for down.
 * - Down: every request gets HsmUnavailable at once, and a probe (a fresh thread: open, log in,
 *   draw random bytes, under a short deadline) runs every second until one answers. Abandoned
 *   threads still stuck in a call are bounded: no probe starts while a few of them are.
 * - A session fault (closed, logged out) retires that thread; a token fault (device error,
 *   module not initialised) retires them all and the next probe re-initialises the module, once
 *   no thread is inside a call (C_Finalize under a running call frees what it uses).
 * - A rejected PIN (incorrect, locked, expired) stops everything: no more logins, ever, in this
 *   process (a real HSM locks the partition after a few), and the status says why.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { KmsError } from '../errors/kms-error';
import type { Logger } from '../log/logger';
import { HsmError, holdLibrary, hsmError } from './binding';
import { classify, permanentCause } from './ckr';
import type { PoolHealth } from './pool';
import type { CallOf, ThreadCall, ThreadOptions, ThreadReply, ThreadValues } from './thread-protocol';

export interface ThreadsOptions extends ThreadOptions {
  readonly label: string;
  readonly pin: string;
  /** Most threads (sessions) in use at once. */
  readonly size: number;
  /** Longest wait for a free thread before HsmUnavailable. */
  readonly waitMs: number;
  /** KMS_HSM_CALL_TIMEOUT_MS: the deadline of each call. */
  readonly callTimeoutMs: number;
  /** How often a token that is down is probed. */
  readonly probeMs?: number;
  /** Told of every call's duration and, when it failed, its CKR name (metrics). */
  readonly observeCall?: CallObserver;
}

/** `operation`: the thread operation (one or a few PKCS#11 calls); `ckr`: set when it failed. */
export type CallObserver = (operation: string, seconds: number, ckr?: string) => void;

type Op = ThreadCall['op'];

/** No probe starts while this many abandoned threads are still inside a call (one returning is the sign to look for). */
const MAX_STUCK_TO_PROBE = 4;
/** Probes wait at most this long (or the call deadline, if shorter). */
const PROBE_DEADLINE_MS = 2000;

/**
 * Session threads of this process inside a call (answered or abandoned): a process can't end
 * normally while one is, since ending joins every thread (exit.ts).
 */
const inCall = new Set<SessionThread>();

export function callsInside(): number {
  return inCall.size;
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** One worker thread and its session. */
class SessionThread {
  readonly worker: Worker;
  private nextId = 0;
  private pending: Pending | undefined;
  private dead = false;
  private online = false;
  /** Calls made on it since its session was opened (tests and stats). */
  uses = 0;

  constructor(
    options: ThreadOptions,
    /** The module initialisation its session belongs to (set once the session is open). */
    public generation: number,
    private readonly onExit: (t: SessionThread) => void,
  ) {
    this.worker = new Worker(path.join(__dirname, 'binding-thread.js'), { workerData: { modulePath: options.modulePath, ...(options.libraryParameters ? { libraryParameters: options.libraryParameters } : {}) } });
    this.worker.unref();
    this.worker.once('online', () => (this.online = true));
    this.worker.on('message', (reply: ThreadReply) => {
      inCall.delete(this);
      const p = this.pending;
      if (!p) return;
      this.pending = undefined;
      clearTimeout(p.timer);
      this.worker.unref();
      if (reply.ok) p.resolve(reply.value);
      else p.reject(Object.assign(new HsmError(reply.error.ckr, reply.error.ckrName, reply.error.method), reply.error.detail ? { detail: reply.error.detail } : {}));
    });
    const died = (): void => {
      inCall.delete(this);
      this.dead = true;
      const p = this.pending;
      this.pending = undefined;
      if (p) {
        clearTimeout(p.timer);
        p.reject(new HsmError(-1, 'CKR_SESSION_CLOSED', 'thread'));
      }
      this.onExit(this);
    };
    this.worker.on('error', died);
    this.worker.on('exit', died);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** One request; rejects with a DeadlineMissed when no answer comes within `deadlineMs`. */
  send<O extends Op>(r: CallOf<O>, deadlineMs: number): Promise<ThreadValues[O]> {
    if (this.dead) return Promise.reject(new HsmError(-1, 'CKR_SESSION_CLOSED', 'thread'));
    if (this.pending) return Promise.reject(new Error('session thread busy'));
    const id = this.nextId++;
    this.uses++;
    return new Promise<ThreadValues[O]>((resolve, reject) => {
      const pending: Pending = { resolve: resolve as (v: unknown) => void, reject };
      const expire = () => {
        this.pending = undefined;
        this.worker.unref();
        reject(new DeadlineMissed(r.op, deadlineMs));
      };
      // The deadline is the token's: a thread still starting (slow on a busy machine) isn't counted.
      if (this.online) pending.timer = setTimeout(expire, deadlineMs);
      else this.worker.once('online', () => this.pending === pending && (pending.timer = setTimeout(expire, deadlineMs)));
      this.pending = pending;
      inCall.add(this);
      this.worker.ref();
      this.worker.postMessage({ ...r, id });
    });
  }

  /** Its call is given up because the token went silent on another thread: rejected with Abandoned. */
  abandon(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.worker.unref();
    p.reject(new Abandoned());
  }

  /** Closes its session when its current call (if any) returns, then exits. Never used again. */
  retire(): void {
    if (this.dead) return;
    this.dead = true;
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(new HsmError(-1, 'CKR_SESSION_CLOSED', 'thread'));
    }
    this.worker.unref();
    this.worker.postMessage({ op: 'retire', id: -1 });
  }
}

/** A call that did not answer within its deadline. */
export class DeadlineMissed extends Error {
  override readonly name = 'DeadlineMissed';
  constructor(
    readonly op: string,
    readonly ms: number,
  ) {
    super(`no answer from the token within ${ms} ms (${op})`);
  }
}

/** A call given up without waiting for its deadline: the token missed another call's. */
class Abandoned extends Error {
  override readonly name = 'Abandoned';
}

interface Waiter {
  readonly resolve: (t: SessionThread) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class SessionThreads {
  private readonly idle: SessionThread[] = [];
  private readonly busy = new Set<SessionThread>();
  /** Abandoned threads still inside a call. */
  private readonly stuck = new Set<SessionThread>();
  private opening = 0;
  private readonly waiters: Waiter[] = [];
  private health: PoolHealth = { up: false, reason: 'not connected yet', since: Date.now() };
  /** Set once the PIN was rejected: nothing more is tried. */
  private fatal: string | undefined;
  private gen = 0;
  /** Whether the module must be (re-)initialised by the next thread that opens a session. */
  private initialize: 'yes' | 'again' | 'no' = 'yes';
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;
  private starting = false;
  private readonly listeners: Array<() => void> = [];
  readonly counters = { opened: 0, retired: 0, abandoned: 0, recoveries: 0 };

  /** Keeps the library loaded while threads come and go (see holdLibrary). */
  readonly library: unknown;

  constructor(
    private readonly options: ThreadsOptions,
    private readonly log: Logger,
  ) {
    this.library = holdLibrary(options.modulePath);
  }

  get status(): PoolHealth {
    return this.health;
  }

  /** Bumped by every module (re-)initialisation: object handles of an older one are stale. */
  get generation(): number {
    return this.gen;
  }

  get stats(): { size: number; idle: number; busy: number; stuck: number; waiting: number; opened: number; retired: number; abandoned: number; recoveries: number } {
    return { size: this.options.size, idle: this.idle.length, busy: this.busy.size, stuck: this.stuck.size, waiting: this.waiters.length, ...this.counters };
  }

  onConnected(fn: () => void): void {
    this.listeners.push(fn);
  }

  /**
   * The first connection. Resolves undefined once up, or with the reason the token can't be used
   * at all (a rejected PIN, a module that won't load, no token with the label): the caller ends the
   * process. A passing failure (a silent token, a device error) leaves it down, probing.
   */
  async start(): Promise<string | undefined> {
    this.starting = true;
    try {
      await this.probe(true);
      return undefined;
    } catch (e) {
      if (this.fatal) return this.fatal;
      if (e instanceof HsmError) {
        const detail = (e as HsmError & { detail?: string }).detail;
        if (e.ckrName === 'MODULE_LOAD_FAILED') return `the PKCS#11 module ${this.options.modulePath} could not be loaded: ${detail ?? 'unknown error'}`;
        if (e.method === 'findToken') return `no token labelled '${this.options.label}' in ${this.options.modulePath}; tokens present: ${detail ?? 'none'}`;
      }
      this.scheduleProbe();
      return undefined;
    } finally {
      this.starting = false;
    }
  }

  /**
   * `r` on a thread of its own, within the deadline (`deadlineMs`, default the configured one).
   * With `retry`, a session or token fault is followed by one more attempt on another thread.
   */
  async call<O extends Op>(r: CallOf<O>, opts: { retry?: boolean; deadlineMs?: number } = {}): Promise<ThreadValues[O]> {
    for (let attempt = 0; ; attempt++) {
      const t = await this.acquire();
      const start = process.hrtime.bigint();
      const seconds = (): number => Number(process.hrtime.bigint() - start) / 1e9;
      try {
        const out = await t.send(r, opts.deadlineMs ?? this.options.callTimeoutMs);
        this.options.observeCall?.(r.op, seconds());
        this.release(t);
        return out;
      } catch (e) {
        this.options.observeCall?.(r.op, seconds(), e instanceof HsmError ? e.ckrName : e instanceof DeadlineMissed ? 'DEADLINE' : e instanceof Abandoned ? 'ABANDONED' : 'UNKNOWN');
        const fault = this.failed(t, e);
        if (fault === 'abandoned') throw unavailable();
        if (!fault || !opts.retry || attempt > 0) throw e;
        this.log.warn('hsm call failed, retrying once', { ckr: (e as HsmError).ckrName, method: (e as HsmError).method, class: fault });
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.rejectWaiters();
    for (const t of this.idle.splice(0)) t.retire();
    for (const t of this.busy) t.retire();
  }

  /** What a failed call means for its thread and the token; returns the kind of fault, if any. */
  private failed(t: SessionThread, e: unknown): 'abandoned' | 'session-broken' | 'token-gone' | undefined {
    this.busy.delete(t);
    if (e instanceof DeadlineMissed || e instanceof Abandoned) {
      this.counters.abandoned++;
      this.stuck.add(t);
      t.retire();
      if (e instanceof DeadlineMissed) this.goDown(e.message, true);
      return 'abandoned';
    }
    const cls = e instanceof HsmError ? classify(e.ckrName) : 'internal';
    if (e instanceof HsmError && permanentCause(e)) {
      this.retire(t);
      this.stop(permanentCause(e)!);
      return 'abandoned';
    }
    if (cls === 'session-broken') {
      this.retire(t);
      return cls;
    }
    if (cls === 'token-gone') {
      this.retire(t);
      this.initialize = 'again';
      this.goDown(`${(e as HsmError).ckrName} in ${(e as HsmError).method}`);
      return cls;
    }
    this.release(t);
    return undefined;
  }

  /** A thread with a logged-in session: an idle one, a new one, or the next to be released. */
  private async acquire(): Promise<SessionThread> {
    if (this.closed || !this.health.up) throw unavailable();
    const idle = this.idle.pop();
    if (idle) {
      this.busy.add(idle);
      return idle;
    }
    if (this.busy.size + this.opening < this.options.size) {
      this.opening++;
      try {
        const t = await this.open(false);
        if (!this.health.up || this.closed) {
          this.retire(t);
          throw unavailable();
        }
        this.busy.add(t);
        return t;
      } catch (e) {
        if (e instanceof DeadlineMissed) this.goDown(e.message, true);
        else if (e instanceof HsmError && permanentCause(e)) this.stop(permanentCause(e)!);
        else if (e instanceof HsmError && classify(e.ckrName) === 'token-gone') {
          this.initialize = 'again';
          this.goDown(`${e.ckrName} in ${e.method}`);
        }
        throw unavailable();
      } finally {
        this.opening--;
      }
    }
    return new Promise<SessionThread>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(unavailable());
        }, this.options.waitMs),
      };
      this.waiters.push(w);
    });
  }

  /** A new thread with its session open and logged in (initialising the module if it must). */
  private async open(probe: boolean): Promise<SessionThread> {
    const t = new SessionThread(this.options, this.gen, (x) => this.exited(x));
    const init = this.initialize;
    const deadline = probe ? Math.min(this.options.callTimeoutMs, PROBE_DEADLINE_MS) : this.options.callTimeoutMs;
    try {
      const { label, pin } = this.options;
      const opened = init === 'again' ? await t.send({ op: 'reinitialize', label, pin }, deadline) : await t.send({ op: 'open', initialize: init === 'yes' ? 'yes' : 'no', label, pin }, deadline);
      if (opened !== true) {
        t.retire();
        throw Object.assign(hsmError('CKR_TOKEN_NOT_PRESENT', 'findToken'), { detail: opened.labels.map((l) => `'${l}'`).join(', ') || 'none' });
      }
    } catch (e) {
      if (e instanceof DeadlineMissed) {
        this.counters.abandoned++;
        this.stuck.add(t);
      }
      t.retire();
      throw e;
    }
    if (init !== 'no') {
      this.initialize = 'no';
      this.gen++;
      if (init === 'again') this.counters.recoveries++;
    }
    t.generation = this.gen;
    this.counters.opened++;
    return t;
  }

  private release(t: SessionThread): void {
    this.busy.delete(t);
    if (this.closed || t.generation !== this.gen) return this.retire(t);
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      this.busy.add(t);
      w.resolve(t);
    } else {
      this.idle.push(t);
    }
  }

  private retire(t: SessionThread): void {
    this.busy.delete(t);
    const i = this.idle.indexOf(t);
    if (i >= 0) this.idle.splice(i, 1);
    this.counters.retired++;
    t.retire();
    // Its place is free: a waiter gets a new thread rather than waiting for a release.
    const w = this.health.up && !this.closed ? this.waiters.shift() : undefined;
    if (w) {
      clearTimeout(w.timer);
      this.acquire().then(w.resolve, w.reject);
    }
  }

  private exited(t: SessionThread): void {
    this.busy.delete(t);
    this.stuck.delete(t);
    const i = this.idle.indexOf(t);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /**
   * One probe: a fresh thread opens a session (re-initialising the module when a token fault
   * asked for it and no other thread is inside a call) and draws random bytes. Up on success.
   */
  private async probe(first = false): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      if (this.initialize === 'again' && (this.busy.size > 0 || this.stuck.size > 0)) throw new Error('waiting for calls to leave the module');
      const t = await this.open(true);
      try {
        await t.send({ op: 'random', length: 8 }, Math.min(this.options.callTimeoutMs, PROBE_DEADLINE_MS));
      } catch (e) {
        if (e instanceof DeadlineMissed) {
          this.counters.abandoned++;
          this.stuck.add(t);
        }
        t.retire();
        throw e;
      }
      const wasDown = !this.health.up;
      this.health = { up: true };
      this.idle.push(t);
      if (wasDown && !first) this.log.info('hsm token reachable again', {});
      for (const fn of this.listeners) {
        try {
          fn();
        } catch {
          // A listener's failure is its own to report.
        }
      }
    } catch (e) {
      if (e instanceof HsmError && permanentCause(e)) this.stop(permanentCause(e)!);
      else this.markDown(e instanceof HsmError ? `${e.ckrName} in ${e.method}` : e instanceof Error ? e.message : 'unknown');
      throw e;
    } finally {
      this.probing = false;
    }
  }

  private scheduleProbe(): void {
    if (this.closed || this.fatal || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.closed || this.fatal || this.health.up) return;
      // Abandoned threads hold sessions until their calls return: don't pile up more of them.
      if (this.stuck.size >= Math.min(this.options.size, MAX_STUCK_TO_PROBE)) return this.scheduleProbe();
      this.probe().catch(() => this.scheduleProbe());
    }, this.options.probeMs ?? 1000);
    this.probeTimer.unref();
  }

  /**
   * Down: requests fail at once, idle sessions are retired, a probe brings it back. `silent`: the
   * token missed a deadline, so the calls in flight are given up too (theirs would only run out).
   */
  private goDown(reason: string, silent = false): void {
    if (this.health.up) this.log.error('hsm token not answering, probing', { reason });
    this.markDown(reason);
    for (const t of this.idle.splice(0)) this.retire(t);
    if (silent) for (const t of [...this.busy]) t.abandon();
    this.scheduleProbe();
  }

  private markDown(reason: string): void {
    this.health = { up: false, reason, since: this.health.up ? Date.now() : this.health.since };
    this.rejectWaiters();
  }

  /** The PIN was rejected: no more logins in this process. */
  private stop(reason: string): void {
    if (this.fatal) return;
    this.fatal = reason;
    // At start the process ends with one line saying why (start()).
    if (!this.starting) this.log.error('hsm token unusable, not retrying', { reason });
    this.markDown(`${reason}; not retrying (fix the PIN and restart)`);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    for (const t of this.idle.splice(0)) this.retire(t);
  }

  private rejectWaiters(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(unavailable());
    }
  }
}

function unavailable(): KmsError {
  return new KmsError('HsmUnavailable', 'The HSM is not available. Try again later.');
}
