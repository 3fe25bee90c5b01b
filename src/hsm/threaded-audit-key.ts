/**
 * The audit trail's key (audit-key.ts) on session threads: the same key (CKA_ID, template, HMAC),
 * every call a message to a thread with a deadline, so an audit MAC never waits for the token on
 * the event loop.
 */
import { timingSafeEqual } from 'node:crypto';
import { C, type Template } from './binding';
import { AUDIT_KEY_ID, AUDIT_KEY_LABEL, AUDIT_MAC_BYTES } from './audit-key';
import { isStaleHandle } from './hsm';
import { auditHmacTemplate } from './templates';
import type { WireTemplate } from './thread-protocol';
import type { SessionThreads } from './threads';

const RETRY = { retry: true } as const;
const wire = (t: Template): WireTemplate => t.map((a) => (Buffer.isBuffer(a.value) ? { type: a.type, value: new Uint8Array(a.value) } : a));
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class ThreadedAuditKey {
  private found: { generation: number; keys: Uint8Array[] } | undefined;
  private making: Promise<void> | undefined;

  /** `ready`: the first connection attempt (calls before it would only be refused). */
  constructor(
    private readonly threads: SessionThreads,
    private readonly ready: Promise<unknown>,
  ) {}

  async mac(data: Buffer): Promise<Buffer> {
    await this.ready;
    for (let made = false; ; made = true) {
      const [key] = await this.keys();
      if (key !== undefined) return this.sign(key, data);
      if (made) throw new Error('the audit key was made but the token does not show it');
      await this.make();
    }
  }

  async verify(data: Buffer, mac: Buffer): Promise<boolean> {
    await this.ready;
    const keys = await this.keys();
    if (keys.length === 0) throw new Error('the token holds no audit key');
    for (const key of keys) {
      const mine = await this.sign(key, data);
      if (mine.length === mac.length && timingSafeEqual(mine, mac)) return true;
    }
    return false;
  }

  private async sign(key: Uint8Array, data: Buffer): Promise<Buffer> {
    try {
      return buf(await this.threads.call({ op: 'sign', mechanism: { kind: 'sha256-hmac' }, key, data: new Uint8Array(data), outLength: AUDIT_MAC_BYTES }, RETRY));
    } catch (e) {
      if (isStaleHandle(e)) this.found = undefined;
      throw e;
    }
  }

  private async keys(): Promise<Uint8Array[]> {
    const generation = this.threads.generation;
    if (this.found?.generation === generation && this.found.keys.length > 0) return this.found.keys;
    const template: Template = [
      { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
      { type: C.CKA_TOKEN, value: true },
      { type: C.CKA_ID, value: AUDIT_KEY_ID },
    ];
    const keys = await this.threads.call({ op: 'find', template: wire(template), max: 16 }, RETRY);
    this.found = { generation, keys };
    return keys;
  }

  private make(): Promise<void> {
    this.making ??= (async () => {
      const template = auditHmacTemplate(AUDIT_KEY_ID, AUDIT_KEY_LABEL);
      await this.threads.call({ op: 'generateKey', mechanism: { kind: 'generic-secret-key-gen' }, template: wire(template) }, { deadlineMs: 60_000 });
      this.found = undefined;
    })().finally(() => {
      this.making = undefined;
    });
    return this.making;
  }
}
