/**
 * Runs Keys.sweep() at start and then on an interval. Everything it acts on is read from the
 * store, so a restart loses nothing: a deletion window that ended while the service was down is
 * processed on the first pass.
 */
import type { Logger } from '../log/logger';
import { KmsError } from '../errors/kms-error';
import type { Keys } from './keys';

/** `stop()` clears the timer and resolves when a pass that is running has finished. */
export function startSweeper(keys: Keys, intervalMs: number, log: Logger): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const pass = () => {
    if (running) return; // a slow pass is never overlapped by the next one
    running = keys
      .sweep()
      .then(({ deleted, rotated, orphansDestroyed }) => {
        if (deleted || rotated || orphansDestroyed) log.info('sweep', { deleted, rotated, orphansDestroyed: orphansDestroyed ?? 0 });
      })
      .catch((e: unknown) => log.error('sweep failed', { error: e instanceof KmsError ? e.code : e instanceof Error ? e.name : 'unknown' }))
      .finally(() => {
        running = undefined;
      });
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
