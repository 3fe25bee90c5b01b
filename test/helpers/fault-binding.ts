/**
 * A fault-injecting proxy around the REAL module (Barbican's `pkcs11=` constructor injection): every
 * call goes to SoftHSM unless a rule says to fail it first. Two kinds of fault:
 *  - injected: the call throws `HsmError(ckr)` without reaching the token (a device error, a dropped
 *    session), once, N times, or for every call until `heal()` (an outage);
 *  - real: `closeAllSessions()` / `logout()` do to the service's module what an HSM restart or an
 *    operator does, through the real binding.
 */
import { HsmError, type Pkcs11Api, type SessionHandle } from '../../src/hsm/binding';

type Method = keyof Pkcs11Api;

interface Rule {
  readonly methods: ReadonlySet<string> | 'all';
  readonly ckrName: string;
  remaining: number;
}

const CKR: Readonly<Record<string, number>> = {
  CKR_DEVICE_ERROR: 0x30,
  CKR_DEVICE_REMOVED: 0x32,
  CKR_SESSION_HANDLE_INVALID: 0xb3,
  CKR_SESSION_CLOSED: 0xb0,
  CKR_USER_NOT_LOGGED_IN: 0x101,
  CKR_TOKEN_NOT_PRESENT: 0xe0,
};

export class FaultInjector {
  private real: Pkcs11Api | undefined;
  private rules: Rule[] = [];
  private readonly watchers = new Map<string, () => void>();
  /** Successful calls per method (what really reached the token). */
  readonly calls = new Map<string, number>();
  /** Calls per method that reached the token, whether it answered CKR_OK or an error. */
  readonly attempts = new Map<string, number>();
  /** Calls failed by a rule, per method. */
  readonly injected = new Map<string, number>();

  constructor(private readonly tokenLabel: string) {}

  /** For RuntimeOptions.wrapModule. */
  readonly wrap = (m: Pkcs11Api): Pkcs11Api => {
    this.real = m;
    return new Proxy(m, {
      get: (target, prop, receiver) => {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function' || typeof prop !== 'string') return v;
        // Bookkeeping of the binding, not a call to the token: nothing to fail there.
        if (prop === 'offThreadIdle') return (v as () => unknown).bind(target);
        return (...args: unknown[]) => {
          this.maybeFail(prop);
          this.watchers.get(prop)?.();
          this.attempts.set(prop, (this.attempts.get(prop) ?? 0) + 1);
          const out: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
          this.calls.set(prop, (this.calls.get(prop) ?? 0) + 1);
          return out;
        };
      },
    });
  };

  /** Runs `fn` just before each call of `method` reaches the token, to look at the state then. */
  watch(method: Method, fn: () => void): void {
    this.watchers.set(method, fn);
  }

  /** The next `times` calls of these methods (or any method) fail with the CKR. */
  fail(methods: Method | readonly Method[] | 'all', ckrName: string, times = 1): void {
    this.rules.push({ methods: methods === 'all' ? 'all' : new Set(typeof methods === 'string' ? [methods] : methods), ckrName, remaining: times });
  }

  /** Every call fails with the CKR until heal(): the HSM is unreachable. */
  outage(ckrName = 'CKR_DEVICE_ERROR'): void {
    this.fail('all', ckrName, Number.POSITIVE_INFINITY);
  }

  heal(): void {
    this.rules = [];
  }

  /** Real C_CloseAllSessions on the service's slot: every pooled session dies and the login with them. */
  closeAllSessions(): Promise<void> {
    return this.whenNoCallOffThread((m) => {
      const t = m.tokens().find((x) => x.label === this.tokenLabel);
      if (!t) throw new Error('token not found');
      m.closeAllSessions(t.slot);
    });
  }

  /** Real C_Logout through a session of the service's own module: the application is logged out. */
  logout(): Promise<void> {
    return this.whenNoCallOffThread((m) => {
      const t = m.tokens().find((x) => x.label === this.tokenLabel);
      if (!t) throw new Error('token not found');
      const s: SessionHandle = m.openSession(t.slot);
      try {
        m.logout(s);
      } finally {
        m.closeSession(s);
      }
    });
  }

  /**
   * Runs `action` once no call of the module runs on another thread. An HSM that drops its
   * sessions answers errors to the calls in flight; with SoftHSM in the process, closing a session
   * from this thread while another thread is inside a call on it frees what that call is using (a
   * heap corruption, seen in `npm run chaos`). The service never does that (a call off the event
   * loop keeps its session leased, and the pool re-initialises only after such calls), so neither
   * does this stand-in for the HSM. The last check and the action run in one synchronous stretch,
   * so no call can start in between.
   */
  private async whenNoCallOffThread(action: (m: Pkcs11Api) => void): Promise<void> {
    const m = this.module();
    while (m.callsOffThread > 0) await m.offThreadIdle();
    action(m);
  }

  count(method: Method): number {
    return this.calls.get(method) ?? 0;
  }

  private module(): Pkcs11Api {
    if (!this.real) throw new Error('module not loaded yet');
    return this.real;
  }

  private maybeFail(method: string): void {
    const rule = this.rules.find((r) => r.remaining > 0 && (r.methods === 'all' || r.methods.has(method)));
    if (!rule) return;
    rule.remaining--;
    this.injected.set(method, (this.injected.get(method) ?? 0) + 1);
    throw new HsmError(CKR[rule.ckrName] ?? 0x5, rule.ckrName, `C_${method}`);
  }
}
