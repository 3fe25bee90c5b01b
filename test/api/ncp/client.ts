/** A thin NCP client over a test fixture: one call per route shape, and the assertions every NCP test repeats. */
import assert from 'node:assert/strict';
import type { Fixture } from '../../helpers/fixture';
import type { Reply } from '../../helpers/server';

export const b64 = (s: string | Buffer): string => (typeof s === 'string' ? Buffer.from(s) : s).toString('base64');

export class Ncp {
  constructor(private readonly f: Fixture) {}

  call(method: string, path: string, body?: unknown, token: string = this.f.admin): Promise<Reply> {
    return this.f.server.request(method, `/kms/v1${path}`, {
      headers: { 'x-ncp-ocapi-token': token },
      ...(body === undefined ? {} : { body }),
    });
  }

  post(path: string, body?: unknown, token?: string): Promise<Reply> {
    return this.call('POST', path, body, token);
  }

  /** POST /keys/{tag}/{action}. */
  action(tag: string, action: string, body?: unknown, token?: string): Promise<Reply> {
    return this.post(`/keys/${tag}/${action}`, body, token);
  }

  /** Key info, asserted to succeed. */
  async info(tag: string): Promise<Record<string, unknown>> {
    const r = await this.call('GET', `/keys/${tag}`);
    assert.equal(r.status, 200, r.text);
    return r.body.data;
  }

  async versions(tag: string): Promise<Record<string, unknown>> {
    const r = await this.call('GET', `/keys/${tag}/versions`);
    assert.equal(r.status, 200, r.text);
    return r.body.data;
  }

  /** Creates a key through the API with an admin token and returns its info. */
  async create(body: Record<string, unknown>): Promise<{ keyTag: string } & Record<string, unknown>> {
    const r = await this.post('/keys', body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.code, 'SUCCESS');
    return r.body.data;
  }

  /** Encrypts and asserts success; the plaintext is recorded as a secret. */
  async encrypt(tag: string, plaintext: Buffer | Buffer[], context?: string): Promise<string | string[]> {
    for (const p of Array.isArray(plaintext) ? plaintext : [plaintext]) this.f.secrets.add(p);
    const data = Array.isArray(plaintext) ? plaintext.map((p) => b64(p)) : b64(plaintext);
    const r = await this.action(tag, 'encrypt', { plaintext: data, ...(context === undefined ? {} : { context }) }, this.f.user);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body.data), ['ciphertext']);
    return r.body.data.ciphertext;
  }

  async decrypt(tag: string, ciphertext: string | string[], context?: string): Promise<string | string[]> {
    const r = await this.action(tag, 'decrypt', { ciphertext, ...(context === undefined ? {} : { context }) }, this.f.user);
    assert.equal(r.status, 200, r.text);
    return r.body.data.plaintext;
  }
}

/** An error reply in NCP's shape: the status, the vendor code, a message, and no data. */
export function assertRefused(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.code, code, r.text);
  assert.equal(typeof r.body.msg, 'string');
  assert.equal(r.body.data, undefined);
}

export const badRequest = (r: Reply) => assertRefused(r, 400, 'INVALID_REQUEST');
export const forbidden = (r: Reply) => assertRefused(r, 403, 'FORBIDDEN');
export const notFound = (r: Reply) => assertRefused(r, 404, 'NOT_FOUND');
export const wrongState = (r: Reply) => assertRefused(r, 422, 'UNPROCESSABLE_ENTITY');

/** The version named by a ciphertext's or signature's `ncpkms:v{N}:` prefix. */
export function versionOf(text: string): number {
  const m = /^ncpkms:v(\d+):/.exec(text);
  assert.ok(m, `not an NCP ciphertext: ${text.slice(0, 20)}`);
  return Number(m[1]);
}
