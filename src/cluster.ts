/**
 * Several server processes (KMS_WORKERS > 1). The primary forks that many workers with node:cluster;
 * each worker runs main() as a single process would: its own PKCS#11 module instance and session
 * pool, its own SQLite connection, and an HTTP server on the shared port (the primary accepts
 * connections and hands them to the workers round-robin). The primary opens no session and serves
 * nothing. It forwards SIGTERM/SIGINT to the workers and exits when they have drained; a worker
 * that dies after it started serving is replaced, one that dies before it ever listened stops the
 * whole service (a start-up failure, exactly as for one process).
 *
 * Why processes and not threads: SoftHSM holds a token-wide lock while it decrypts private object
 * values, so threads of one process scale ~1.0–1.25×, processes ~1.6–2.1× (bench/README.md); and
 * pkcs11js' synchronous calls block the event loop they run on, which is per process.
 *
 * The background sweeper (deletion windows, purges, due rotations) runs in ONE worker, slot 0, and
 * its replacement inherits the slot. Its store updates are conditional, so two sweepers would not
 * corrupt anything, but the per-key locks that keep a sweep from racing a request are per process:
 * a single sweeper keeps the cross-process races to the ones a request alone can cause, and the
 * work is not done N times.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './log/logger';

/** Set by the primary on each fork; not configuration, so not part of ConfigSchema. */
const SLOT_ENV = 'P11KMS_WORKER_SLOT';

/** This worker's slot ('0', '1', …), undefined in a single-process server (per-process audit files). */
export function workerSlot(): string | undefined {
  return cluster.isWorker ? process.env[SLOT_ENV] : undefined;
}

/** Whether this process runs the sweeper: a single-process server, or worker slot 0. */
export function runsSweeper(): boolean {
  return cluster.isPrimary || process.env[SLOT_ENV] === '0';
}

/** Whether this process is the primary of a multi-process server (it forks, it does not serve). */
export function isClusterPrimary(workers: number): boolean {
  return cluster.isPrimary && workers > 1;
}

export function runPrimary(count: number, log: Logger): void {
  const slots = new Map<Worker, number>();
  const served = new Set<Worker>();
  let stopping = false;
  let exitCode = 0;

  const fork = (slot: number) => {
    const w = cluster.fork({ [SLOT_ENV]: String(slot) });
    slots.set(w, slot);
  };

  const stop = (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log.info('stopping', { signal: reason, workers: slots.size });
    if (slots.size === 0) process.exit(exitCode);
    for (const w of slots.keys()) w.process.kill('SIGTERM');
  };

  cluster.on('listening', (w) => {
    served.add(w);
    if (served.size === count) log.info('all workers listening', { workers: count });
  });

  cluster.on('exit', (w, code, signal) => {
    const slot = slots.get(w) ?? -1;
    slots.delete(w);
    const hadServed = served.delete(w);
    if (stopping) {
      if (slots.size === 0) process.exit(exitCode);
      return;
    }
    if (!hadServed) {
      log.error('worker failed to start', { slot, code: code ?? -1, signal: signal ?? '' });
      stop('worker start-up failure', 1);
      return;
    }
    log.error('worker exited; starting a replacement', { slot, code: code ?? -1, signal: signal ?? '' });
    fork(slot);
  });

  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  for (let slot = 0; slot < count; slot++) fork(slot);
}
