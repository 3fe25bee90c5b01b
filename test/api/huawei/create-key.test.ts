import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';

let f: Fixture;
before(async () => {
  f = await fixture();
});
after(async () => {
  await f?.server.stop();
});

const createKey = (body: unknown, token = f.admin, project = 'p1') =>
  f.server.request('POST', `/v1.0/${project}/kms/create-key`, { headers: { 'X-Auth-Token': token }, body });

function assertError(r: { status: number; body: { error?: { error_code?: string; error_msg?: string } } }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error?.error_code, code);
  assert.equal(typeof r.body.error?.error_msg, 'string');
}

describe('Huawei create-key', () => {
  it('when only key_alias is given, then an AES_256 key is made and its id and domain come back', async () => {
    const r = await createKey({ key_alias: 'first' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.key_info.key_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(r.body.key_info.domain_id, 'p1');
    const dk = await f.server.request('POST', '/v1.0/p1/kms/create-datakey-without-plaintext', {
      headers: { 'X-Auth-Token': f.user },
      body: { key_id: r.body.key_info.key_id, datakey_length: '256' },
    });
    assert.equal(dk.status, 200);
  });

  it('when key_spec is RSA_2048 and a description is given, then the key is made', async () => {
    const r = await createKey({ key_alias: 'rsa/app', key_spec: 'RSA_2048', key_description: 'for tests', sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
    assert.equal(r.status, 200, r.text);
  });

  it('when the alias is taken in the project, then KMS.1104; another project may use it', async () => {
    assert.equal((await createKey({ key_alias: 'dup' })).status, 200);
    assertError(await createKey({ key_alias: 'dup' }), 400, 'KMS.1104');
    assert.equal((await createKey({ key_alias: 'dup' }, f.other, 'p2')).status, 200);
  });

  it('when a field is wrong, then the vendor code for it, and nothing is stored', async () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'KMS.0204'],
      [{ key_alias: '' }, 'KMS.1101'],
      [{ key_alias: 'has space' }, 'KMS.1101'],
      [{ key_alias: 'a'.repeat(256) }, 'KMS.1101'],
      [{ key_alias: 'x/default' }, 'KMS.1101'],
      [{ key_alias: 42 }, 'KMS.1101'],
      [{ key_alias: 'later', key_spec: 'RSA_4096' }, 'KMS.0308'],
      [{ key_alias: 'later', key_spec: 7 }, 'KMS.0308'],
      [{ key_alias: 'later', key_usage: 'WRAP' }, 'KMS.0308'],
      [{ key_alias: 'later', key_usage: 'SIGN_VERIFY' }, 'KMS.0308'],
      [{ key_alias: 'later', key_description: 'd'.repeat(256) }, 'KMS.1103'],
      [{ key_alias: 'later', key_description: 5 }, 'KMS.1103'],
      [{ key_alias: 'later', origin: 'external' }, 'KMS.0308'],
      [{ key_alias: 'later', sequence: 'x'.repeat(37) }, 'KMS.0206'],
      [{ key_alias: 'later', colour: 'red' }, 'KMS.0308'],
      [[], 'KMS.0308'],
    ];
    for (const [body, code] of cases) assertError(await createKey(body), 400, code);
    // Had any refused request stored its alias, this would be KMS.1104.
    assert.equal((await createKey({ key_alias: 'later' })).status, 200);
  });

  it('when the body is not JSON or too large, then KMS.0202 or 413 KMS.0203', async () => {
    const r = await f.server.request('POST', '/v1.0/p1/kms/create-key', { headers: { 'X-Auth-Token': f.admin }, raw: '{"key_alias":' });
    assertError(r, 400, 'KMS.0202');
    assertError(await createKey({ key_alias: 'big', key_description: 'd'.repeat(65 * 1024) }), 413, 'KMS.0203');
  });

  it('when the token has no admin scope, then 403 KMS.0306', async () => {
    assertError(await createKey({ key_alias: 'by-user' }, f.user), 403, 'KMS.0306');
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
