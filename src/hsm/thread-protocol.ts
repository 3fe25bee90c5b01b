/** The messages between threads.ts (the event loop) and its session threads (binding-thread.ts). */
import type { Mechanism } from './binding';

export interface ThreadOptions {
  readonly modulePath: string;
  /** C_Initialize's library parameters (NSS softokn's configdir and prefixes). */
  readonly libraryParameters?: string;
}

export type WireTemplate = ReadonlyArray<{ readonly type: number; readonly value?: number | boolean | string | Uint8Array }>;
type H = Uint8Array;
/** A one-shot encrypt, decrypt or sign: the init and the call. */
interface OneShot {
  readonly mechanism: Mechanism;
  readonly key: H;
  readonly data: H;
  readonly outLength: number;
}

/** One request of a call, without its id. */
export type ThreadCall =
  | { readonly op: 'open'; readonly initialize: 'yes' | 'no'; readonly label: string; readonly pin: string }
  | { readonly op: 'reinitialize'; readonly label: string; readonly pin: string }
  | { readonly op: 'random'; readonly length: number }
  | { readonly op: 'find'; readonly template: WireTemplate; readonly max: number }
  | { readonly op: 'read'; readonly handles: readonly H[]; readonly types: readonly number[] }
  | ({ readonly op: 'encrypt' } & OneShot)
  | ({ readonly op: 'decrypt' } & OneShot)
  | ({ readonly op: 'sign' } & OneShot)
  | { readonly op: 'verify'; readonly mechanism: Mechanism; readonly key: H; readonly data: H; readonly signature: H }
  | { readonly op: 'sealRandom'; readonly key: H; readonly length: number; readonly iv: H; readonly aad: H }
  | { readonly op: 'generateKey'; readonly mechanism: Mechanism; readonly template: WireTemplate }
  | { readonly op: 'generateKeyPair'; readonly mechanism: Mechanism; readonly publicTemplate: WireTemplate; readonly privateTemplate: WireTemplate }
  | { readonly op: 'destroy'; readonly handle: H }
  | { readonly op: 'retire' };
export type ThreadRequest = ThreadCall & { readonly id: number };
export type CallOf<O extends ThreadCall['op']> = Extract<ThreadCall, { op: O }>;

/** What each request answers on success. */
export interface ThreadValues {
  open: { labels: string[] } | true;
  reinitialize: { labels: string[] } | true;
  random: H;
  find: H[];
  /** Per handle, its attribute values in order, or why there are none. */
  read: Array<H[] | 'gone' | 'unreadable'>;
  encrypt: H;
  decrypt: H;
  sign: H;
  verify: boolean;
  sealRandom: { plaintext: H; sealed: H };
  generateKey: H;
  generateKeyPair: { publicKey: H; privateKey: H };
  destroy: true;
  retire: true;
}

export type ThreadReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly ckr: number; readonly ckrName: string; readonly method: string; readonly detail?: string } };
