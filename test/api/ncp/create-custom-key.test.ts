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

const path = (tag: string) => `/kms/v1/keys/${tag}/create-custom-key`;
const call = (tag: string, body: unknown, token = f.user) =>
  f.server.request('POST', path(tag), { headers: { 'x-ncp-ocapi-token': token }, body });

describe('NCP create-custom-key', () => {
  it('when requestPlainKey is absent, then only the ciphertext and key_version come back', async () => {
    const r = await call(f.aes.keyTag, {});
    assert.equal(r.status, 200);
    assert.equal(r.body.code, 'SUCCESS');
    assert.deepEqual(Object.keys(r.body.data).sort(), ['ciphertext', 'key_version']);
    assert.match(r.body.data.ciphertext, /^ncpkms:v1:[A-Za-z0-9+/]+=*$/);
    assert.equal(r.body.data.key_version, 1);
  });

  it('when bits is 128, 256 (default) or 512, then the plaintext key has 16, 32 or 64 bytes', async () => {
    for (const [bits, bytes] of [[128, 16], [256, 32], [512, 64], [undefined, 32]] as const) {
      for (const key of [f.aes, f.rsa]) {
        const r = await call(key.keyTag, { requestPlainKey: true, ...(bits ? { bits } : {}) });
        assert.equal(r.status, 200, r.text);
        f.secrets.addBase64(r.body.data.plaintext);
        assert.equal(Buffer.from(r.body.data.plaintext, 'base64').length, bytes);
      }
    }
  });

  it('when two custom keys are made, then they differ', async () => {
    const a = await call(f.aes.keyTag, { requestPlainKey: true });
    const b = await call(f.aes.keyTag, { requestPlainKey: true });
    f.secrets.addBase64(a.body.data.plaintext);
    f.secrets.addBase64(b.body.data.plaintext);
    assert.notEqual(a.body.data.plaintext, b.body.data.plaintext);
    assert.notEqual(a.body.data.ciphertext, b.body.data.ciphertext);
  });

  it('when the key is convergent, then a context is required', async () => {
    const missing = await call(f.convergent.keyTag, { requestPlainKey: true });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, 'INVALID_REQUEST');
    const ok = await call(f.convergent.keyTag, { requestPlainKey: true, context: Buffer.from('row-42').toString('base64') });
    assert.equal(ok.status, 200);
    f.secrets.addBase64(ok.body.data.plaintext);
  });

  it('when any field has a wrong type, length or encoding, then 400 INVALID_REQUEST and no key', async () => {
    const bad: unknown[] = [
      { requestPlainKey: 'true' },
      { requestPlainKey: 1 },
      { requestPlainKey: null },
      { bits: 255 },
      { bits: '256' },
      { bits: 1024 },
      { bits: 0 },
      { bits: 256.5 },
      { context: 123 },
      { context: '' },
      { context: 'not base64!' },
      { context: 'QQ' },
      { context: 'QR==' },
      { context: Buffer.alloc(51).toString('base64') },
      { context: 'A'.repeat(72) },
      { unknown: true },
      [],
      'text',
      5,
      null,
    ];
    for (const body of bad) {
      const r = await call(f.aes.keyTag, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.text}`);
      assert.equal(r.body.code, 'INVALID_REQUEST');
      assert.equal(typeof r.body.msg, 'string');
      assert.equal(r.body.data, undefined);
    }
    const malformed = await f.server.request('POST', path(f.aes.keyTag), { headers: { 'x-ncp-ocapi-token': f.user }, raw: '{"bits":' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.code, 'INVALID_REQUEST');
  });

  it('when the body is over 64 KiB, then 413', async () => {
    const r = await call(f.aes.keyTag, { context: 'A'.repeat(70 * 1024) });
    assert.equal(r.status, 413);
    assert.equal(r.body.code, 'INVALID_REQUEST');
  });

  it('when the keyTag is unknown, malformed or of another project, then NOT_FOUND or INVALID_REQUEST', async () => {
    for (const tag of ['0'.repeat(64), f.foreign.keyTag]) {
      const r = await call(tag, {});
      assert.equal(r.status, 404);
      assert.equal(r.body.code, 'NOT_FOUND');
    }
    const long = await call('a'.repeat(129), {});
    assert.equal(long.status, 400);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
