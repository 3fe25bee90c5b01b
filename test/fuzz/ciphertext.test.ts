/**
 * Ciphertext parsing is total: truncated, extended, re-versioned, bit-flipped or foreign-key
 * envelopes are refused with the dialect's invalid-ciphertext error (NCP 400 INVALID_REQUEST,
 * Huawei 400 KMS.2201), never a 5xx and never a plaintext. Systematic cases first, then a
 * property-based run over random mutations (seed printed; P11KMS_FUZZ_SEED reproduces).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { fixture, type Fixture } from '../helpers/fixture';
import type { Reply } from '../helpers/server';

const seed = Number(process.env['P11KMS_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
let f: Fixture;
const plain = { ncp: randomBytes(40), huawei: randomBytes(20).toString('hex') };
/** Envelope bytes of the sentinel under each key, as the dialects returned them. */
const ct = { ncpAes: '', ncpRsa: '', ncpConv: '', huaweiAes: '', huaweiRsa: '', foreign: '' };

/** The convergent key needs a context; the same one is used for every NCP call. */
const CONTEXT = Buffer.from('fuzz-context').toString('base64');
const ncpDecrypt = (tag: string, ciphertext: string): Promise<Reply> =>
  f.server.request('POST', `/kms/v1/keys/${tag}/decrypt`, { headers: { 'x-ncp-ocapi-token': f.user }, body: { ciphertext, context: CONTEXT } });
const huaweiDecrypt = (cipher_text: string, key_id?: string): Promise<Reply> =>
  f.server.request('POST', '/v1.0/p1/kms/decrypt-data', { headers: { 'X-Auth-Token': f.user }, body: { cipher_text, ...(key_id ? { key_id } : {}) } });

function assertNcpInvalid(r: Reply, what: string): void {
  assert.equal(r.status, 400, `${what}: ${r.text}`);
  assert.equal(r.body.code, 'INVALID_REQUEST', what);
  assert.ok(!r.text.includes(plain.ncp.toString('base64')));
}
function assertHuaweiInvalid(r: Reply, what: string): void {
  assert.equal(r.status, 400, `${what}: ${r.text}`);
  assert.equal(r.body.error.error_code, 'KMS.2201', `${what}: ${r.text}`);
  assert.ok(!r.text.includes(plain.huawei));
}

const ncpBytes = (text: string) => Buffer.from(text.replace(/^ncpkms:v\d+:/, ''), 'base64');
const ncpText = (bytes: Buffer, version = 1) => `ncpkms:v${version}:${bytes.toString('base64')}`;

before(async () => {
  f = await fixture();
  f.secrets.add(plain.ncp, plain.huawei);
  const enc = async (tag: string) => {
    const r = await f.server.request('POST', `/kms/v1/keys/${tag}/encrypt`, { headers: { 'x-ncp-ocapi-token': f.user }, body: { plaintext: plain.ncp.toString('base64'), context: CONTEXT } });
    assert.equal(r.status, 200, `${tag}: ${r.text}`);
    return r.body.data.ciphertext as string;
  };
  ct.ncpAes = await enc(f.aes.keyTag);
  ct.ncpRsa = await enc(f.rsa.keyTag);
  ct.ncpConv = await enc(f.convergent.keyTag);
  const h = async (keyId: string, token = f.user, project = 'p1') => {
    const r = await f.server.request('POST', `/v1.0/${project}/kms/encrypt-data`, { headers: { 'X-Auth-Token': token }, body: { key_id: keyId, plain_text: plain.huawei } });
    assert.equal(r.status, 200, r.text);
    return r.body.cipher_text as string;
  };
  ct.huaweiAes = await h(f.aes.key_id);
  ct.huaweiRsa = await h(f.rsa.key_id);
  ct.foreign = await h(f.foreign.key_id, f.other, 'p2');
});
after(async () => {
  await f?.server.stop();
});

