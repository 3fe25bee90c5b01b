/**
 * Point reads that nearly every request repeats (its API token, its key, a key version), kept
 * between requests for as long as the database has not changed.
 *
 * Freshness is exact, not time-based: before answering from memory the cache asks SQLite for
 * `PRAGMA data_version`, which changes whenever another connection (the CLI, another worker)
 * commits, and the owning store clears it on every write of its own. So a token revoked or a key
 * disabled anywhere is seen by the very next request, as without the cache; the saving is that a
 * version check is about a third of a row read and needs no row mapping.
 */
export class ReadCache {
  private readonly entries = new Map<string, unknown>();
  private seenVersion: number | undefined;

  constructor(
    /** `PRAGMA data_version` of the owning connection. */
    private readonly dataVersion: () => number,
    /** Whether the owning connection is inside a transaction (reads there may be rolled back). */
    private readonly inTransaction: () => boolean,
    private readonly maxEntries = 10_000,
  ) {}

  /** The cached value for `key` (a miss is cached too), or `load()`'s, frozen and remembered. */
  get<T extends object>(key: string, load: () => T | undefined): T | undefined {
    if (this.inTransaction()) return load();
    const version = this.dataVersion();
    if (version !== this.seenVersion) {
      this.entries.clear();
      this.seenVersion = version;
    } else if (this.entries.has(key)) {
      return this.entries.get(key) as T | undefined;
    }
    const value = load();
    // Bounded by dropping everything: simpler than LRU, and a full cache only refills from SQLite.
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, value === undefined ? undefined : Object.freeze(value));
    return value;
  }

  /** Called by the store before each of its own writes (they do not change data_version). */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
