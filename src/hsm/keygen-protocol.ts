/**
 * What the service and its key-generation process (keygen-process.ts, keygen-main.ts) say to each
 * other over the IPC channel (structured clone: Buffers arrive as Uint8Arrays).
 */
import type { Template } from './binding';

export interface KeygenOpen {
  readonly kind: 'open';
  readonly modulePath: string;
  readonly label: string;
  /** Sent over the channel, never in argv or the environment, which other tools can read. */
  readonly pin: string;
}

/**
 * Make one CMK version's objects (AES keys: the CMK, maybe its SIV key; or an RSA key pair), or
 * destroy every token object with one of these CKA_IDs (`expected` of them, as the service sees it).
 */
export type KeygenJob =
  | { readonly kind: 'aes'; readonly templates: readonly Template[] }
  | { readonly kind: 'rsa'; readonly publicTemplate: Template; readonly privateTemplate: Template }
  /** A generic secret key (the audit trail's HMAC key, audit-key.ts). */
  | { readonly kind: 'secret'; readonly template: Template }
  | { readonly kind: 'destroy'; readonly ids: readonly Buffer[]; readonly expected: number };

export type KeygenRequest = KeygenOpen | (KeygenJob & { readonly id: number });

export type KeygenReply =
  /** Sent once, after the module is loaded and logged in (or failed to: the first job says why). */
  | { readonly ready: true }
  /** `count`: objects destroyed (destroy jobs). */
  | { readonly id: number; readonly ok: true; readonly count: number }
  | { readonly id: number; readonly ok: false; readonly ckr: number; readonly ckrName: string; readonly method: string };

/** Uint8Arrays back to Buffers (pkcs11js wants Buffers), in arrays and plain objects. */
export function revive<T>(v: T): T {
  return reviveAny(v) as T;
}

function reviveAny(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(reviveAny);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = reviveAny(x);
    return out;
  }
  return v;
}
