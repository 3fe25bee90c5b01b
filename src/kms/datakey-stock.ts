/**
 * Data keys sealed ahead of demand, for the (key version, length, context) combinations asked for
 * many times a second: a create-datakey under load takes a ready one instead of calling the token
 * on the event loop. The token still draws and seals every one of them, in batches on the
 * binding's seal thread (Hsm.gcmEncryptRandomMany); only when that happens moves.
 *
 * Why: SoftHSM's C_EncryptInit + C_Encrypt of a data key cost ~13 µs of the event loop under HTTP
 * load, which is the whole gap between create-datakey and a route without token work (README,
 * Benchmarks). A thread that seals each request's key and answers it costs the loop about as much
 * in hand-offs and waits as it saves (branch `aes-thread-2`); a shelf refilled in batches costs it
 * a map lookup. The thread's CPU has to come from somewhere, so this pays only with a core to
 * spare: on by default for fewer processes than CPUs (config: KMS_DATAKEY_STOCK).
 *
 * Bounds: a shelf is refilled only while its combination is asked for at least `hotPerWindow`
 * times in two windows, holds at most `size` keys, and is wiped (plaintexts zeroed) after a whole
 * window without a request; keys sealed more than a window before a window's end are wiped then
 * too; at most MAX_SHELVES shelves. So a plaintext waits at most two windows in memory, and a
 * combination that goes quiet wastes at most `size` seals. Whether the key may
 * be used is decided per request before a shelf is looked at (Crypto.sealRandom), and a shelf
 * belongs to one key version, so a disabled, deleted or rotated key never gets an old one.
 */
import type { Hsm, VersionRef } from '../hsm';
import { randomIv } from './envelope/iv';

export interface StockedKey {
  readonly plaintext: Buffer;
  readonly iv: Buffer;
  readonly sealed: Buffer;
}

/** Where the stock's windows come from: the wall clock, or a test's own (which ends windows when it says so). */
export interface StockClock {
  now(): number;
  /** Calls `fn` every `ms`; returns what stops it. */
  every(ms: number, fn: () => void): () => void;
}

export const wallClock: StockClock = {
  now: () => Date.now(),
  every: (ms, fn) => {
    const t = setInterval(fn, ms).unref();
    return () => clearInterval(t);
  },
};

export interface StockOptions {
  /** Most keys on a shelf; refilled when half are taken. */
  readonly size: number;
  readonly windowMs?: number;
  readonly hotPerWindow?: number;
  readonly clock?: StockClock;
}

export interface StockStats {
  readonly shelves: number;
  readonly ready: number;
  /** Keys handed out from a shelf, and requests that found none, since start. */
  readonly taken: number;
  readonly missed: number;
  /** Keys sealed ahead, and of those wiped unused. */
  readonly sealed: number;
  readonly wiped: number;
}

interface Stocked extends StockedKey {
  readonly madeAt: number;
}

interface Shelf {
  readonly id: string;
  readonly ref: VersionRef;
  readonly length: number;
  readonly aad: Buffer;
  /** Oldest first; taken from the end. */
  keys: Stocked[];
  refilling: boolean;
  asked: number;
  askedBefore: number;
}

const MAX_SHELVES = 64;
/** Longest AAD (envelope header + context) worth a shelf: long contexts are rarely repeated. */
const MAX_AAD = 512;

export class DataKeyStock {
  private readonly shelves = new Map<string, Shelf>();
  /** Stops the window ticks; set while there are shelves. */
  private stopTicks: (() => void) | undefined;
  private readonly windowMs: number;
  private readonly clock: StockClock;
  private readonly hotPerWindow: number;
  private counts = { taken: 0, missed: 0, sealed: 0, wiped: 0 };

  constructor(
    private readonly hsm: Hsm,
    private readonly options: StockOptions,
  ) {
    this.windowMs = options.windowMs ?? 1000;
    this.hotPerWindow = options.hotPerWindow ?? 64;
    this.clock = options.clock ?? wallClock;
  }

  /** A ready data key for this combination, or undefined (the caller seals one itself). Counts the request. */
  take(ref: VersionRef, length: number, aad: Buffer): StockedKey | undefined {
    if (aad.length > MAX_AAD) return undefined;
    const id = `${ref.keyId}/${ref.version}/${length}/${aad.toString('base64')}`;
    let shelf = this.shelves.get(id);
    if (!shelf) {
      if (this.shelves.size >= MAX_SHELVES) return undefined;
      shelf = { id, ref: { keyId: ref.keyId, version: ref.version }, length, aad: Buffer.from(aad), keys: [], refilling: false, asked: 0, askedBefore: 0 };
      this.shelves.set(id, shelf);
      this.stopTicks ??= this.clock.every(this.windowMs, this.tick);
    }
    shelf.asked++;
    const key = shelf.keys.pop();
    if (key) this.counts.taken++;
    else this.counts.missed++;
    if (!shelf.refilling && shelf.keys.length <= this.options.size / 2 && shelf.asked + shelf.askedBefore >= this.hotPerWindow) this.refill(shelf);
    return key;
  }

  stats(): StockStats {
    let ready = 0;
    for (const s of this.shelves.values()) ready += s.keys.length;
    return { shelves: this.shelves.size, ready, ...this.counts };
  }

  /** Wipes every shelf (shutdown). */
  clear(): void {
    for (const s of this.shelves.values()) this.wipe(s);
    this.shelves.clear();
    this.stopTicks?.();
    this.stopTicks = undefined;
  }

  private refill(shelf: Shelf): void {
    shelf.refilling = true;
    const ivs = Array.from({ length: this.options.size - shelf.keys.length }, () => randomIv());
    this.hsm.gcmEncryptRandomMany(shelf.ref, shelf.length, ivs, shelf.aad).then(
      (made) => {
        shelf.refilling = false;
        this.counts.sealed += made.length;
        const madeAt = this.clock.now();
        const keys = made.map((m, i): Stocked => ({ plaintext: m.plaintext, iv: ivs[i]!, sealed: m.sealed, madeAt }));
        if (this.shelves.get(shelf.id) === shelf) shelf.keys.push(...keys);
        else {
          // Wiped while the token sealed them: nobody is asking any more.
          for (const k of keys) k.plaintext.fill(0);
          this.counts.wiped += keys.length;
        }
      },
      () => {
        // The pool has logged the fault and retried; requests seal their own until the next refill works.
        shelf.refilling = false;
      },
    );
  }

  private readonly tick = (): void => {
    const old = this.clock.now() - this.windowMs;
    for (const [id, s] of this.shelves) {
      if (s.asked === 0) {
        this.wipe(s);
        this.shelves.delete(id);
        continue;
      }
      s.askedBefore = s.asked;
      s.asked = 0;
      // Still asked for, but too slowly to empty the shelf: keys sealed more than a window ago go.
      let stale = 0;
      while (stale < s.keys.length && s.keys[stale]!.madeAt <= old) stale++;
      if (stale > 0) this.wipe(s, stale);
    }
    if (this.shelves.size === 0) {
      this.stopTicks?.();
      this.stopTicks = undefined;
    }
  };

  /** Zeroes and drops the `count` oldest keys of the shelf (all by default). */
  private wipe(s: Shelf, count = s.keys.length): void {
    for (const k of s.keys.splice(0, count)) k.plaintext.fill(0);
    this.counts.wiped += count;
  }
}
