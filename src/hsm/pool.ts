/**
 * The session pool: this process's only door to the token (CMK versions'
 * token objects are made and destroyed by a helper process, another PKCS#11 application, see
 * keygen-process.ts). Bounded size, bounded wait (then HsmUnavailable), and it owns the module's
 * connection to the token:
 *
 * - a session whose call failed with a `session-broken` CKR (closed under us, logged out) is closed
 *   and replaced, never reused;
 * - a `token-gone` CKR (device error, token removed, module not initialised) drains the pool,
 *   finalizes and re-initialises the module, finds the slot again by label and logs in again;
 * - while the token can't be reached the pool is "down": every request gets HsmUnavailable at once,
 *   and a timer retries with exponential backoff until the token is back (also at start-up, so the
 *   service starts without its token and becomes healthy by itself);
 * - `use(fn, { retry: true })` runs an idempotent call once more after either kind of fault.
 *
 * PKCS#11 calls are synchronous on the event loop thread, except RSA private-key operations, which
 * run on libuv's thread pool (Pkcs11Module.signOffThread), and token searches and data keys sealed
 * ahead, which run on the binding's worker threads (binding-worker.ts). A re-initialisation or C_Finalize
 * therefore waits until no call is inside the module on another thread; meanwhile the pool is down,
 * so none starts. Sessions carry the generation of the module initialisation that opened them: one
 * from before a re-initialisation is dropped on release, never closed (its handle number may
 * already belong to a new session).
 */
import { KmsError } from '../errors/kms-error';
import type { Logger } from '../log/logger';
import { HsmError, type Pkcs11Api, type SessionHandle, type SlotHandle, hsmError } from './binding';
import { classify, permanentCause, type CkrClass } from './ckr';

