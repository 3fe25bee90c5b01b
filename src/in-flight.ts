/**
 * Work still running (promises), and a way to wait until none is.
 *
 * Route handlers (`inFlight` below), whether or not their client is still connected. Why: on SIGTERM the HTTP server's close() completes once every connection is closed, and a
 * client that gave up has closed its own while its handler still runs (a key creation waiting for
 * the key-generation helper, an audit record being written). Closing the token and the store under
 * such a handler failed it half-way and could leave an orphan token object; main.ts waits for this
 * count to reach zero (at most the shutdown grace) before it closes them.
 *
 * Also the PKCS#11 calls running on another thread (Pkcs11Module: RSA on libuv's thread pool,
 * searches and seals ahead on the binding's worker threads): the module is not finalized or re-initialised under
 * them.
 */
export class InFlight {
  private count = 0;
  private waiters: Array<() => void> = [];

  track(work: Promise<unknown>): void {
    this.count++;
    const done = (): void => {
      this.count--;
      if (this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
    work.then(done, done);
  }

  get size(): number {
    return this.count;
  }

  /** Resolves when nothing tracked is at work (at once when nothing is). */
  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** The process's handlers: one HTTP server per process (workers are processes). */
export const inFlight = new InFlight();
