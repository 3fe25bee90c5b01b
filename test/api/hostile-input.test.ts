/**
 * Hostile input (issue 19): contexts that are not flat maps of strings, numbers JSON can't hold,
 * deep nesting, body fields and project names that are Object.prototype's own names. Each is the
 * dialect's 400 (or works like any other name) and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../helpers/fixture';

let f: Fixture;

const raw = (token: string, project: string, action: string, body: string) =>
  f.server.request('POST', `/v1.0/${project}/kms/${action}`, { headers: { 'X-Auth-Token': token }, raw: body });
const hw = (token: string, project: string, action: string, body: unknown) =>
  f.server.request('POST', `/v1.0/${project}/kms/${action}`, { headers: { 'X-Auth-Token': token }, body });
const ncp = (token: string, method: string, p: string, body?: unknown, rawBody?: string) =>
  f.server.request(method, `/kms/v1${p}`, { headers: { 'x-ncp-ocapi-token': token }, ...(rawBody !== undefined ? { raw: rawBody } : body === undefined ? {} : { body }) });

const deep = (levels: number): string => '{"a":'.repeat(levels) + '"x"' + '}'.repeat(levels);

async function aliases(): Promise<string[]> {
  const r = await hw(f.admin, 'p1', 'list-keys', { limit: '1000' });
  assert.equal(r.status, 200, r.text);
  return r.body.key_details.map((k: { key_alias: string }) => k.key_alias).sort();
}

before(async () => {
  f = await fixture();
});
after(async () => {
  await f?.server.stop();
});

describe('Huawei encryption_context is a flat map of strings', () => {
  it('when it holds 1e999, a number, an object, an array or nesting 4 000 levels deep, then 400 KMS.0208 and nothing is made', async () => {
    const before = await aliases();
    const key = f.aes.key_id;
    for (const ctx of ['{"a":1e999}', '{"a":1}', '{"a":{"b":"c"}}', '{"a":["b"]}', '{"a":null}', deep(4000)]) {
      for (const [action, body] of [
        ['encrypt-data', `{"key_id":"${key}","plain_text":"x","encryption_context":${ctx}}`],
        ['create-datakey', `{"key_id":"${key}","datakey_length":"256","encryption_context":${ctx}}`],
        ['decrypt-datakey', `{"key_id":"${key}","cipher_text":"00","datakey_cipher_length":"32","encryption_context":${ctx}}`],
      ] as const) {
        const r = await raw(f.admin, 'p1', action, body);
        assert.equal(r.status, 400, `${action} ${ctx.slice(0, 30)}: ${r.text}`);
        assert.equal(r.body.error.error_code, 'KMS.0208', `${action} ${ctx.slice(0, 30)}`);
      }
    }
    const nested = await raw(f.admin, 'p1', 'create-key', `{"key_alias":"deep-1","key_description":${deep(4000)}}`);
    assert.equal(nested.status, 400, nested.text);
    assert.deepEqual(await aliases(), before);
    assert.ok(!/RangeError|"status":500/.test(f.server.logs()), 'no 500 and no RangeError logged');
  });

  it('when it is a flat map of strings, then it still binds the ciphertext', async () => {
    const sealed = await hw(f.admin, 'p1', 'encrypt-data', { key_id: f.aes.key_id, plain_text: 'x', encryption_context: { __proto__: 'a', constructor: 'b' } });
    assert.equal(sealed.status, 200, sealed.text);
  });
});

describe('unknown body fields named like Object.prototype members', () => {
  it('when a body carries __proto__ or constructor, then the answer is the same 400 as for any unknown field, and nothing is made', async () => {
    const before = await aliases();
    const reference = await raw(f.admin, 'p1', 'create-key', '{"key_alias":"u-0","bogus":{"x":1}}');
    assert.equal(reference.status, 400, reference.text);
    assert.equal(typeof reference.body.error.error_code, 'string');
    for (const [i, field] of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'].entries()) {
      for (const value of ['{"x":1}', '"s"', '1']) {
        const r = await raw(f.admin, 'p1', 'create-key', `{"key_alias":"u-${i}","${field}":${value}}`);
        assert.equal(r.status, 400, `${field}: ${r.text}`);
        assert.deepEqual(r.body.error.error_code, reference.body.error.error_code, `${field}: ${r.text}`);
        const n = await ncp(f.admin, 'POST', '/keys', undefined, `{"keyName":"u${i}abc","keyType":"AES256","${field}":${value}}`);
        assert.equal(n.status, 400, `NCP ${field}: ${n.text}`);
        assert.equal(n.body.code, 'INVALID_REQUEST');
      }
    }
    assert.deepEqual(await aliases(), before);
  });
});

describe('projects named like Object.prototype members', () => {
  for (const project of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    it(`when a project is named ${project}, then it works like any other in both dialects`, async () => {
      const token = f.server.token(project, true);
      f.secrets.add(token);
      const created = await hw(token, project, 'create-key', { key_alias: `k-${project}` });
      assert.equal(created.status, 200, created.text);
      const keyId = created.body.key_info.key_id as string;
      const dk = await hw(token, project, 'create-datakey', { key_id: keyId, datakey_length: '256', encryption_context: { [project]: project } });
      assert.equal(dk.status, 200, dk.text);
      f.secrets.addHex(dk.body.plain_text);
      const back = await hw(token, project, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.body.cipher_text, datakey_cipher_length: '32', encryption_context: { [project]: project } });
      assert.equal(back.status, 200, back.text);
      assert.equal(back.body.data_key, dk.body.plain_text);
      const list = await hw(token, project, 'list-keys', {});
      assert.equal(list.status, 200, list.text);
      assert.equal(Number(list.body.total), 1);
      const n = await ncp(token, 'POST', '/keys', { keyName: 'ncpKey', keyType: 'AES256' });
      assert.equal(n.status, 200, n.text);
      const sealed = await ncp(token, 'POST', `/keys/${n.body.data.keyTag}/encrypt`, { plaintext: Buffer.from('hi').toString('base64') });
      assert.equal(sealed.status, 200, sealed.text);
      const opened = await ncp(token, 'POST', `/keys/${n.body.data.keyTag}/decrypt`, { ciphertext: sealed.body.data.ciphertext });
      assert.equal(opened.status, 200, opened.text);
      assert.equal(Buffer.from(opened.body.data.plaintext, 'base64').toString(), 'hi');
      // Another project's token still can't see it.
      assert.equal((await hw(f.other, 'p2', 'describe-key', { key_id: keyId })).status, 404);
    });
  }
});
