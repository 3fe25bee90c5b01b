/**
 * What each object of the last token listing was, by handle, so that the next listing reads the
 * attributes of new objects only.
 *
 * A listing is one search and one C_GetAttributeValue per object: on a big token the reads cost
 * more than the search, and transient memory that shows as RSS steps at every reconciliation pass. PKCS#11 keeps a handle naming the
 * same object while the object exists and is visible; SoftHSM never issues a handle again once it
 * is invalid (its HandleManager counts up, and a logout or the last session closing invalidates
 * token objects' handles), so on SoftHSM a remembered handle is exact. Another module may reuse
 * the handle of a destroyed object, which would make a remembered identity wrong until the memo
 * is forgotten: so it is forgotten at least every `maxAgeMs`, and whenever the module is
 * re-initialised (`generation`). Nothing is destroyed on the strength of the memo: the reconciler
 * destroys by CKA_ID, searched afresh.
 */
import type { ObjectHandle } from './binding';

export class ListingMemo<T> {
  private generation = -1;
  private since = 0;
  /** Handle (hex) → what it was; null for an object that is not ours. */
  private byHandle = new Map<string, T | null>();

  constructor(
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The handles among `handles` not known for `generation`; forgets everything first when the generation changed or the memo is too old. */
  unknown(generation: number, handles: readonly ObjectHandle[]): ObjectHandle[] {
    const now = this.now();
    if (generation !== this.generation || now - this.since >= this.maxAgeMs) {
      this.byHandle.clear();
      this.generation = generation;
      this.since = now;
    }
    return handles.filter((h) => !this.byHandle.has(hex(h)));
  }

  /**
   * What `handles` (the whole listing, in order) are, from the memo and from `read` (what the
   * unknown ones turned out to be; one missing from it was destroyed since the search). Remembers
   * exactly the listing's objects when `remember` (false once the module was re-initialised
   * meanwhile: those handles name nothing any more).
   */
  settle(handles: readonly ObjectHandle[], read: ReadonlyMap<string, T | null>, remember: boolean): T[] {
    const next = new Map<string, T | null>();
    const out: T[] = [];
    for (const h of handles) {
      const k = hex(h);
      const v = read.has(k) ? read.get(k) : this.byHandle.get(k);
      if (v === undefined) continue;
      next.set(k, v);
      if (v !== null) out.push(v);
    }
    if (remember) this.byHandle = next;
    else this.byHandle.clear();
    return out;
  }

  /** Objects remembered now (for tests and stats). */
  get size(): number {
    return this.byHandle.size;
  }
}

export const hex = (h: ObjectHandle): string => h.toString('hex');
