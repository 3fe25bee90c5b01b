/**
 * Token calls of one event-loop turn, run back to back in the turn's check phase (setImmediate)
 * instead of one by one between the HTTP work of their requests.
 *
 * Why: measured under load (bench/README.md), a data key's PKCS#11 calls are cheaper when the
 * turn's calls run together than each right after its own request's parsing (SoftHSM's key set-up
 * in C_EncryptInit stays in the CPU caches). The price is one hop of the event loop per call.
 *
 * Each job keeps its own pool lease, retry and errors; only when it starts changes. For calls of
 * microseconds: an RSA private-key operation gains nothing from a warm cache and would
 * only hold up the turn.
 */
export class TurnBatch {
  private queue: Array<() => void> = [];
  private left = 0;

  /** `onEnd` runs after each flush: what a flush shares between its jobs is dropped there. */
  constructor(
    private readonly enabled: boolean,
    private readonly onEnd: () => void = () => undefined,
  ) {}

  /** Jobs of the running flush not yet finished starting, this one included; 0 outside a flush. */
  get remaining(): number {
    return this.left;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    if (!this.enabled) return job();
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(this.flush);
      this.queue.push(() => {
        try {
          job().then(resolve, reject);
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  /** A job queued while this runs (after the swap) schedules the next turn's flush. */
  private readonly flush = (): void => {
    const jobs = this.queue;
    this.queue = [];
    try {
      for (let i = 0; i < jobs.length; i++) {
        this.left = jobs.length - i;
        jobs[i]!();
      }
    } finally {
      this.left = 0;
      this.onEnd();
    }
  };
}
