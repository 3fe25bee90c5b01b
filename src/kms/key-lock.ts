/**
 * Serialises state changes of one key inside this process. Across processes, the store's
 * conditional updates decide who wins; this lock keeps one process from racing itself (two
 * rotations here would otherwise create token objects for the same version number).
 */
export class KeyLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(keyId: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tails.get(keyId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(keyId, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(keyId) === tail) this.tails.delete(keyId);
    }
  }
}
