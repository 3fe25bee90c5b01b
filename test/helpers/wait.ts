/**
 * Waiting for a condition in a test. The limit is a guard against a hang, not a deadline the code
 * is expected to meet: on a shared, loaded machine, what takes 50 ms alone can take many seconds,
 * so a test waits for the condition itself, never for a fixed time.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export const PATIENCE_MS = 120_000;

/** Polls `ok` every `everyMs` until it holds; fails naming `what` after `limitMs`. Resolves with the time waited. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, opts: { everyMs?: number; limitMs?: number } = {}): Promise<number> {
  const start = Date.now();
  const limit = opts.limitMs ?? PATIENCE_MS;
  while (!(await ok())) {
    if (Date.now() - start > limit) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await sleep(opts.everyMs ?? 25);
  }
  return Date.now() - start;
}
