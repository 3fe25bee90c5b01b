/** The session pool of a runtime on the inline (softhsm2) profile; a test on session threads has none to look at. */
import type { Runtime } from '../../src/runtime';
import type { SessionPool } from '../../src/hsm';

export function inlinePool(rt: Pick<Runtime, 'pool'>): SessionPool {
  if (!rt.pool) throw new Error('this runtime has no inline session pool (a session-thread profile)');
  return rt.pool;
}
