/**
 * Huawei signatures through HTTP: get-publickey, sign and verify with RSA_2048 keys. Every
 * signature is also checked outside the service with node:crypto against the exported public key.
 */
import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, randomBytes, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
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
const ALGORITHMS = ['RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512', 'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512'];
const hashOf = (alg: string): string => `sha${alg.slice(-3)}`;

async function publicKey(keyId: string): Promise<KeyObject> {
  const r = await user('get-publickey', { key_id: keyId });
  assert.equal(r.status, 200, r.text);
  return createPublicKey(r.body.public_key);
}

/** node:crypto's verdict on a signature over `message` (the original message, hashed here). */
function verifiedOutside(key: KeyObject, alg: string, message: Buffer, signature: Buffer): boolean {
  const pss = alg.startsWith('RSASSA_PSS');
  return nodeVerify(
    hashOf(alg),
    message,
    pss ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : { key, padding: constants.RSA_PKCS1_PADDING },
    signature,
  );
}

describe('Huawei get-publickey', () => {
  it('when an RSA key is asked, then key_id and a PEM SubjectPublicKeyInfo of a 2048-bit key', async () => {
    for (const ref of [f.rsa.key_id, 'alias/rsa-1']) {
      const r = await user('get-publickey', { key_id: ref, sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body).sort(), ['key_id', 'public_key']);
      assert.equal(r.body.key_id, f.rsa.key_id);
      assert.match(r.body.public_key, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/);
      const key = createPublicKey(r.body.public_key);
      assert.equal(key.asymmetricKeyType, 'rsa');
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    }
  });

  it('when the key is AES, unknown or another project\'s, then KMS.1115 or 404 KMS.0207', async () => {
    assertError(await user('get-publickey', { key_id: f.aes.key_id }), 400, 'KMS.1115');
    assertError(await user('get-publickey', { key_id: f.foreign.key_id }), 404, 'KMS.0207');
    assertError(await user('get-publickey', { key_id: '00000000-0000-4000-8000-000000000000' }), 404, 'KMS.0207');
    assertError(await user('get-publickey', {}), 400, 'KMS.0204');
  });
});

