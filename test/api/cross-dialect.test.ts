/** One key, every dialect: each dialect's ciphertext opens through the other's decrypt call. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../helpers/fixture';

let f: Fixture;
before(async () => {
  f = await fixture();
});
after(async () => {
  await f?.server.stop();
});

const huawei = (action: string, body: unknown) =>
  f.server.request('POST', `/v1.0/p1/kms/${action}`, { headers: { 'X-Auth-Token': f.user }, body });
const ncp = (tag: string, action: string, body: unknown) =>
  f.server.request('POST', `/kms/v1/keys/${tag}/${action}`, { headers: { 'x-ncp-ocapi-token': f.user }, body });

describe('cross-dialect', () => {
  it('when a Huawei DEK ciphertext is sent to NCP decrypt of the same key, then the DEK comes back (AES and RSA)', async () => {
    for (const key of [f.aes, f.rsa]) {
      const dk = await huawei('create-datakey', { key_id: key.key_id, datakey_length: '512' });
      assert.equal(dk.status, 200, dk.text);
      f.secrets.addHex(dk.body.plain_text);
      const ciphertext = `ncpkms:v1:${Buffer.from(dk.body.cipher_text, 'hex').toString('base64')}`;
      const r = await ncp(key.keyTag, 'decrypt', { ciphertext });
      assert.equal(r.status, 200, r.text);
      assert.equal(Buffer.from(r.body.data.plaintext, 'base64').toString('hex').toUpperCase(), dk.body.plain_text);
    }
  });

  it('when an NCP custom key ciphertext is sent to Huawei decrypt-datakey, then the key comes back (AES and RSA)', async () => {
    for (const key of [f.aes, f.rsa]) {
      const ck = await ncp(key.keyTag, 'create-custom-key', { requestPlainKey: true, bits: 512 });
      assert.equal(ck.status, 200, ck.text);
      f.secrets.addBase64(ck.body.data.plaintext);
      const cipher_text = Buffer.from(ck.body.data.ciphertext.replace(/^ncpkms:v1:/, ''), 'base64').toString('hex').toUpperCase();
      const r = await huawei('decrypt-datakey', { key_id: key.key_id, cipher_text, datakey_cipher_length: '64' });
      assert.equal(r.status, 200, r.text);
      assert.equal(Buffer.from(r.body.data_key, 'hex').toString('base64'), ck.body.data.plaintext);
    }
  });

  it('when a context is used, then the same bytes bind it in both dialects (canonical JSON = NCP context)', async () => {
    const dk = await huawei('create-datakey', { key_id: f.aes.key_id, datakey_length: '256', encryption_context: { b: '2', a: '1' } });
    f.secrets.addHex(dk.body.plain_text);
    const ciphertext = `ncpkms:v1:${Buffer.from(dk.body.cipher_text, 'hex').toString('base64')}`;
    const context = Buffer.from('{"a":"1","b":"2"}').toString('base64');
    const r = await ncp(f.aes.keyTag, 'decrypt', { ciphertext, context });
    assert.equal(r.status, 200, r.text);
    assert.equal(Buffer.from(r.body.data.plaintext, 'base64').toString('hex').toUpperCase(), dk.body.plain_text);
    const wrong = await ncp(f.aes.keyTag, 'decrypt', { ciphertext });
    assert.equal(wrong.status, 400);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