describe('ciphertext parsing is total', () => {
  it('when the untouched ciphertexts are decrypted, then they open (the baseline the mutations start from)', async () => {
    assert.equal((await ncpDecrypt(f.aes.keyTag, ct.ncpAes)).body.data.plaintext, plain.ncp.toString('base64'));
    assert.equal((await huaweiDecrypt(ct.huaweiAes)).body.plain_text, plain.huawei);
  });

  it('when an NCP ciphertext is truncated at every length, extended, or flipped in any byte, then INVALID_REQUEST', async () => {
    for (const base of [ct.ncpAes, ct.ncpRsa, ct.ncpConv]) {
      const tag = base === ct.ncpAes ? f.aes.keyTag : base === ct.ncpRsa ? f.rsa.keyTag : f.convergent.keyTag;
      const bytes = ncpBytes(base);
      const step = Math.max(1, Math.floor(bytes.length / 40));
      for (let n = 0; n < bytes.length; n += step) assertNcpInvalid(await ncpDecrypt(tag, ncpText(bytes.subarray(0, n))), `truncated to ${n}`);
      for (const extra of [Buffer.alloc(1), randomBytes(16), randomBytes(300)]) {
        assertNcpInvalid(await ncpDecrypt(tag, ncpText(Buffer.concat([bytes, extra]))), `extended by ${extra.length}`);
      }
      for (let i = 0; i < bytes.length; i += step) {
        const b = Buffer.from(bytes);
        b[i] = b[i]! ^ 0x80;
        assertNcpInvalid(await ncpDecrypt(tag, ncpText(b)), `byte ${i} flipped`);
      }
      for (const text of [base.slice(0, -1), base + 'A', base + '=', base.replace('ncpkms:', 'ncpkms2:'), base.replace(':v1:', ':v0:'), base.replace(':v1:', ':v2:'), base.replace(':v1:', ':v999999999:'), base.replace(':v1:', ':V1:'), base.replace(':v1:', ':v01:'), ' ' + base]) {
        assertNcpInvalid(await ncpDecrypt(tag, text), `text form ${text.slice(0, 14)}`);
      }
    }
  });

  it('when an envelope is re-versioned (format version, algorithm, key version fields), then the dialect refuses it as invalid ciphertext', async () => {
    const bytes = ncpBytes(ct.ncpAes);
    // Format version 2: version, algorithm, contents, key id (16), key version (4).
    for (const [offset, value] of [[0, 0], [0, 1], [0, 3], [0, 255], [1, 0], [1, 2], [1, 3], [1, 9], [2, 0], [2, 2], [2, 3], [22, 2], [22, 0], [19, 0xff]] as const) {
      const b = Buffer.from(bytes);
      b[offset] = value;
      const v = offset >= 19 && offset < 23 ? b.readUInt32BE(19) : 1;
      assertNcpInvalid(await ncpDecrypt(f.aes.keyTag, ncpText(b, v >= 1 && v < 1e9 ? v : 1)), `byte ${offset} = ${value}`);
      assertHuaweiInvalid(await huaweiDecrypt(b.toString('base64'), f.aes.key_id), `byte ${offset} = ${value}`);
    }
  });

  it('when a ciphertext of one key is presented for another key (foreign key), then invalid ciphertext, in both dialects', async () => {
    assertNcpInvalid(await ncpDecrypt(f.aes.keyTag, ct.ncpRsa), 'RSA ciphertext under the AES key');
    assertNcpInvalid(await ncpDecrypt(f.rsa.keyTag, ct.ncpAes), 'AES ciphertext under the RSA key');
    assertNcpInvalid(await ncpDecrypt(f.convergent.keyTag, ct.ncpAes), 'AES ciphertext under the convergent key');
    assertHuaweiInvalid(await huaweiDecrypt(ct.huaweiRsa, f.aes.key_id), 'RSA ciphertext with the AES key id');
    assertHuaweiInvalid(await huaweiDecrypt(ct.huaweiAes, f.rsa.key_id), 'AES ciphertext with the RSA key id');
    // Another project's envelope: with a key id of ours it is a foreign-key envelope; the key it
    // names is invisible to this project, exactly like a missing key (tenancy rule).
    assertHuaweiInvalid(await huaweiDecrypt(ct.foreign, f.aes.key_id), "another project's ciphertext with our key id");
    const foreignBytes = Buffer.from(ct.foreign, 'base64');
    assertNcpInvalid(await ncpDecrypt(f.aes.keyTag, ncpText(foreignBytes)), "another project's envelope under our key");
    // The envelope header names the key: re-pointing it at our key fails authentication (the header is AAD).
    const repointed = Buffer.from(foreignBytes);
    Buffer.from(f.aes.key_id.replace(/-/g, ''), 'hex').copy(repointed, 3);
    assertHuaweiInvalid(await huaweiDecrypt(repointed.toString('base64')), 'envelope re-pointed at our key');
    assertNcpInvalid(await ncpDecrypt(f.aes.keyTag, ncpText(repointed)), 'envelope re-pointed at our key');
  });

  it(`when random mutations of real ciphertexts are decrypted, then each is refused as invalid ciphertext or opens to the very same plaintext (seed ${seed})`, async () => {
    const mutation = fc.record({
      base: fc.constantFrom('aes', 'rsa', 'conv'),
      cuts: fc.array(fc.record({ at: fc.nat(), len: fc.nat({ max: 8 }), insert: fc.uint8Array({ maxLength: 8 }) }), { minLength: 1, maxLength: 3 }),
      dialect: fc.constantFrom('ncp', 'huawei'),
    });
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const ncpBase = m.base === 'aes' ? ct.ncpAes : m.base === 'rsa' ? ct.ncpRsa : ct.ncpConv;
        let b = m.dialect === 'ncp' ? ncpBytes(ncpBase) : Buffer.from(m.base === 'rsa' ? ct.huaweiRsa : ct.huaweiAes, 'base64');
        const original = Buffer.from(b);
        for (const c of m.cuts) {
          const at = c.at % (b.length + 1);
          b = Buffer.concat([b.subarray(0, at), Buffer.from(c.insert), b.subarray(Math.min(b.length, at + c.len))]);
        }
        const same = b.equals(original);
        if (m.dialect === 'ncp') {
          const tag = m.base === 'aes' ? f.aes.keyTag : m.base === 'rsa' ? f.rsa.keyTag : f.convergent.keyTag;
          const r = await ncpDecrypt(tag, ncpText(b));
          if (same) assert.equal(r.body.data.plaintext, plain.ncp.toString('base64'));
          else assertNcpInvalid(r, 'mutated');
        } else {
          const r = await huaweiDecrypt(b.toString('base64'));
          if (same) assert.equal(r.body.plain_text, plain.huawei);
          // Without a key id the envelope's own key id is looked up: a mutated id names no key of
          // this project, which reads like a missing key (404 KMS.0207), as for any unknown key.
          else if (r.status === 404) assert.equal(r.body.error.error_code, 'KMS.0207', r.text);
          else assertHuaweiInvalid(r, 'mutated');
        }
      }),
      { seed, numRuns: 400, endOnFailure: true, includeErrorInReport: true },
    );
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
