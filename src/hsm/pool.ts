/**
 * The session pool: the only door to the token (DESIGN.md decision 7). Bounded size, bounded wait
 * (then HsmUnavailable), login once, and sessions that come back broken are closed, not reused.
 */
import { KmsError } from '../errors/kms-error';
import type { Logger } from '../log/logger';
import { HsmError, type Pkcs11Module, type SessionHandle, type SlotHandle } from './binding';
import { classify } from './ckr';

export interface PoolOptions {
  readonly size: number;
  readonly waitMs: number;
}

interface Waiter {
  resolve: (s: SessionHandle) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class SessionPool {
  private readonly idle: SessionHandle[] = [];
  private readonly waiters: Waiter[] = [];
  private open = 0;
  private loggedIn = false;
  private closed = false;

  constructor(
    readonly module: Pkcs11Module,
    private readonly slot: SlotHandle,
    private readonly pin: string,
    private readonly options: PoolOptions,
    private readonly log: Logger,
  ) {}

  /** Runs fn with a session held for its whole duration; the session is released in `finally`. */
  async use<T>(fn: (s: SessionHandle) => T | Promise<T>): Promise<T> {
    const session = await this.acquire();
    let broken = false;
    try {
      return await fn(session);
    } catch (e) {
      if (e instanceof HsmError) {
        const cls = classify(e.ckrName);
        broken = cls === 'session-broken' || cls === 'token-gone';
        if (e.ckrName === 'CKR_USER_NOT_LOGGED_IN') this.loggedIn = false;
      }
      throw e;
    } finally {
      this.release(session, broken);
    }
  }

  get stats(): { open: number; idle: number; waiting: number } {
    return { open: this.open, idle: this.idle.length, waiting: this.waiters.length };
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(unavailable());
    }
    for (const s of this.idle.splice(0)) this.closeQuietly(s);
  }

  private async acquire(): Promise<SessionHandle> {
    if (this.closed) throw unavailable();
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.open < this.options.size) return this.openSession();
    return new Promise<SessionHandle>((resolve, reject) => {
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

  private openSession(): SessionHandle {
    this.open++;
    try {
      const s = this.module.openSession(this.slot);
      if (!this.loggedIn) {
        try {
          this.module.login(s, this.pin);
        } catch (e) {
          // Login state is per application: another session may already have logged in.
          if (!(e instanceof HsmError && e.ckrName === 'CKR_USER_ALREADY_LOGGED_IN')) {
            this.closeQuietly(s);
            throw e;
          }
        }
        this.loggedIn = true;
      }
      return s;
    } catch (e) {
      this.open--;
      if (e instanceof HsmError) this.log.error('hsm session could not be opened', { ckr: e.ckrName, method: e.method });
      throw unavailable();
    }
  }

  private release(s: SessionHandle, broken: boolean): void {
    if (broken || this.closed) {
      this.open--;
      this.closeQuietly(s);
      const next = this.waiters.shift();
      if (next) {
        clearTimeout(next.timer);
        try {
          next.resolve(this.openSession());
        } catch (e) {
          next.reject(e instanceof Error ? e : unavailable());
        }
      }
      return;
    }
    const next = this.waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(s);
    } else {
      this.idle.push(s);
    }
  }

  private closeQuietly(s: SessionHandle): void {
    try {
      this.module.closeSession(s);
    } catch {
      // Already closed or the token is gone: nothing left to release.
    }
  }
}

function unavailable(): KmsError {
  return new KmsError('HsmUnavailable', 'The HSM is not available. Try again later.');
}
