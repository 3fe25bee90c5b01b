/**
 * The audit trail's key: an HMAC-SHA256 key (CKK_GENERIC_SECRET) made in the token, sensitive,
 * never extractable, never modifiable, found by a fixed CKA_ID. The audit writer MACs the head of
 * each batch of records with it (src/log/audit.ts), so that whoever can write the audit file but
 * can't use the token can't rebuild the chain.
 *
 * Made at first need by whichever process needs it first: the server through its token writer
 * (the key-generation helper: the service process writes no token object, keygen-process.ts says
 * why), the CLI in process. Two processes that both found none make two keys with the same
 * CKA_ID: MACs are made with the first one found and checked against each, so that race costs
 * nothing.
 *
 * Its CKA_ID (20 bytes) and label are never taken for a CMK version's (21 bytes, `p11kms/…`): a
 * listing leaves it out, so reconciliation never reports or destroys it.
 */
import { timingSafeEqual } from 'node:crypto';
import { C, HsmError, type ObjectHandle, type SessionHandle } from './binding';
import type { TokenWriter } from './keygen-process';
import type { SessionPool } from './pool';
import { auditHmacTemplate } from './templates';

export const AUDIT_KEY_ID = Buffer.from('p11kms-audit-hmac-v1', 'utf8');
export const AUDIT_KEY_LABEL = 'p11kms-audit/hmac-sha256';
export const AUDIT_MAC_BYTES = 32;

const HMAC = { kind: 'sha256-hmac' } as const;
/** A MAC is safe to compute twice. */
const RETRY = { retry: true } as const;

export interface AuditKeyOptions {
  /** Who makes token objects for this process (the server's helper); default: this process, on a pooled session (the CLI). */
  readonly writer?: TokenWriter | undefined;
  /** Search on the binding's worker thread (as Hsm.findsOffThread): a search of a large token takes a while. */
  readonly findOffThread?: boolean;
}

export class AuditKey {
  /** The keys found under the current module initialisation (handles mean nothing under another). */
  private found: { generation: number; keys: ObjectHandle[] } | undefined;
  private making: Promise<void> | undefined;

  constructor(
    private readonly pool: SessionPool,
    private readonly options: AuditKeyOptions = {},
  ) {}

  /**
   * HMAC-SHA256 of `data`, made by the token; makes the key first when the token has none. Called
   * inline, as every call of this in-process pool is: on libuv's pool the C_Sign queued behind the
   * audit writer's own fdatasync, so each batch's MAC waited for the previous batch's sync.
   */
  async mac(data: Buffer): Promise<Buffer> {
    for (let made = false; ; made = true) {
      const out = await this.pool.use(async (s) => {
        const [key] = await this.keys(s);
        return key === undefined ? undefined : this.sign(s, key, data);
      }, RETRY);
      if (out) return out;
      if (made) throw new Error('the audit key was made but the token does not show it');
      await this.make();
    }
  }

  /** Whether `mac` is the MAC of `data` under an audit key of the token; throws when the token has none. */
  verify(data: Buffer, mac: Buffer): Promise<boolean> {
    return this.pool.use(async (s) => {
      const keys = await this.keys(s);
      if (keys.length === 0) throw new Error('the token holds no audit key');
      for (const key of keys) {
        const mine = this.sign(s, key, data);
        if (mine.length === mac.length && timingSafeEqual(mine, mac)) return true;
      }
      return false;
    }, RETRY);
  }

  private sign(s: SessionHandle, key: ObjectHandle, data: Buffer): Buffer {
    try {
      return this.pool.module.sign(s, HMAC, key, data, AUDIT_MAC_BYTES);
    } catch (e) {
      // Destroyed under us (or the handle went stale): search again next time.
      if (e instanceof HsmError && (e.ckrName === 'CKR_KEY_HANDLE_INVALID' || e.ckrName === 'CKR_OBJECT_HANDLE_INVALID')) this.found = undefined;
      throw e;
    }
  }

  private async keys(s: SessionHandle): Promise<ObjectHandle[]> {
    const generation = this.pool.generation;
    if (this.found?.generation === generation && this.found.keys.length > 0) return this.found.keys;
    const template = [
      { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
      { type: C.CKA_TOKEN, value: true },
      { type: C.CKA_ID, value: AUDIT_KEY_ID },
    ];
    const m = this.pool.module;
    const keys = this.options.findOffThread ? await m.findObjectsOffThread(s, template) : m.findObjects(s, template);
    this.found = { generation, keys };
    return keys;
  }

  /** Makes the key (single-flight within this process). */
  private make(): Promise<void> {
    this.making ??= (async () => {
      const template = auditHmacTemplate(AUDIT_KEY_ID, AUDIT_KEY_LABEL);
      const writer = this.options.writer;
      if (writer) await writer.secret(template);
      else await this.pool.use((s) => void this.pool.module.generateKey(s, { kind: 'generic-secret-key-gen' }, template));
      this.found = undefined;
    })().finally(() => {
      this.making = undefined;
    });
    return this.making;
  }
}