export interface PoolOptions {
  readonly size: number;
  readonly waitMs: number;
  /** First reconnect delay after a failed attempt; doubles up to retryMaxMs. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** Where the token is: a module to load (C_Initialize'd by the factory) and the token's label. */
export interface TokenSource {
  readonly open: () => Pkcs11Api;
  readonly label: string;
  readonly pin: string;
  /** Named in start-up errors. */
  readonly modulePath?: string;
}

export type PoolHealth = { readonly up: true } | { readonly up: false; readonly reason: string; readonly since: number };

interface Lease {
  readonly handle: SessionHandle;
  readonly generation: number;
}

interface Waiter {
  resolve: (s: Lease) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class SessionPool {
  private mod: Pkcs11Api | undefined;
  private slot: SlotHandle | undefined;
  private gen = 0;
  private readonly idle: Lease[] = [];
  /** See keeperSession(). */
  private keeper: Lease | undefined;
  private keeperSerialNo = 0;
  private readonly busy = new Set<Lease>();
  private readonly waiters: Waiter[] = [];
  private health: PoolHealth = { up: false, reason: 'not connected yet', since: Date.now() };
  private closed = false;
  private connecting = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private readonly connectedListeners: Array<() => void> = [];
  /** The re-initialisation under way, waiting for off-thread calls to leave the module. */
  private reconnecting: Promise<boolean> | undefined;
  /** Sessions opened and closed (or dropped) over the pool's life: a leak shows as a difference from `open`. */
  private counters = { opened: 0, closed: 0, dropped: 0, recoveries: 0 };
  /** Why the token can't be used at all (a rejected PIN): nothing more is tried. */
  private fatal: string | undefined;
  /** Why the first connection failed for good (start()). */
  private startFailure: string | undefined;

  constructor(
    private readonly source: TokenSource,
    private readonly options: PoolOptions,
    private readonly log: Logger,
  ) {
    this.retryDelay = options.retryMinMs ?? 250;
  }

  /**
   * First connection attempt. Resolves undefined when up or when the failure may pass (the pool
   * then stays down and keeps retrying in the background), or with the reason the token can't be
   * used at all: a module that won't load, no token with the label, a rejected PIN.
   */
  start(): string | undefined {
    this.connect('start');
    if (this.startFailure) this.close();
    return this.startFailure;
  }

  /** The current module; only meaningful inside `use` (it changes when the module is re-initialised). */
  get module(): Pkcs11Api {
    if (!this.mod) throw unavailable();
    return this.mod;
  }

  /** Bumped by every (re-)initialisation; object handles cached under an older one are stale. */
  get generation(): number {
    return this.gen;
  }

  /**
   * A logged-in session that is never lent out nor recycled, for session objects that must outlive
   * any one request (Hsm's session copies of CMKs: a session object dies with the session that
   * made it). Only inside `use`. It is not counted in the pool's size.
   */
  keeperSession(): { handle: SessionHandle; serial: number } {
    if (!this.keeper || this.keeper.generation !== this.gen) {
      const lease = this.openSession();
      this.busy.delete(lease);
      this.keeper = lease;
      this.keeperSerialNo++;
    }
    return { handle: this.keeper.handle, serial: this.keeperSerialNo };
  }

  /** Changes whenever the keeper session is replaced or dropped: objects made in an older one are gone. */
  get keeperSerial(): number {
    return this.keeperSerialNo;
  }

  /** The keeper's objects can't be trusted any more (its session or the login died): start a new one when next needed. */
  dropKeeper(): void {
    const k = this.keeper;
    if (!k) return;
    this.keeper = undefined;
    this.keeperSerialNo++;
    if (k.generation === this.gen) this.closeQuietly(k);
    else this.counters.dropped++;
  }

  get status(): PoolHealth {
    return this.health;
  }

  /** Called after every successful (re)connection (start-up reconciliation hangs off this). */
  onConnected(fn: () => void): void {
    this.connectedListeners.push(fn);
  }

  /**
   * Runs fn with a session held for its whole duration; the session is released in `finally`.
   * With `retry`, a session or token fault is followed by one more attempt on a fresh session
   * (after the module was re-initialised for a token fault). Only for idempotent calls.
   */
  async use<T>(fn: (s: SessionHandle) => T | Promise<T>, opts: { retry?: boolean } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      // The common case (an idle session, a synchronous call) takes no extra turn of the event loop.
      const pending = this.acquire();
      const lease = pending instanceof Promise ? await pending : pending;
      let fault: CkrClass | undefined;
      let failure: HsmError | undefined;
      try {
        const out = fn(lease.handle);
        return out instanceof Promise ? await out : out;
      } catch (e) {
        if (e instanceof HsmError) {
          const cls = classify(e.ckrName);
          if (cls === 'session-broken' || cls === 'token-gone') {
            fault = cls;
            failure = e;
          }
        }
        if (!fault || !opts.retry || attempt > 0) {
          if (fault === 'token-gone') void this.recover(e as HsmError);
          throw e;
        }
      } finally {
        this.release(lease, fault);
      }
      // Only reached for a retryable fault on the first attempt.
      this.log.warn('hsm call failed, retrying once', { ckr: failure?.ckrName ?? '', method: failure?.method ?? '', class: fault ?? '' });
      if (fault === 'token-gone' && !(await this.recover(failure!))) throw unavailable();
    }
  }

  get stats(): { open: number; idle: number; busy: number; keeper: number; waiting: number; opened: number; closed: number; dropped: number; recoveries: number } {
    const keeper = this.keeper && this.keeper.generation === this.gen ? 1 : 0;
    return {
      open: this.idle.length + this.busy.size + keeper,
      keeper,
      idle: this.idle.length,
      busy: this.busy.size,
      waiting: this.waiters.length,
      ...this.counters,
    };
  }

  /**
   * Re-initialises the module and logs in again; single-flight. Resolves whether the token is back.
   * Called on any token-gone fault; the pool goes down (503s) until it succeeds.
   */
  recover(cause: HsmError): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    // A fault on a session of an older generation was already dealt with by that re-initialisation.
    this.log.error('hsm token fault, reconnecting', { ckr: cause.ckrName, method: cause.method });
    return this.reconnect(`${cause.ckrName} in ${cause.method}`);
  }

  /** connect(), once no call is inside the module on another thread; single-flight. */
  private reconnect(why: string): Promise<boolean> {
    const mod = this.mod;
    if (!mod || mod.callsOffThread === 0) return Promise.resolve(this.connect(why));
    if (this.reconnecting) return this.reconnecting;
    // Down while waiting: no new call may enter the module that is about to be re-initialised.
    this.markDown(why);
    this.reconnecting = mod.offThreadIdle().then(() => {
      this.reconnecting = undefined;
      return !this.closed && this.connect(why);
    });
    return this.reconnecting;
  }