describe('Huawei sign and verify', () => {
  it('when each algorithm signs a RAW message, then node:crypto verifies it with the public key, and so does verify', async () => {
    const key = await publicKey(f.rsa.key_id);
    for (const signing_algorithm of ALGORITHMS) {
      const message = randomBytes(100);
      const r = await user('sign', { key_id: f.rsa.key_id, message: message.toString('base64'), signing_algorithm, message_type: 'RAW' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body).sort(), ['key_id', 'signature']);
      assert.equal(r.body.key_id, f.rsa.key_id);
      const signature = Buffer.from(r.body.signature, 'base64');
      assert.equal(signature.length, 256);
      assert.ok(verifiedOutside(key, signing_algorithm, message, signature), signing_algorithm);
      const v = await user('verify', { key_id: f.rsa.key_id, message: message.toString('base64'), signature: r.body.signature, signing_algorithm, message_type: 'RAW' });
      assert.equal(v.status, 200, v.text);
      assert.deepEqual(v.body, { key_id: f.rsa.key_id, signature_valid: 'true' });
    }
  });

  it('when each algorithm signs a DIGEST (the default message_type), then node:crypto verifies it over the original message', async () => {
    const key = await publicKey(f.rsa.key_id);
    for (const signing_algorithm of ALGORITHMS) {
      const original = randomBytes(500);
      const digest = createHash(hashOf(signing_algorithm)).update(original).digest();
      const r = await user('sign', { key_id: 'alias/rsa-1', message: digest.toString('base64'), signing_algorithm });
      assert.equal(r.status, 200, r.text);
      assert.ok(verifiedOutside(key, signing_algorithm, original, Buffer.from(r.body.signature, 'base64')), signing_algorithm);
      const v = await user('verify', { key_id: f.rsa.key_id, message: digest.toString('base64'), signature: r.body.signature, signing_algorithm, message_type: 'DIGEST' });
      assert.equal(v.body.signature_valid, 'true');
    }
  });

  it('when the message, the signature or the algorithm differs, then signature_valid "false"', async () => {
    const message = Buffer.from('signed text');
    const r = await user('sign', { key_id: f.rsa.key_id, message: message.toString('base64'), signing_algorithm: 'RSASSA_PSS_SHA_256', message_type: 'RAW' });
    const signature = Buffer.from(r.body.signature, 'base64');
    const flipped = Buffer.from(signature);
    flipped[10] = flipped[10]! ^ 1;
    const cases: Array<Record<string, unknown>> = [
      { message: Buffer.from('signed texT').toString('base64'), signature: r.body.signature, signing_algorithm: 'RSASSA_PSS_SHA_256' },
      { message: message.toString('base64'), signature: flipped.toString('base64'), signing_algorithm: 'RSASSA_PSS_SHA_256' },
      { message: message.toString('base64'), signature: signature.subarray(0, 128).toString('base64'), signing_algorithm: 'RSASSA_PSS_SHA_256' },
      { message: message.toString('base64'), signature: r.body.signature, signing_algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
      { message: message.toString('base64'), signature: r.body.signature, signing_algorithm: 'RSASSA_PSS_SHA_512' },
    ];
    for (const c of cases) {
      const v = await user('verify', { key_id: f.rsa.key_id, message_type: 'RAW', ...c });
      assert.equal(v.status, 200, v.text);
      assert.deepEqual(v.body, { key_id: f.rsa.key_id, signature_valid: 'false' });
    }
    const otherKey = await hw.create('sign-other', { key_spec: 'RSA_2048' });
    const v = await user('verify', { key_id: otherKey, message: message.toString('base64'), signature: r.body.signature, signing_algorithm: 'RSASSA_PSS_SHA_256', message_type: 'RAW' });
    assert.equal(v.body.signature_valid, 'false');
  });

  it('when the message is 4095 bytes it is signed; 4096 bytes, empty or not base64 are KMS.0308', async () => {
    const ok = await user('sign', { key_id: f.rsa.key_id, message: randomBytes(4095).toString('base64'), signing_algorithm: 'RSASSA_PSS_SHA_256', message_type: 'RAW' });
    assert.equal(ok.status, 200, ok.text);
    for (const message of [randomBytes(4096).toString('base64'), '', 'not base64!', 'QUJD=', 12]) {
      assertError(await user('sign', { key_id: f.rsa.key_id, message, signing_algorithm: 'RSASSA_PSS_SHA_256', message_type: 'RAW' }), 400, 'KMS.0308');
    }
  });

  it('when a field is wrong, then the vendor code: KMS.0204, KMS.0308, KMS.0332, KMS.0329', async () => {
    const digest = createHash('sha256').update('x').digest('base64');
    const id = f.rsa.key_id;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ key_id: id, message: digest }, 'KMS.0204'],
      [{ key_id: id, signing_algorithm: 'RSASSA_PSS_SHA_256' }, 'KMS.0204'],
      [{ message: digest, signing_algorithm: 'RSASSA_PSS_SHA_256' }, 'KMS.0204'],
      [{ key_id: id, message: digest, signing_algorithm: 'RSA_SHA_256' }, 'KMS.0308'],
      [{ key_id: id, message: digest, signing_algorithm: 'rsassa_pss_sha_256' }, 'KMS.0308'],
      [{ key_id: id, message: digest, signing_algorithm: 'ECDSA_SHA_256' }, 'KMS.0332'],
      [{ key_id: id, message: digest, signing_algorithm: 'SM2DSA_SM3' }, 'KMS.0332'],
      [{ key_id: id, message: digest, signing_algorithm: 'RSASSA_PSS_SHA_256', message_type: 'HASH' }, 'KMS.0308'],
      [{ key_id: id, message: digest, signing_algorithm: 'RSASSA_PSS_SHA_384' }, 'KMS.0329'],
      [{ key_id: id, message: digest, signing_algorithm: 'RSASSA_PKCS1_V1_5_SHA_512', message_type: 'DIGEST' }, 'KMS.0329'],
      [{ key_id: id, message: digest, signing_algorithm: 'RSASSA_PSS_SHA_256', extra: 1 }, 'KMS.0308'],
    ];
    for (const [body, code] of cases) assertError(await user('sign', body), 400, code);
    for (const signature of ['***', '', 7]) {
      assertError(await user('verify', { key_id: id, message: digest, signature, signing_algorithm: 'RSASSA_PSS_SHA_256' }), 400, 'KMS.0308');
    }
    assertError(await user('verify', { key_id: id, message: digest, signing_algorithm: 'RSASSA_PSS_SHA_256' }), 400, 'KMS.0204');
  });

  it('when the key is AES, encrypt-only, unknown or another project\'s, then KMS.1115, KMS.0334 or 404 KMS.0207', async () => {
    const body = { message: createHash('sha256').update('x').digest('base64'), signing_algorithm: 'RSASSA_PSS_SHA_256' };
    const sig = Buffer.alloc(256).toString('base64');
    assertError(await user('sign', { key_id: f.aes.key_id, ...body }), 400, 'KMS.1115');
    assertError(await user('verify', { key_id: f.aes.key_id, signature: sig, ...body }), 400, 'KMS.1115');
    const encOnly = await hw.create('rsa-encrypt-only', { key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    assertError(await user('sign', { key_id: encOnly, ...body }), 400, 'KMS.0334');
    assertError(await user('verify', { key_id: encOnly, signature: sig, ...body }), 400, 'KMS.0334');
    for (const keyId of [f.foreign.key_id, 'alias/aes-2', '00000000-0000-4000-8000-000000000000']) {
      assertError(await user('sign', { key_id: keyId, ...body }), 404, 'KMS.0207');
      assertError(await user('verify', { key_id: keyId, signature: sig, ...body }), 404, 'KMS.0207');
    }
  });

  it('when the key is disabled or pending deletion, then sign, verify and get-publickey are KMS.0209 or KMS.0210; re-enabled, old signatures verify', async () => {
    const keyId = await hw.create('sign-toggle', { key_spec: 'RSA_2048' });
    const message = Buffer.from('still valid later').toString('base64');
    const signed = await user('sign', { key_id: keyId, message, signing_algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', message_type: 'RAW' });
    assert.equal(signed.status, 200);
    const calls = (): Array<[string, Record<string, unknown>]> => [
      ['sign', { key_id: keyId, message, signing_algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', message_type: 'RAW' }],
      ['verify', { key_id: keyId, message, signature: signed.body.signature, signing_algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', message_type: 'RAW' }],
      ['get-publickey', { key_id: keyId }],
    ];
    assert.equal((await hw.post('disable-key', { key_id: keyId })).status, 200);
    for (const [action, body] of calls()) assertError(await user(action, body), 400, 'KMS.0209');
    assert.equal((await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status, 200);
    for (const [action, body] of calls()) assertError(await user(action, body), 400, 'KMS.0210');
    assert.equal((await hw.describe(keyId))['key_state'], '4');
    assert.equal((await hw.post('cancel-key-deletion', { key_id: keyId })).status, 200);
    assert.equal((await hw.post('enable-key', { key_id: keyId })).status, 200);
    const v = await user('verify', calls()[1]![1]);
    assert.equal(v.body.signature_valid, 'true');
    assert.ok(verifiedOutside(await publicKey(keyId), 'RSASSA_PKCS1_V1_5_SHA_256', Buffer.from('still valid later'), Buffer.from(signed.body.signature, 'base64')));
  });
});

describe('Huawei signing logs', () => {
  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
