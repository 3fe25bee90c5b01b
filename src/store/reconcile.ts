/**
 * Token ↔ store reconciliation (docs/reliability.md).
 *
 * Key creation makes token objects first and writes the row second, so a crash in between leaves
 * objects that no row names. Those are orphans: nothing can use them (every operation resolves a
 * key through its row), they are reported when first seen and destroyed once they have been seen
 * unreferenced for the grace period. The grace period covers a creation that is still running in
 * another process (the CLI, another worker), whose row is about to be written.
 *
 * The other direction is never "repaired": a row whose version has no token object means keys were
 * lost on the token (restored from an old backup, deleted by hand). It is logged as an error at
 * every pass and the row is kept, so nothing is silently dropped and an operator can restore.
 */
import type { Hsm, TokenObject, VersionRef } from '../hsm';
import type { Logger } from '../log/logger';
import type { MetadataStore } from './store';

export interface ReconcileReport {
  /** p11kms objects on the token. */
  readonly objects: number;
  /** Objects with no live row, by key id and version (each version once). */
  readonly orphans: number;
  /** Orphan versions destroyed in this pass (seen unreferenced for at least the grace period). */
  readonly destroyed: number;
  /** Live store versions without a token object. */
  readonly missing: ReadonlyArray<{ keyId: string; version: number }>;
}

export class Reconciler {
  /** Orphan version → when this process first saw it unreferenced. */
  private readonly firstSeen = new Map<string, number>();
  private running: Promise<ReconcileReport> | undefined;

  constructor(
    private readonly store: MetadataStore,
    private readonly hsm: Hsm,
    private readonly log: Logger,
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** One pass; concurrent callers share the pass in progress. */
  pass(): Promise<ReconcileReport> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<ReconcileReport> {
    // Rows first, objects second: objects are made before their row, so every row read here already
    // has its objects in the listing. (The other order reports a key created in between — by another
    // worker or the CLI — as missing its objects.)
    const live = await this.store.liveVersions();
    const objects = await this.hsm.listObjects();
    const onToken = new Set(objects.map((o) => refKey(o)));

    // A key deleted (and purged) while the token was listed is gone on purpose, not missing.
    const missing: Array<{ keyId: string; version: number }> = [];
    for (const v of live) {
      if (onToken.has(refKey(v))) continue;
      if ((await this.store.version(v.keyId, v.version)) !== undefined && (await this.store.keyById(v.keyId))?.state !== 'Deleted') missing.push(v);
    }
    for (const m of missing) {
      this.log.error('key version has no token object: ciphertexts under it cannot be decrypted', { keyId: m.keyId, version: m.version });
    }

    // A version among the rows read above is referenced (or was, a moment ago: then the next pass
    // sees it); only the others are looked up one by one. Two cached store reads per object on a
    // token of 13 000 keys held the event loop for ~0.3 s at every sweep.
    const liveKeys = new Set(live.map(refKey));
    const orphanRefs = new Map<string, TokenObject>();
    for (const o of objects) if (!liveKeys.has(refKey(o)) && !(await this.referenced(o))) orphanRefs.set(refKey(o), o);
    for (const k of this.firstSeen.keys()) if (!orphanRefs.has(k)) this.firstSeen.delete(k);

    let destroyed = 0;
    const now = this.now();
    for (const [k, o] of orphanRefs) {
      const seen = this.firstSeen.get(k);
      if (seen === undefined) {
        this.firstSeen.set(k, now);
        this.log.warn('orphan token object found (no store row); destroyed after the grace period, never used', {
          keyId: o.keyId,
          version: o.version,
          graceMs: this.graceMs,
        });
      }
      if (now - (seen ?? now) < this.graceMs) continue;
      // Check again right before destroying: a row may have been written since the listing.
      if (await this.referenced(o)) continue;
      const count = await this.hsm.destroyVersion({ keyId: o.keyId, version: o.version });
      this.firstSeen.delete(k);
      destroyed++;
      this.log.warn('orphan token objects destroyed', { keyId: o.keyId, version: o.version, objects: count });
    }
    return { objects: objects.length, orphans: orphanRefs.size, destroyed, missing };
  }

  /**
   * Destroys this process's session copies of versions no longer referenced (deleted by another
   * process; this one's deletions destroy theirs at once). Every process runs it, not only the sweeper's.
   */
  pruneCopies(): Promise<number> {
    return this.hsm.pruneCopies((ref) => this.referenced(ref));
  }

  /** Objects are in use while their key row is not Deleted and their version row exists (Creating included). */
  private async referenced(o: VersionRef): Promise<boolean> {
    const key = await this.store.keyById(o.keyId);
    if (!key || key.state === 'Deleted') return false;
    return (await this.store.version(o.keyId, o.version)) !== undefined;
  }
}

function refKey(v: { keyId: string; version: number }): string {
  return `${v.keyId}/${v.version}`;
}
