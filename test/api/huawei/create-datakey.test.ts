import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';

let f: Fixture;
before(async () => {
  // Data keys sealed ahead, whatever the machine's CPU count ('auto' is off on one CPU).
  f = await fixture({ KMS_DATAKEY_STOCK: '32' });
});
after(async () => {
  await f?.server.stop();
});

const post = (action: string, body: unknown) =>
  f.server.request('POST', `/v1.0/p1/kms/${action}`, { headers: { 'X-Auth-Token': f.user }, body });

function assertError(r: { status: number; body: { error?: { error_code?: string }; plain_text?: unknown } }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error?.error_code, code);
  assert.equal(r.body.plain_text, undefined);
}

describe('Huawei create-datakey and create-datakey-without-plaintext', () => {
  it('when datakey_length is 512, then 128 upper-case hex characters of plaintext and a hex ciphertext no longer than the vendor\'s', async () => {
    const r = await post('create-datakey', { key_id: f.aes.key_id, datakey_length: '512' });
    assert.equal(r.status, 200, r.text);
    f.secrets.addHex(r.body.plain_text);
    assert.deepEqual(Object.keys(r.body).sort(), ['cipher_text', 'key_id', 'plain_text']);
    assert.equal(r.body.key_id, f.aes.key_id);
    assert.match(r.body.plain_text, /^[0-9A-F]{128}$/);
    assert.match(r.body.cipher_text, /^[0-9A-F]+$/);
    assert.ok(r.body.cipher_text.length <= 376, `cipher_text has ${r.body.cipher_text.length} hex characters`);
  });

  it('when lengths from 8 to 8192 bits or a key_spec are asked for, then the data key has that many bytes', async () => {
    const cases: Array<[Record<string, string>, number]> = [
      [{ datakey_length: '8' }, 1],
      [{ datakey_length: '128' }, 16],
      [{ datakey_length: '8192' }, 1024],
      [{ key_spec: 'AES_128' }, 16],
      [{ key_spec: 'AES_256' }, 32],
      [{ key_spec: 'AES_128', datakey_length: '512' }, 64],
    ];
    for (const [extra, bytes] of cases) {
      const r = await post('create-datakey', { key_id: f.aes.key_id, ...extra });
      assert.equal(r.status, 200, r.text);
      f.secrets.addHex(r.body.plain_text);
      assert.equal(r.body.plain_text.length, bytes * 2);
    }
  });

  it('when the CMK is RSA_2048, then data keys up to 1520 bits are made and longer ones refused with KMS.1904', async () => {
    const r = await post('create-datakey', { key_id: f.rsa.key_id, datakey_length: '1520' });
    assert.equal(r.status, 200, r.text);
    f.secrets.addHex(r.body.plain_text);
    assertError(await post('create-datakey', { key_id: f.rsa.key_id, datakey_length: '1528' }), 400, 'KMS.1904');
  });

  it('when the key is given by alias/<name>, then it is found', async () => {
    const r = await post('create-datakey-without-plaintext', { key_id: 'alias/aes-1', datakey_length: '256' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.key_id, f.aes.key_id);
  });

  it('when without-plaintext is asked, then only key_id and cipher_text come back', async () => {
    const r = await post('create-datakey-without-plaintext', { key_id: f.aes.key_id, datakey_length: '512', encryption_context: { a: 'b' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['cipher_text', 'key_id']);
  });

  it('when a field is wrong, then the vendor code for that field', async () => {
    const id = f.aes.key_id;
    const cases: Array<[unknown, string]> = [
      [{ datakey_length: '512' }, 'KMS.0204'],
      [{ key_id: id }, 'KMS.0204'],
      [{ key_id: 123, datakey_length: '512' }, 'KMS.0205'],
      [{ key_id: 'not-a-key', datakey_length: '512' }, 'KMS.0205'],
      [{ key_id: id.toUpperCase(), datakey_length: '512' }, 'KMS.0205'],
      [{ key_id: id, datakey_length: 512 }, 'KMS.1901'],
      [{ key_id: id, datakey_length: 'abc' }, 'KMS.1901'],
      [{ key_id: id, datakey_length: '0' }, 'KMS.1901'],
      [{ key_id: id, datakey_length: '8200' }, 'KMS.1901'],
      [{ key_id: id, datakey_length: '123456' }, 'KMS.1901'],
      [{ key_id: id, datakey_length: '12' }, 'KMS.1903'],
      [{ key_id: id, key_spec: 'AES_512' }, 'KMS.1902'],
      [{ key_id: id, datakey_length: '512', encryption_context: 'a=b' }, 'KMS.0208'],
      [{ key_id: id, datakey_length: '512', encryption_context: ['a'] }, 'KMS.0208'],
      [{ key_id: id, datakey_length: '512', encryption_context: { a: 'x'.repeat(8200) } }, 'KMS.0208'],
      [{ key_id: id, datakey_length: '512', sequence: 1 }, 'KMS.0206'],
      [{ key_id: id, datakey_length: '512', sequence: 'x'.repeat(37) }, 'KMS.0206'],
      [{ key_id: id, datakey_length: '512', plain: true }, 'KMS.0308'],
      ['text', 'KMS.0308'],
    ];
    for (const action of ['create-datakey', 'create-datakey-without-plaintext']) {
      for (const [body, code] of cases) assertError(await post(action, body), 400, code);
    }
  });

  it('when the key is unknown or another project\'s, then 404 KMS.0207', async () => {
    for (const keyId of ['00000000-0000-4000-8000-000000000000', f.foreign.key_id, 'alias/aes-2']) {
      assertError(await post('create-datakey', { key_id: keyId, datakey_length: '512' }), 404, 'KMS.0207');
    }
  });

  it('when a key is asked for hundreds of data keys at once (sealed ahead on the seal thread), then each is new and decrypt-datakey opens each to its plaintext', async () => {
    const ask = () => post('create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    const all = [];
    for (let round = 0; round < 4; round++) all.push(...(await Promise.all(Array.from({ length: 100 }, ask))));
    const plains = new Set<string>();
    for (const r of all) {
      assert.equal(r.status, 200, r.text);
      f.secrets.addHex(r.body.plain_text);
      plains.add(r.body.plain_text);
    }
    assert.equal(plains.size, all.length);
    for (const r of all.filter((_, i) => i % 10 === 0 || i >= all.length - 20)) {
      const open = await post('decrypt-datakey', { key_id: f.aes.key_id, cipher_text: r.body.cipher_text, datakey_cipher_length: '32' });
      assert.equal(open.status, 200, open.text);
      assert.equal(open.body.data_key, r.body.plain_text);
    }
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
