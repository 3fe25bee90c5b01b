/** A thin Huawei client over a test fixture: one call per route shape, and the assertions every Huawei test repeats. */
import assert from 'node:assert/strict';
import type { Fixture } from '../../helpers/fixture';
import type { Reply } from '../../helpers/server';

export class Huawei {
  constructor(
    private readonly f: Fixture,
    readonly project = 'p1',
  ) {}

  call(method: string, path: string, body?: unknown, token: string = this.f.admin, project = this.project): Promise<Reply> {
    return this.f.server.request(method, `/v1.0/${project}/kms${path}`, {
      headers: { 'X-Auth-Token': token },
      ...(body === undefined ? {} : { body }),
    });
  }

  /** POST /kms/{action}, with the admin token unless another is given. */
  post(action: string, body?: unknown, token?: string): Promise<Reply> {
    return this.call('POST', `/${action}`, body, token);
  }

  /** POST /kms/{action} and assert 200. */
  async ok(action: string, body?: unknown, token?: string): Promise<Reply['body']> {
    const r = await this.post(action, body, token);
    assert.equal(r.status, 200, `${action}: ${r.text}`);
    return r.body;
  }

  async describe(keyId: string): Promise<Record<string, unknown>> {
    return (await this.ok('describe-key', { key_id: keyId })).key_info;
  }

  /** Creates a key through the API with an admin token and returns its id. */
  async create(alias: string, extra: Record<string, unknown> = {}): Promise<string> {
    return (await this.ok('create-key', { key_alias: alias, ...extra })).key_info.key_id;
  }

  /** encrypt-data, asserted to succeed; the plaintext is recorded as a secret. */
  async encrypt(keyId: string, plainText: string, extra: Record<string, unknown> = {}): Promise<string> {
    this.f.secrets.add(plainText.length >= 8 ? plainText : undefined);
    return (await this.ok('encrypt-data', { key_id: keyId, plain_text: plainText, ...extra }, this.f.user)).cipher_text;
  }

  /** decrypt-data, asserted to succeed; returns the plain_text. */
  async decrypt(cipherText: string, extra: Record<string, unknown> = {}): Promise<string> {
    return (await this.ok('decrypt-data', { cipher_text: cipherText, ...extra }, this.f.user)).plain_text;
  }
}

/** A vendor error: status, `error.error_code`, a message, and nothing else in the body. */
export function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `${code} expected, got ${r.text}`);
  assert.equal(r.body?.error?.error_code, code, r.text);
  assert.equal(typeof r.body.error.error_msg, 'string');
  assert.deepEqual(Object.keys(r.body), ['error']);
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
