/**
 * Huawei data calls through HTTP: encrypt-data / decrypt-data, encrypt-datakey (opened by
 * decrypt-datakey), gen-random, and what disabled and pending-deletion keys do to all of them.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fixture, tampered, type Fixture } from '../../helpers/fixture';
import { assertError, Huawei } from './client';

let f: Fixture;
let hw: Huawei;
before(async () => {
  f = await fixture();
  hw = new Huawei(f);
});
after(async () => {
  await f?.server.stop();
});

const user = (action: string, body: unknown) => hw.post(action, body, f.user);
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
const upperHex = (b: Buffer): string => b.toString('hex').toUpperCase();

/** A DEK and the vendor's plain_text for it: hex(DEK ‖ SHA-256(DEK)). */
function dekInput(bytes: number): { dek: Buffer; plain_text: string } {
  const dek = randomBytes(bytes);
  f.secrets.add(dek);
  return { dek, plain_text: Buffer.concat([dek, sha256(dek)]).toString('hex') };
}

describe('Huawei encrypt-data and decrypt-data', () => {
  it('when UTF-8 text is encrypted, then a base64 cipher_text that decrypt-data opens with no key id, giving plain_text and plain_text_base64', async () => {
    const text = 'Grüße, 世界 — secret 🙂';
    f.secrets.add(text);
    const r = await user('encrypt-data', { key_id: f.aes.key_id, plain_text: text, sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['cipher_text', 'key_id']);
    assert.equal(r.body.key_id, f.aes.key_id);
    assert.match(r.body.cipher_text, /^[A-Za-z0-9+/]+={0,2}$/);
    const bytes = Buffer.byteLength(text);
    // No longer than the vendor's for the same input (124 + plaintext rounded up to 16 bytes).
    assert.ok(Buffer.from(r.body.cipher_text, 'base64').length <= 124 + Math.ceil(bytes / 16) * 16);
    const d = await user('decrypt-data', { cipher_text: r.body.cipher_text });
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(d.body, { key_id: f.aes.key_id, plain_text: text, plain_text_base64: Buffer.from(text).toString('base64') });
  });

  it('when the same text is encrypted twice, then the ciphertexts differ; an alias and SYMMETRIC_DEFAULT are accepted', async () => {
    const a = await hw.encrypt('alias/aes-1', 'same text each time', { encryption_algorithm: 'SYMMETRIC_DEFAULT' });
    const b = await hw.encrypt(f.aes.key_id, 'same text each time');
    assert.notEqual(a, b);
    assert.equal(await hw.decrypt(a), await hw.decrypt(b, { encryption_algorithm: 'SYMMETRIC_DEFAULT' }));
  });

  it('when 4096 bytes are encrypted (ASCII or multi-byte), then they round-trip; 4097 bytes or an empty text are KMS.2101', async () => {
    for (const text of ['a'.repeat(4096), 'é'.repeat(2048), '€'.repeat(1365) + 'a']) {
      assert.equal(await hw.decrypt(await hw.encrypt(f.aes.key_id, text)), text);
    }
    for (const plain_text of ['a'.repeat(4097), 'é'.repeat(2049), '', 5, null]) {
      assertError(await user('encrypt-data', { key_id: f.aes.key_id, plain_text }), 400, 'KMS.2101');
    }
  });

  it('when an encryption_context is given, then decryption needs the same pairs in any order', async () => {
    const cipher = await hw.encrypt(f.aes.key_id, 'bound to context', { encryption_context: { tenant: 'a', file: 'b' } });
    assert.equal(await hw.decrypt(cipher, { encryption_context: { file: 'b', tenant: 'a' } }), 'bound to context');
    for (const extra of [{}, { encryption_context: { tenant: 'a' } }, { encryption_context: { tenant: 'a', file: 'c' } }, { encryption_context: { tenantf: 'ile', file: 'b' } }]) {
      assertError(await user('decrypt-data', { cipher_text: cipher, ...extra }), 400, 'KMS.2201');
    }
  });

  it('when the key is RSA_2048, then up to 190 bytes are encrypted with RSAES_OAEP_SHA_256 or _SHA_1 and 191 are KMS.2108', async () => {
    for (const encryption_algorithm of ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1']) {
      const text = 'r'.repeat(190);
      const cipher = await hw.encrypt(f.rsa.key_id, text, { encryption_algorithm });
      assert.equal(await hw.decrypt(cipher, { encryption_algorithm }), text);
    }
    assert.equal(await hw.decrypt(await hw.encrypt(f.rsa.key_id, 'no algorithm named')), 'no algorithm named');
    assertError(await user('encrypt-data', { key_id: f.rsa.key_id, plain_text: 'r'.repeat(191) }), 400, 'KMS.2108');
  });

  it('when the RSA key is for signing only, then encrypt-data is KMS.0335', async () => {
    const signOnly = await hw.create('rsa-sign-only', { key_spec: 'RSA_2048', key_usage: 'SIGN_VERIFY' });
    assertError(await user('encrypt-data', { key_id: signOnly, plain_text: 'x' }), 400, 'KMS.0335');
    const { plain_text } = dekInput(32);
    assertError(await user('encrypt-datakey', { key_id: signOnly, plain_text, datakey_plain_length: '32' }), 400, 'KMS.0335');
  });

  it('when the algorithm does not fit the key, then KMS.2105 (AES) or KMS.2106 (RSA); an unknown one is KMS.0308', async () => {
    assertError(await user('encrypt-data', { key_id: f.aes.key_id, plain_text: 'x', encryption_algorithm: 'RSAES_OAEP_SHA_256' }), 400, 'KMS.2105');
    assertError(await user('encrypt-data', { key_id: f.rsa.key_id, plain_text: 'x', encryption_algorithm: 'SYMMETRIC_DEFAULT' }), 400, 'KMS.2106');
    assertError(await user('encrypt-data', { key_id: f.aes.key_id, plain_text: 'x', encryption_algorithm: 'AES_GCM' }), 400, 'KMS.0308');
    const cipher = await hw.encrypt(f.aes.key_id, 'algorithm on decrypt');
    assertError(await user('decrypt-data', { cipher_text: cipher, encryption_algorithm: 'RSAES_OAEP_SHA_1' }), 400, 'KMS.2105');
  });

  it('when a convergent key gets no context, then KMS.0204; with one, the same text gives the same ciphertext', async () => {
    assertError(await user('encrypt-data', { key_id: f.convergent.key_id, plain_text: 'converge' }), 400, 'KMS.0204');
    const ctx = { encryption_context: { row: '7' } };
    const a = await hw.encrypt(f.convergent.key_id, 'converging text', ctx);
    assert.equal(a, await hw.encrypt(f.convergent.key_id, 'converging text', ctx));
    assert.equal(await hw.decrypt(a, ctx), 'converging text');
  });

  it('when a key_id is also given to decrypt-data, then it must be the key that encrypted', async () => {
    const cipher = await hw.encrypt(f.aes.key_id, 'named key decrypt');
    assert.equal(await hw.decrypt(cipher, { key_id: 'alias/aes-1' }), 'named key decrypt');
    const other = await hw.create('decrypt-other');
    assertError(await user('decrypt-data', { cipher_text: cipher, key_id: other }), 400, 'KMS.2201');
  });

  it('when the ciphertext is not base64, tampered, cut, or no envelope, then KMS.2201', async () => {
    const cipher = await hw.encrypt(f.aes.key_id, 'tamper target');
    const bytes = Buffer.from(cipher, 'base64');
    const cases: unknown[] = ['!!!!', 'QUJD=', cipher.slice(0, -4), randomBytes(80).toString('base64'), 'A'.repeat(5652), 42];
    for (const t of tampered(bytes)) cases.push(t.toString('base64'));
    for (const cipher_text of cases) {
      const r = await user('decrypt-data', { cipher_text });
      // A flipped byte in the key id names a key that doesn't exist here: that reads as not found.
      if (r.status === 404) assert.equal(r.body.error.error_code, 'KMS.0207');
      else assertError(r, 400, 'KMS.2201');
    }
    assertError(await user('decrypt-data', {}), 400, 'KMS.0204');
  });

  it('when the ciphertext is another project\'s, then 404 KMS.0207 and no plaintext', async () => {
    const p2 = new Huawei(f, 'p2');
    f.secrets.add('other project text');
    const r = await p2.post('encrypt-data', { key_id: f.foreign.key_id, plain_text: 'other project text' }, f.other);
    assert.equal(r.status, 200, r.text);
    assertError(await user('decrypt-data', { cipher_text: r.body.cipher_text }), 404, 'KMS.0207');
    assertError(await user('encrypt-data', { key_id: f.foreign.key_id, plain_text: 'x' }), 404, 'KMS.0207');
  });

  it('when a DEK ciphertext from create-datakey is given to decrypt-data, then its bytes come back in plain_text_base64', async () => {
    const dk = await user('create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    f.secrets.addHex(dk.body.plain_text);
    const r = await user('decrypt-data', { cipher_text: Buffer.from(dk.body.cipher_text, 'hex').toString('base64') });
    assert.equal(r.status, 200, r.text);
    assert.equal(upperHex(Buffer.from(r.body.plain_text_base64, 'base64')), dk.body.plain_text);
  });
});

describe('Huawei encrypt-datakey', () => {
  it('when a 64-byte DEK with its SHA-256 is sealed, then upper-case hex that decrypt-datakey opens to the same DEK', async () => {
    const { dek, plain_text } = dekInput(64);
    const r = await user('encrypt-datakey', { key_id: f.aes.key_id, plain_text, datakey_plain_length: '64' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['cipher_text', 'datakey_length', 'key_id']);
    assert.equal(r.body.key_id, f.aes.key_id);
    assert.equal(r.body.datakey_length, '64');
    assert.match(r.body.cipher_text, /^[0-9A-F]+$/);
    assert.ok(r.body.cipher_text.length <= 376, `cipher_text has ${r.body.cipher_text.length} hex characters`);
    const d = await user('decrypt-datakey', { key_id: f.aes.key_id, cipher_text: r.body.cipher_text, datakey_cipher_length: '64' });
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(d.body, { data_key: upperHex(dek), datakey_length: '64', datakey_dgst: upperHex(sha256(dek)) });
  });

  it('when the DEK is 1 or 1024 bytes, under an RSA key, by alias or with a context, then it round-trips', async () => {
    const cases: Array<[string, number, Record<string, unknown>]> = [
      [f.aes.key_id, 1, {}],
      [f.aes.key_id, 1024, {}],
      ['alias/aes-1', 32, { encryption_context: { k: 'v' } }],
      [f.rsa.key_id, 190, {}],
      [f.convergent.key_id, 32, { encryption_context: { row: '1' } }],
    ];
    for (const [keyId, bytes, extra] of cases) {
      const { dek, plain_text } = dekInput(bytes);
      const r = await user('encrypt-datakey', { key_id: keyId, plain_text: plain_text.toUpperCase(), datakey_plain_length: String(bytes), ...extra });
      assert.equal(r.status, 200, r.text);
      const d = await user('decrypt-datakey', { key_id: keyId, cipher_text: r.body.cipher_text, datakey_cipher_length: String(bytes), ...extra });
      assert.equal(d.status, 200, d.text);
      assert.equal(d.body.data_key, upperHex(dek));
    }
  });

  it('when the context differs at decryption, then KMS.2201', async () => {
    const { plain_text } = dekInput(64);
    const r = await user('encrypt-datakey', { key_id: f.aes.key_id, plain_text, datakey_plain_length: '64', encryption_context: { a: '1' } });
    assert.equal(r.status, 200);
    assertError(await user('decrypt-datakey', { key_id: f.aes.key_id, cipher_text: r.body.cipher_text, datakey_cipher_length: '64' }), 400, 'KMS.2201');
  });

  it('when the digest, the length or a field is wrong, then KMS.2103, KMS.2104, KMS.2102, KMS.2101 or KMS.1904', async () => {
    const { dek, plain_text } = dekInput(64);
    const badDigest = Buffer.concat([dek, sha256(Buffer.from('other'))]).toString('hex');
    const id = f.aes.key_id;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ key_id: id, plain_text: badDigest, datakey_plain_length: '64' }, 'KMS.2103'],
      [{ key_id: id, plain_text: dek.toString('hex'), datakey_plain_length: '64' }, 'KMS.2104'],
      [{ key_id: id, plain_text, datakey_plain_length: '32' }, 'KMS.2104'],
      [{ key_id: id, plain_text, datakey_plain_length: '63' }, 'KMS.2104'],
      [{ key_id: id, plain_text, datakey_plain_length: '0' }, 'KMS.2102'],
      [{ key_id: id, plain_text, datakey_plain_length: '1025' }, 'KMS.2102'],
      [{ key_id: id, plain_text, datakey_plain_length: 64 }, 'KMS.2102'],
      [{ key_id: id, plain_text, datakey_plain_length: 'x' }, 'KMS.2102'],
      [{ key_id: id, plain_text: 'xyz', datakey_plain_length: '64' }, 'KMS.2101'],
      [{ key_id: id, plain_text: `${plain_text}0`, datakey_plain_length: '64' }, 'KMS.2101'],
      [{ key_id: id, plain_text: 'ab'.repeat(1057), datakey_plain_length: '1024' }, 'KMS.2101'],
      [{ key_id: id, datakey_plain_length: '64' }, 'KMS.0204'],
      [{ key_id: id, plain_text }, 'KMS.0204'],
      [{ key_id: id, plain_text, datakey_plain_length: '64', encryption_context: 'a' }, 'KMS.0208'],
    ];
    for (const [body, code] of cases) assertError(await user('encrypt-datakey', body), 400, code);
    const rsaDek = dekInput(191);
    assertError(await user('encrypt-datakey', { key_id: f.rsa.key_id, plain_text: rsaDek.plain_text, datakey_plain_length: '191' }), 400, 'KMS.1904');
    assertError(await user('encrypt-datakey', { key_id: f.foreign.key_id, plain_text, datakey_plain_length: '64' }), 404, 'KMS.0207');
  });
});

