/**
 * At most `limit` holders at once; the others wait in arrival order.
 *
 * Why for RSA private-key operations (hsm.ts): they run on libuv's thread pool, 4 threads unless
 * UV_THREADPOOL_SIZE says otherwise, which the audit trail's fdatasync needs too; and each holds a
 * pooled session while it runs. Two at a time keep a thread and a session free for everything else,
 * and already use both cores of a 2-core machine.
 */
export class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer can't overtake it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
