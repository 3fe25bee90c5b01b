/**
 * Times every call of the inline profile (softhsm2) at the one place they all pass: the module object
 * the pool opens (the same seam a test's fault-injecting proxy uses), synchronous and off-thread calls
 * alike. Failures are counted by CKR name. The session threads of the other profiles load the module
 * themselves; their calls are timed by the threads (the façade's observeCall).
 */
import type { Pkcs11Api } from '../hsm';
import type { ServiceMetrics } from './service-metrics';

/** Methods of the module object that are bookkeeping, not calls into the token. */
const NOT_CALLS = new Set<string | symbol>(['offThreadIdle', 'constructor']);

/** The CKR name a failed call carries (the binding's HsmError.ckrName), read without reaching past the hsm façade. */
function ckrOf(e: unknown): string {
  const name = typeof e === 'object' && e !== null ? (e as { ckrName?: unknown }).ckrName : undefined;
  return typeof name === 'string' && /^CKR_[A-Z0-9_]+$/.test(name) ? name : 'UNKNOWN';
}

export function timedModule(metrics: ServiceMetrics): (m: Pkcs11Api) => Pkcs11Api {
  return (m) =>
    new Proxy(m, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function' || typeof prop !== 'string' || NOT_CALLS.has(prop)) return value;
        const fn = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]): unknown => {
          const start = process.hrtime.bigint();
          const seconds = (): number => Number(process.hrtime.bigint() - start) / 1e9;
          let result: unknown;
          try {
            result = fn.apply(target, args);
          } catch (e) {
            metrics.tokenCall(prop, seconds(), ckrOf(e));
            throw e;
          }
          if (result instanceof Promise) {
            return result.then(
              (r: unknown) => {
                metrics.tokenCall(prop, seconds());
                return r;
              },
              (e: unknown) => {
                metrics.tokenCall(prop, seconds(), ckrOf(e));
                throw e;
              },
            );
          }
          metrics.tokenCall(prop, seconds());
          return result;
        };
      },
    });
}