describe('Huawei gen-random', () => {
  it('when 512 bits are asked for, then 128 upper-case hex characters, different each time', async () => {
    const a = await user('gen-random', { random_data_length: '512' });
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(Object.keys(a.body), ['random_data']);
    assert.match(a.body.random_data, /^[0-9A-F]{128}$/);
    const b = await user('gen-random', { random_data_length: '512', sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
    f.secrets.addHex(a.body.random_data);
    f.secrets.addHex(b.body.random_data);
    assert.notEqual(a.body.random_data, b.body.random_data);
  });

  it('when 8 or 8192 bits are asked for, then that many', async () => {
    for (const [bits, chars] of [['8', 2], ['8192', 2048], ['256', 64]] as const) {
      const r = await user('gen-random', { random_data_length: bits });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.random_data.length, chars);
      f.secrets.addHex(r.body.random_data);
    }
  });

  it('when the length is outside 8 to 8192 bits, not decimal, or not a multiple of 8, then KMS.1801 or KMS.1802', async () => {
    for (const random_data_length of ['0', '8200', '99999', 'abc', 512, '']) {
      assertError(await user('gen-random', { random_data_length }), 400, 'KMS.1801');
    }
    for (const random_data_length of ['12', '511']) assertError(await user('gen-random', { random_data_length }), 400, 'KMS.1802');
    assertError(await user('gen-random', {}), 400, 'KMS.0204');
    assertError(await user('gen-random', { random_data_length: '512', extra: true }), 400, 'KMS.0308');
  });
});

describe('Huawei crypto on disabled and pending-deletion keys', () => {
  it('when the key is disabled, then every crypto call is KMS.0209; after enable-key the old ciphertexts open', async () => {
    await refusedThenRecovered('disabled-data', 'KMS.0209', async (keyId) => {
      assert.equal((await hw.post('disable-key', { key_id: keyId })).status, 200);
    }, async (keyId) => {
      assert.equal((await hw.post('enable-key', { key_id: keyId })).status, 200);
    });
  });

  it('when the key is pending deletion, then every crypto call is KMS.0210; after cancelling and enabling the old ciphertexts open', async () => {
    await refusedThenRecovered('pending-data', 'KMS.0210', async (keyId) => {
      assert.equal((await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status, 200);
    }, async (keyId) => {
      assert.equal((await hw.post('cancel-key-deletion', { key_id: keyId })).status, 200);
      // Cancelled: disabled, so still refused until enabled.
      assertError(await user('encrypt-data', { key_id: keyId, plain_text: 'x' }), 400, 'KMS.0209');
      assert.equal((await hw.post('enable-key', { key_id: keyId })).status, 200);
    });
  });
});

async function refusedThenRecovered(alias: string, code: string, stop: (keyId: string) => Promise<void>, restore: (keyId: string) => Promise<void>): Promise<void> {
  const keyId = await hw.create(alias);
  const dataCipher = await hw.encrypt(keyId, `${alias} data text`);
  const { dek, plain_text } = dekInput(64);
  const sealed = await user('encrypt-datakey', { key_id: keyId, plain_text, datakey_plain_length: '64' });
  assert.equal(sealed.status, 200);
  await stop(keyId);
  const before = await hw.describe(keyId);
  const calls: Array<[string, Record<string, unknown>]> = [
    ['encrypt-data', { key_id: keyId, plain_text: 'x' }],
    ['decrypt-data', { cipher_text: dataCipher }],
    ['create-datakey', { key_id: keyId, datakey_length: '512' }],
    ['create-datakey-without-plaintext', { key_id: keyId, datakey_length: '512' }],
    ['encrypt-datakey', { key_id: keyId, plain_text, datakey_plain_length: '64' }],
    ['decrypt-datakey', { key_id: keyId, cipher_text: sealed.body.cipher_text, datakey_cipher_length: '64' }],
  ];
  for (const [action, body] of calls) assertError(await user(action, body), 400, code);
  assert.deepEqual(await hw.describe(keyId), before);
  await restore(keyId);
  assert.equal(await hw.decrypt(dataCipher), `${alias} data text`);
  const d = await user('decrypt-datakey', { key_id: keyId, cipher_text: sealed.body.cipher_text, datakey_cipher_length: '64' });
  assert.equal(d.body.data_key, upperHex(dek));
  assert.equal(await hw.decrypt(await hw.encrypt(keyId, 'works again after')), 'works again after');
}

describe('Huawei data logs', () => {
  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
