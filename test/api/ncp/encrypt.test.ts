import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
import { b64, badRequest, Ncp, notFound, versionOf } from './client';

let f: Fixture;
let ncp: Ncp;
before(async () => {
  f = await fixture();
  ncp = new Ncp(f);
});
after(async () => {
  await f?.server.stop();
});

const secret = (n: number): Buffer => {
  const b = randomBytes(n);
  f.secrets.add(b);
  return b;
};
const ctx = (s: string) => b64(s);

describe('NCP encrypt', () => {
  it('when one plaintext is encrypted (AES256, RSA2048), then an ncpkms:v1: ciphertext comes back that decrypts to it', async () => {
    for (const key of [f.aes, f.rsa]) {
      const p = secret(100);
      const ct = (await ncp.encrypt(key.keyTag, p)) as string;
      assert.match(ct, /^ncpkms:v1:[A-Za-z0-9+/]+=*$/);
      assert.ok(!ct.includes(b64(p)));
      assert.equal(await ncp.decrypt(key.keyTag, ct), b64(p));
    }
  });

  it('when an array of plaintexts is encrypted, then an array of ciphertexts comes back in the same order', async () => {
    const ps = [secret(5), secret(64), secret(17)];
    const cts = await ncp.encrypt(f.aes.keyTag, ps);
    assert.ok(Array.isArray(cts));
    assert.equal(cts.length, 3);
    assert.deepEqual(await ncp.decrypt(f.aes.keyTag, cts), ps.map((p) => b64(p)));
    const one = await ncp.encrypt(f.aes.keyTag, [ps[0]!]);
    assert.ok(Array.isArray(one) && one.length === 1);
  });

  it('when a context is given, then it is needed to decrypt', async () => {
    const p = secret(32);
    const ct = (await ncp.encrypt(f.aes.keyTag, p, ctx('user-7'))) as string;
    assert.equal(await ncp.decrypt(f.aes.keyTag, ct, ctx('user-7')), b64(p));
    badRequest(await ncp.action(f.aes.keyTag, 'decrypt', { ciphertext: ct }, f.user));
    badRequest(await ncp.action(f.aes.keyTag, 'decrypt', { ciphertext: ct, context: ctx('user-8') }, f.user));
  });

  it('when the key is not convergent, then the same plaintext gives a different ciphertext each time', async () => {
    const p = secret(24);
    const a = await ncp.encrypt(f.aes.keyTag, p, ctx('same'));
    const b = await ncp.encrypt(f.aes.keyTag, p, ctx('same'));
    assert.notEqual(a, b);
  });

  it('when the key is convergent, then the same context and plaintext give the identical ciphertext, and anything else differs', async () => {
    const p = secret(40);
    const q = secret(40);
    const a = (await ncp.encrypt(f.convergent.keyTag, p, ctx('row-1'))) as string;
    assert.equal(await ncp.encrypt(f.convergent.keyTag, p, ctx('row-1')), a);
    assert.deepEqual(await ncp.encrypt(f.convergent.keyTag, [q, p], ctx('row-1')), [await ncp.encrypt(f.convergent.keyTag, q, ctx('row-1')), a]);
    assert.notEqual(await ncp.encrypt(f.convergent.keyTag, p, ctx('row-2')), a);
    assert.notEqual(await ncp.encrypt(f.convergent.keyTag, q, ctx('row-1')), a);
    assert.equal(await ncp.decrypt(f.convergent.keyTag, a, ctx('row-1')), b64(p));
    badRequest(await ncp.action(f.convergent.keyTag, 'decrypt', { ciphertext: a, context: ctx('row-2') }, f.user));
    // Another convergent key with the same context and plaintext gives another ciphertext.
    const other = await ncp.create({ keyName: 'conv-2', keyType: 'AES256', isConvergent: true });
    assert.notEqual(await ncp.encrypt(other.keyTag, p, ctx('row-1')), a);
  });

  it('when a convergent key gets no context, then 400 INVALID_REQUEST', async () => {
    badRequest(await ncp.action(f.convergent.keyTag, 'encrypt', { plaintext: b64(secret(8)) }, f.user));
    badRequest(await ncp.action(f.convergent.keyTag, 'encrypt', { plaintext: [b64(secret(8))] }, f.user));
  });

  it('when the plaintext is at the size limit, then it is accepted; one byte more is 400 (AES 32 KB, RSA 190 B)', async () => {
    const big = secret(32 * 1024);
    const ct = (await ncp.encrypt(f.aes.keyTag, big)) as string;
    assert.equal(await ncp.decrypt(f.aes.keyTag, ct), b64(big));
    badRequest(await ncp.action(f.aes.keyTag, 'encrypt', { plaintext: b64(secret(32 * 1024 + 1)) }, f.user));

    const max = secret(190);
    assert.equal(await ncp.decrypt(f.rsa.keyTag, (await ncp.encrypt(f.rsa.keyTag, max)) as string), b64(max));
    badRequest(await ncp.action(f.rsa.keyTag, 'encrypt', { plaintext: b64(secret(191)) }, f.user));
    badRequest(await ncp.action(f.rsa.keyTag, 'encrypt', { plaintext: [b64(secret(10)), b64(secret(191))] }, f.user));
  });

  it('when any field has a wrong type, length or encoding, then 400 INVALID_REQUEST', async () => {
    const bad: unknown[] = [
      {},
      { plaintext: 123 },
      { plaintext: '' },
      { plaintext: 'not base64!' },
      { plaintext: 'QQ' },
      { plaintext: 'QR==' },
      { plaintext: null },
      { plaintext: [] },
      { plaintext: [1] },
      { plaintext: ['QUJD', ''] },
      { plaintext: Array.from({ length: 1001 }, () => 'QQ==') },
      { plaintext: 'QUJD', context: '' },
      { plaintext: 'QUJD', context: 'not base64' },
      { plaintext: 'QUJD', context: b64(Buffer.alloc(51)) },
      { plaintext: 'QUJD', extra: true },
      ['QUJD'],
      'QUJD',
    ];
    for (const body of bad) badRequest(await ncp.action(f.aes.keyTag, 'encrypt', body, f.user));
  });

  it('when the keyTag is unknown or another project\'s, then NOT_FOUND', async () => {
    notFound(await ncp.action(f.foreign.keyTag, 'encrypt', { plaintext: 'QUJD' }, f.user));
    notFound(await ncp.action('0'.repeat(64), 'encrypt', { plaintext: 'QUJD' }, f.user));
  });
});