  /** Stops the pool: waiters get 503, idle sessions are closed, busy ones on release, then C_Finalize. */
  /** Resolves once the module is finalized (after any off-thread call still inside it has left). */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.rejectWaiters();
    // Busy sessions are closed when their calls return (release sees `closed`).
    for (const l of this.idle.splice(0)) this.closeQuietly(l);
    this.dropKeeper();
    const mod = this.mod;
    if (!mod) return Promise.resolve();
    this.mod = undefined;
    const finalize = () => {
      try {
        mod.finalize();
      } catch (e) {
        if (e instanceof HsmError) this.log.warn('C_Finalize failed', { ckr: e.ckrName });
      }
    };
    // An off-thread call still inside the module: finalize when it has left (it keeps the event loop alive until then).
    if (mod.callsOffThread === 0) {
      finalize();
      return Promise.resolve();
    }
    return mod.offThreadIdle().then(finalize);
  }

  /**
   * (Re)connects: drop every session, (re)initialise the module, find the slot by label, open one
   * session, log in and draw random bytes from it. Success: up. Failure: down, retry later.
   */
  private connect(why: string): boolean {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.gen++;
    this.counters.recoveries += why === 'start' ? 0 : 1;
    // Old sessions die with C_Finalize; forget them without closing (see the header comment).
    this.counters.dropped += this.idle.length;
    this.idle.length = 0;
    // The keeper is of the old generation now: dropped, not closed, like the idle sessions.
    this.dropKeeper();
    this.slot = undefined;
    this.connecting = true;
    try {
      if (this.mod) this.mod.reinitialize();
      else this.mod = this.source.open();
      const tokens = this.mod.tokens();
      const found = tokens.find((t) => t.label === this.source.label);
      if (!found) {
        if (why === 'start') this.startFailure = `no token labelled '${this.source.label}' in ${this.source.modulePath ?? 'the PKCS#11 module'}; tokens present: ${tokens.map((t) => `'${t.label}'`).join(', ') || 'none'}`;
        throw hsmError('CKR_TOKEN_NOT_PRESENT', 'findToken');
      }
      this.slot = found.slot;
      const lease = this.openSession();
      this.busy.delete(lease);
      try {
        this.mod.generateRandom(lease.handle, 8);
      } catch (e) {
        this.closeQuietly(lease);
        throw e;
      }
      this.idle.push(lease);
    } catch (e) {
      if (why === 'start' && !this.mod) {
        const detail = e instanceof HsmError ? ` (${e.ckrName} in ${e.method})` : '';
        this.startFailure = `the PKCS#11 module ${this.source.modulePath ?? ''} could not be loaded or initialised${detail}`;
      }
      if (why === 'start' && this.fatal) this.startFailure = this.fatal;
      // The process ends with one line saying why (start()): nothing to retry, nothing more to log.
      if (this.startFailure) {
        this.markDown(this.startFailure);
        return false;
      }
      const reason = this.fatal ?? (e instanceof HsmError ? `${e.ckrName} in ${e.method}` : e instanceof KmsError ? e.code : 'module load failed');
      this.goDown(reason);
      return false;
    } finally {
      this.connecting = false;
    }
    const wasDown = !this.health.up;
    this.health = { up: true };
    this.retryDelay = this.options.retryMinMs ?? 250;
    if (wasDown && why !== 'start') this.log.info('hsm token reachable again', { after: why });
    for (const fn of this.connectedListeners) {
      try {
        fn();
      } catch {
        // A listener's failure is its own to report.
      }
    }
    return true;
  }

  private goDown(reason: string): void {
    if (this.fatal) {
      this.markDown(`${this.fatal}; not retrying (fix the PIN and restart)`);
      return;
    }
    if (this.health.up || this.health.reason !== reason) {
      this.log.error('hsm token not reachable, retrying', { reason, retryInMs: this.retryDelay });
    }
    this.markDown(reason);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed && !this.health.up) void this.reconnect('retry');
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMaxMs ?? 5000);
  }

  /** Every request gets HsmUnavailable at once from now on, those waiting for a session too. */
  private markDown(reason: string): void {
    this.health = { up: false, reason, since: this.health.up ? Date.now() : this.health.since };
    this.rejectWaiters();
  }

  /** A lease at once when one is idle (or may be opened); a promise only when the caller must wait. */
  private acquire(): Lease | Promise<Lease> {
    if (this.closed || !this.health.up || this.fatal) throw unavailable();
    const idle = this.idle.pop();
    if (idle) {
      this.busy.add(idle);
      return idle;
    }
    if (this.idle.length + this.busy.size < this.options.size) return this.openSession();
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(unavailable());
        }, this.options.waitMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Opens a session and logs in; the lease is counted busy. Failures become HsmUnavailable. */
  private openSession(): Lease {
    const mod = this.module;
    if (!this.slot) throw unavailable();
    let handle: SessionHandle;
    try {
      handle = mod.openSession(this.slot);
    } catch (e) {
      throw this.openFailed(e);
    }
    this.counters.opened++;
    const lease: Lease = { handle, generation: this.gen };
    this.busy.add(lease);
    try {
      // Login is per application and ends when its last session closes (C_CloseAllSessions, a
      // token logout): log in on every new session and accept "already logged in".
      mod.login(handle, this.source.pin);
    } catch (e) {
      if (!(e instanceof HsmError && e.ckrName === 'CKR_USER_ALREADY_LOGGED_IN')) {
        this.busy.delete(lease);
        this.closeQuietly(lease);
        // A rejected PIN: never log in again in this process (a real HSM locks the user after a few).
        const permanent = e instanceof HsmError ? permanentCause(e) : undefined;
        if (permanent && !this.fatal) {
          this.fatal = permanent;
          if (!this.connecting || this.gen > 1) this.log.error('hsm token unusable, not retrying', { reason: permanent });
          this.goDown(permanent);
          throw unavailable();
        }
        throw this.openFailed(e);
      }
    }
    return lease;
  }

  private openFailed(e: unknown): Error {
    if (!(e instanceof HsmError)) return e instanceof Error ? e : unavailable();
    this.log.error('hsm session could not be opened', { ckr: e.ckrName, method: e.method });
    const cls = classify(e.ckrName);
    if (cls === 'token-gone' || cls === 'session-broken') {
      // During connect() the caller handles it; otherwise reconnect in the background.
      if (!this.connecting && this.health.up) queueMicrotask(() => void this.recover(e));
      return e;
    }
    return unavailable();
  }

  private release(lease: Lease, fault: CkrClass | undefined): void {
    this.busy.delete(lease);
    if (lease.generation !== this.gen) {
      this.counters.dropped++;
    } else if (fault || this.closed) {
      this.closeQuietly(lease);
      // What breaks one session (C_CloseAllSessions, a logout) breaks its idle siblings too:
      // replace them now rather than let the retry land on another dead one.
      // The keeper too: a logout destroys its private session objects even when the session lives.
      if (fault === 'session-broken') {
        for (const l of this.idle.splice(0)) this.closeQuietly(l);
        this.dropKeeper();
      }
    } else {
      const next = this.waiters.shift();
      if (next) {
        clearTimeout(next.timer);
        this.busy.add(lease);
        next.resolve(lease);
      } else {
        this.idle.push(lease);
      }
      return;
    }
    // A slot is free: hand a new session to the next waiter.
    const next = this.waiters.shift();
    if (!next) return;
    clearTimeout(next.timer);
    try {
      if (!this.health.up) throw unavailable();
      next.resolve(this.openSession());
    } catch (e) {
      next.reject(e instanceof HsmError ? unavailable() : e instanceof Error ? e : unavailable());
    }
  }

  private rejectWaiters(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(unavailable());
    }
  }

  private closeQuietly(lease: Lease): void {
    this.counters.closed++;
    if (lease.generation !== this.gen || !this.mod) return;
    try {
      this.mod.closeSession(lease.handle);
    } catch {
      // Already closed or the token is gone: nothing left to release.
    }
  }
}

export function unavailable(): KmsError {
  return new KmsError('HsmUnavailable', 'The HSM is not available. Try again later.');
}
