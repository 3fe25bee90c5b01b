/** A clock that moves only when the test says so (for code that takes a StockClock-like clock). */
export class ManualClock {
  private t = 0;
  private readonly timers = new Set<{ readonly ms: number; next: number; readonly fn: () => void }>();

  now(): number {
    return this.t;
  }

  every(ms: number, fn: () => void): () => void {
    const timer = { ms, next: this.t + ms, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Moves time on by `ms`, running every tick that falls due on the way, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: { ms: number; next: number; fn: () => void } | undefined;
      for (const timer of this.timers) if (timer.next <= end && (!due || timer.next < due.next)) due = timer;
      if (!due) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = end;
  }
}