describe('NCP re-encrypt', () => {
  it('when a ciphertext is re-encrypted on either path, then a new ciphertext of the same plaintext comes back, never the plaintext', async () => {
    for (const path of ['re-encrypt', 'reencrypt']) {
      for (const key of [f.aes, f.rsa]) {
        const p = secret(48);
        const ct = (await ncp.encrypt(key.keyTag, p)) as string;
        const r = await ncp.action(key.keyTag, path, { ciphertext: ct }, f.user);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.body.data), ['ciphertext']);
        assert.ok(!r.text.includes(b64(p)));
        assert.notEqual(r.body.data.ciphertext, ct);
        assert.equal(versionOf(r.body.data.ciphertext), 1);
        assert.equal(await ncp.decrypt(key.keyTag, r.body.data.ciphertext), b64(p));
      }
    }
  });

  it('when an array is re-encrypted with its context, then an array comes back in order under the same context', async () => {
    const ps = [secret(10), secret(20)];
    const cts = (await ncp.encrypt(f.aes.keyTag, ps, ctx('batch'))) as string[];
    const ck = await ncp.action(f.aes.keyTag, 'create-custom-key', { requestPlainKey: true, context: ctx('batch') }, f.user);
    f.secrets.addBase64(ck.body.data.plaintext);
    const r = await ncp.action(f.aes.keyTag, 'reencrypt', { ciphertext: [cts[1], ck.body.data.ciphertext, cts[0]], context: ctx('batch') }, f.user);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.ciphertext.length, 3);
    assert.deepEqual(await ncp.decrypt(f.aes.keyTag, r.body.data.ciphertext, ctx('batch')), [b64(ps[1]!), ck.body.data.plaintext, b64(ps[0]!)]);
    badRequest(await ncp.action(f.aes.keyTag, 'decrypt', { ciphertext: r.body.data.ciphertext[0] }, f.user));
  });

  it('when the key is convergent, then re-encrypting gives the same ciphertext as encrypting', async () => {
    const p = secret(30);
    const ct = (await ncp.encrypt(f.convergent.keyTag, p, ctx('row-9'))) as string;
    const r = await ncp.action(f.convergent.keyTag, 're-encrypt', { ciphertext: ct, context: ctx('row-9') }, f.user);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.ciphertext, ct);
    badRequest(await ncp.action(f.convergent.keyTag, 're-encrypt', { ciphertext: ct }, f.user));
  });

  it('when the context is wrong, the ciphertext is of another key, tampered or malformed, then 400 INVALID_REQUEST', async () => {
    const ct = (await ncp.encrypt(f.aes.keyTag, secret(16), ctx('a'))) as string;
    const bytes = Buffer.from(ct.slice('ncpkms:v1:'.length), 'base64');
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    const bad: unknown[] = [
      { ciphertext: ct },
      { ciphertext: ct, context: ctx('b') },
      { ciphertext: `ncpkms:v1:${bytes.toString('base64')}`, context: ctx('a') },
      { ciphertext: [ct, 'ncpkms:v1:AAAA'], context: ctx('a') },
      {},
      { ciphertext: '' },
      { ciphertext: 'abc' },
      { ciphertext: [] },
      { ciphertext: ct, context: ctx('a'), plaintext: 'QUJD' },
    ];
    for (const path of ['re-encrypt', 'reencrypt']) {
      for (const body of bad) badRequest(await ncp.action(f.aes.keyTag, path, body, f.user));
      badRequest(await ncp.action(f.rsa.keyTag, path, { ciphertext: ct, context: ctx('a') }, f.user));
    }
  });

  it('when the keyTag is another project\'s, then NOT_FOUND', async () => {
    const ct = (await ncp.encrypt(f.aes.keyTag, secret(16))) as string;
    notFound(await ncp.action(f.foreign.keyTag, 're-encrypt', { ciphertext: ct }, f.user));
    notFound(await ncp.action(f.aes.keyTag, 'reencrypt', { ciphertext: ct }, f.other));
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
