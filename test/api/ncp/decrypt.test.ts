import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, tampered, type Fixture } from '../../helpers/fixture';

let f: Fixture;
before(async () => {
  f = await fixture();
});
after(async () => {
  await f?.server.stop();
});

const headers = () => ({ 'x-ncp-ocapi-token': f.user });
const customKey = async (tag: string, extra: Record<string, unknown> = {}) => {
  const r = await f.server.request('POST', `/kms/v1/keys/${tag}/create-custom-key`, { headers: headers(), body: { requestPlainKey: true, ...extra } });
  assert.equal(r.status, 200, r.text);
  f.secrets.addBase64(r.body.data.plaintext);
  return r.body.data as { plaintext: string; ciphertext: string; key_version: number };
};
const decrypt = (tag: string, body: unknown) => f.server.request('POST', `/kms/v1/keys/${tag}/decrypt`, { headers: headers(), body });
const b64 = (s: string) => Buffer.from(s).toString('base64');

function assertRefused(r: { status: number; body: { code?: string; data?: unknown } }, status = 400, code = 'INVALID_REQUEST'): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.code, code);
  assert.equal(r.body.data, undefined);
}

describe('NCP decrypt', () => {
  it('when a custom key ciphertext is decrypted, then the plaintext is the one given at creation (AES and RSA)', async () => {
    for (const key of [f.aes, f.rsa]) {
      const ck = await customKey(key.keyTag, { bits: 512 });
      const r = await decrypt(key.keyTag, { ciphertext: ck.ciphertext });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { code: 'SUCCESS', data: { plaintext: ck.plaintext } });
    }
  });

  it('when an array of ciphertexts is sent, then an array of plaintexts comes back in order', async () => {
    const a = await customKey(f.aes.keyTag);
    const b = await customKey(f.aes.keyTag, { bits: 128 });
    const r = await decrypt(f.aes.keyTag, { ciphertext: [b.ciphertext, a.ciphertext] });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.plaintext, [b.plaintext, a.plaintext]);
  });

  it('when the context differs or is missing, then the ciphertext does not open', async () => {
    for (const key of [f.aes, f.rsa, f.convergent]) {
      const ck = await customKey(key.keyTag, { context: b64('order-1') });
      assert.equal((await decrypt(key.keyTag, { ciphertext: ck.ciphertext, context: b64('order-1') })).body.data.plaintext, ck.plaintext);
      assertRefused(await decrypt(key.keyTag, { ciphertext: ck.ciphertext, context: b64('order-2') }));
      assertRefused(await decrypt(key.keyTag, { ciphertext: ck.ciphertext }));
    }
  });

  it('when a context is given at decrypt that was not given at creation, then it does not open', async () => {
    const ck = await customKey(f.aes.keyTag);
    assertRefused(await decrypt(f.aes.keyTag, { ciphertext: ck.ciphertext, context: b64('x') }));
  });

  it('when any single byte of the ciphertext changes, then it does not open (AES, RSA, convergent)', async () => {
    for (const [key, extra] of [[f.aes, {}], [f.rsa, {}], [f.convergent, { context: b64('c') }]] as const) {
      const ck = await customKey(key.keyTag, extra);
      const bytes = Buffer.from(ck.ciphertext.slice('ncpkms:v1:'.length), 'base64');
      for (const t of tampered(bytes)) {
        const r = await decrypt(key.keyTag, { ciphertext: `ncpkms:v1:${t.toString('base64')}`, ...extra });
        assertRefused(r);
      }
      for (const cut of [bytes.subarray(0, bytes.length - 1), Buffer.concat([bytes, Buffer.from([0])])]) {
        assertRefused(await decrypt(key.keyTag, { ciphertext: `ncpkms:v1:${cut.toString('base64')}`, ...extra }));
      }
      assertRefused(await decrypt(key.keyTag, { ciphertext: ck.ciphertext.replace('ncpkms:v1:', 'ncpkms:v2:'), ...extra }));
    }
  });

  it('when the ciphertext belongs to another key, then it does not open', async () => {
    const ck = await customKey(f.aes.keyTag);
    assertRefused(await decrypt(f.convergent.keyTag, { ciphertext: ck.ciphertext, context: b64('c') }));
    assertRefused(await decrypt(f.rsa.keyTag, { ciphertext: ck.ciphertext }));
  });

  it('when any field has a wrong type, length or encoding, then 400 INVALID_REQUEST', async () => {
    const ck = await customKey(f.aes.keyTag);
    const bad: unknown[] = [
      {},
      { ciphertext: 123 },
      { ciphertext: '' },
      { ciphertext: 'abc' },
      { ciphertext: 'ncpkms:v0:AAAA' },
      { ciphertext: 'ncpkms:v1:!!!!' },
      { ciphertext: 'ncpkms:v1:AAA' },
      { ciphertext: [] },
      { ciphertext: [1] },
      { ciphertext: null },
      { ciphertext: ck.ciphertext, context: 5 },
      { ciphertext: ck.ciphertext, context: 'not base64' },
      { ciphertext: ck.ciphertext, extra: 1 },
      [ck.ciphertext],
    ];
    for (const body of bad) assertRefused(await decrypt(f.aes.keyTag, body));
  });

  it('when the keyTag is unknown or another project\'s, then NOT_FOUND', async () => {
    const ck = await customKey(f.aes.keyTag);
    assertRefused(await decrypt('f'.repeat(64), { ciphertext: ck.ciphertext }), 404, 'NOT_FOUND');
    assertRefused(await decrypt(f.foreign.keyTag, { ciphertext: ck.ciphertext }), 404, 'NOT_FOUND');
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
