import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fixture, tampered, type Fixture } from '../../helpers/fixture';

let f: Fixture;
before(async () => {
  f = await fixture();
});
after(async () => {
  await f?.server.stop();
});

const post = (action: string, body: unknown) =>
  f.server.request('POST', `/v1.0/p1/kms/${action}`, { headers: { 'X-Auth-Token': f.user }, body });

async function dek(keyId: string, extra: Record<string, unknown> = {}): Promise<{ plain_text: string; cipher_text: string }> {
  const r = await post('create-datakey', { key_id: keyId, datakey_length: '512', ...extra });
  assert.equal(r.status, 200, r.text);
  f.secrets.addHex(r.body.plain_text);
  return r.body;
}

function assertError(r: { status: number; body: { error?: { error_code?: string }; data_key?: unknown } }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error?.error_code, code);
  assert.equal(r.body.data_key, undefined);
}

describe('Huawei decrypt-datakey', () => {
  it('when a DEK is decrypted, then data_key equals the plain_text at creation, with its length and SHA-256 (AES and RSA)', async () => {
    for (const key of [f.aes, f.rsa]) {
      const d = await dek(key.key_id);
      const r = await post('decrypt-datakey', { key_id: key.key_id, cipher_text: d.cipher_text, datakey_cipher_length: '64' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, {
        data_key: d.plain_text,
        datakey_length: '64',
        datakey_dgst: createHash('sha256').update(Buffer.from(d.plain_text, 'hex')).digest('hex').toUpperCase(),
      });
    }
  });

  it('when the ciphertext comes from create-datakey-without-plaintext or is sent in lower case, then it opens', async () => {
    const r = await post('create-datakey-without-plaintext', { key_id: f.aes.key_id, datakey_length: '256' });
    const open = await post('decrypt-datakey', { key_id: f.aes.key_id, cipher_text: r.body.cipher_text.toLowerCase(), datakey_cipher_length: '32' });
    assert.equal(open.status, 200, open.text);
    f.secrets.addHex(open.body.data_key);
    assert.equal(open.body.data_key.length, 64);
  });

  it('when the encryption_context differs, is missing or is added, then KMS.2201; key order does not matter', async () => {
    for (const key of [f.aes, f.rsa]) {
      const d = await dek(key.key_id, { encryption_context: { tenant: 'a', table: 'users' } });
      const base = { key_id: key.key_id, cipher_text: d.cipher_text, datakey_cipher_length: '64' };
      const ok = await post('decrypt-datakey', { ...base, encryption_context: { table: 'users', tenant: 'a' } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.data_key, d.plain_text);
      assertError(await post('decrypt-datakey', { ...base, encryption_context: { tenant: 'b', table: 'users' } }), 400, 'KMS.2201');
      assertError(await post('decrypt-datakey', base), 400, 'KMS.2201');
      const plain = await dek(key.key_id);
      assertError(await post('decrypt-datakey', { ...base, cipher_text: plain.cipher_text, encryption_context: { x: '1' } }), 400, 'KMS.2201');
    }
  });

  it('when any single byte of the ciphertext changes, or it is cut or extended, then KMS.2201', async () => {
    for (const key of [f.aes, f.rsa]) {
      const d = await dek(key.key_id);
      const bytes = Buffer.from(d.cipher_text, 'hex');
      const variants = [...tampered(bytes), bytes.subarray(0, bytes.length - 1), Buffer.concat([bytes, Buffer.from([0])])];
      for (const t of variants) {
        const r = await post('decrypt-datakey', { key_id: key.key_id, cipher_text: t.toString('hex').toUpperCase(), datakey_cipher_length: '64' });
        assertError(r, 400, 'KMS.2201');
      }
    }
  });

  it('when the ciphertext was made under another key, then KMS.2201', async () => {
    const d = await dek(f.aes.key_id);
    assertError(await post('decrypt-datakey', { key_id: f.rsa.key_id, cipher_text: d.cipher_text, datakey_cipher_length: '64' }), 400, 'KMS.2201');
  });

  it('when a field is wrong, then the vendor code for that field', async () => {
    const d = await dek(f.aes.key_id);
    const base = { key_id: f.aes.key_id, cipher_text: d.cipher_text, datakey_cipher_length: '64' };
    const cases: Array<[unknown, number, string]> = [
      [{ ...base, key_id: undefined }, 400, 'KMS.0204'],
      [{ ...base, cipher_text: undefined }, 400, 'KMS.0204'],
      [{ ...base, datakey_cipher_length: undefined }, 400, 'KMS.0204'],
      [{ ...base, key_id: 'nope' }, 400, 'KMS.0205'],
      [{ ...base, cipher_text: 'XYZ0' }, 400, 'KMS.2201'],
      [{ ...base, cipher_text: d.cipher_text.slice(1) }, 400, 'KMS.2201'],
      [{ ...base, cipher_text: 42 }, 400, 'KMS.2201'],
      [{ ...base, cipher_text: 'AB'.repeat(5000) }, 400, 'KMS.2201'],
      [{ ...base, datakey_cipher_length: 64 }, 400, 'KMS.0308'],
      [{ ...base, datakey_cipher_length: 'abc' }, 400, 'KMS.0308'],
      [{ ...base, datakey_cipher_length: '0' }, 400, 'KMS.0308'],
      [{ ...base, datakey_cipher_length: '1025' }, 400, 'KMS.0308'],
      [{ ...base, datakey_cipher_length: '32' }, 400, 'KMS.2204'],
      [{ ...base, encryption_context: 7 }, 400, 'KMS.0208'],
      [{ ...base, sequence: '' }, 400, 'KMS.0206'],
      [{ ...base, other: 1 }, 400, 'KMS.0308'],
      [{ ...base, key_id: '00000000-0000-4000-8000-000000000000' }, 404, 'KMS.0207'],
      [{ ...base, key_id: f.foreign.key_id }, 404, 'KMS.0207'],
    ];
    for (const [body, status, code] of cases) assertError(await post('decrypt-datakey', JSON.parse(JSON.stringify(body))), status, code);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
