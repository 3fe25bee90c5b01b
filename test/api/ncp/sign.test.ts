import assert from 'node:assert/strict';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
import { b64, badRequest, Ncp, notFound, versionOf, wrongState } from './client';

let f: Fixture;
let ncp: Ncp;
before(async () => {
  f = await fixture();
  ncp = new Ncp(f);
});
after(async () => {
  await f?.server.stop();
});

const sign = async (tag: string, data: string): Promise<string> => {
  const r = await ncp.action(tag, 'sign', { data }, f.user);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body.data), ['signature']);
  return r.body.data.signature;
};
const verify = async (tag: string, data: string, signature: string): Promise<boolean> => {
  const r = await ncp.action(tag, 'verify', { data, signature }, f.user);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body.data), ['valid']);
  assert.equal(typeof r.body.data.valid, 'boolean');
  return r.body.data.valid;
};
const pubKey = async (tag: string, body: unknown = {}): Promise<string> => {
  const r = await ncp.action(tag, 'get-pub-key', body, f.user);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body.data), ['publicKey']);
  return r.body.data.publicKey;
};
const sigBytes = (signature: string) => Buffer.from(signature.replace(/^ncpkms:v\d+:/, ''), 'base64');

describe('NCP sign and verify', () => {
  it('when data is signed, then the signature is ncpkms:v1: + 256 bytes and verifies', async () => {
    const data = b64('contract #1');
    const sig = await sign(f.rsa.keyTag, data);
    assert.match(sig, /^ncpkms:v1:[A-Za-z0-9+/]+=*$/);
    assert.equal(sigBytes(sig).length, 256);
    assert.equal(await verify(f.rsa.keyTag, data, sig), true);
    // PKCS#1 v1.5 is deterministic.
    assert.equal(await sign(f.rsa.keyTag, data), sig);
  });

  it('when the data, the signature or the key differs, then valid is false', async () => {
    const data = b64('contract #2');
    const sig = await sign(f.rsa.keyTag, data);
    assert.equal(await verify(f.rsa.keyTag, b64('contract #3'), sig), false);
    const flipped = sigBytes(sig);
    flipped[10] = flipped[10]! ^ 1;
    assert.equal(await verify(f.rsa.keyTag, data, `ncpkms:v1:${flipped.toString('base64')}`), false);
    assert.equal(await verify(f.rsa.keyTag, data, `ncpkms:v1:${sigBytes(sig).subarray(1).toString('base64')}`), false);
    assert.equal(await verify(f.rsa.keyTag, data, 'ncpkms:v1:AAAA'), false);
    const other = await ncp.create({ keyName: 'signer-2', keyType: 'RSA2048' });
    assert.equal(await verify(other.keyTag, data, sig), false);
  });

  it('when data is at the 8 KB limit, then it is signed; one byte more is 400', async () => {
    const data = b64(Buffer.alloc(8 * 1024, 7));
    assert.equal(await verify(f.rsa.keyTag, data, await sign(f.rsa.keyTag, data)), true);
    badRequest(await ncp.action(f.rsa.keyTag, 'sign', { data: b64(Buffer.alloc(8 * 1024 + 1, 7)) }, f.user));
  });

  it('when the public key is exported, then node:crypto verifies the signature outside the service', async () => {
    const pem = await pubKey(f.rsa.keyTag);
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/);
    const key = createPublicKey(pem);
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    const data = Buffer.from('signed inside, checked outside');
    const sig = sigBytes(await sign(f.rsa.keyTag, b64(data)));
    assert.equal(nodeVerify('sha256', data, pem, sig), true);
    assert.equal(nodeVerify('sha256', Buffer.from('something else'), pem, sig), false);
    assert.equal(await pubKey(f.rsa.keyTag, { keyVersion: 1 }), pem);
  });

  it('when the key is AES256, then sign, verify and get-pub-key are 400 INVALID_REQUEST', async () => {
    const sig = await sign(f.rsa.keyTag, b64('x'));
    badRequest(await ncp.action(f.aes.keyTag, 'sign', { data: b64('x') }, f.user));
    badRequest(await ncp.action(f.aes.keyTag, 'verify', { data: b64('x'), signature: sig }, f.user));
    badRequest(await ncp.action(f.aes.keyTag, 'get-pub-key', {}, f.user));
  });

  it('when any field has a wrong type, length or encoding, then 400 INVALID_REQUEST', async () => {
    const sig = await sign(f.rsa.keyTag, b64('x'));
    const badSign: unknown[] = [{}, { data: '' }, { data: 5 }, { data: 'not base64' }, { data: 'QR==' }, { data: ['QUJD'] }, { data: 'QUJD', x: 1 }, []];
    for (const body of badSign) badRequest(await ncp.action(f.rsa.keyTag, 'sign', body, f.user));
    const badVerify: unknown[] = [
      {},
      { data: b64('x') },
      { signature: sig },
      { data: b64('x'), signature: '' },
      { data: b64('x'), signature: sig.slice('ncpkms:v1:'.length) },
      { data: b64('x'), signature: 'ncpkms:v0:AAAA' },
      { data: b64('x'), signature: 'ncpkms:v1:!!!!' },
      { data: b64('x'), signature: 'ncpkms:v1:QR==' },
      { data: b64('x'), signature: 'ncpkms:v1:AAA' },
      { data: b64('x'), signature: sig.replace('ncpkms:v1:', 'ncpkms:v9:') },
      { data: b64('x'), signature: 'ncpkms:v1:' + 'A'.repeat(1100) },
      { data: b64('x'), signature: [sig] },
      { data: 'not base64', signature: sig },
      { data: b64('x'), signature: sig, extra: 1 },
    ];
    for (const body of badVerify) badRequest(await ncp.action(f.rsa.keyTag, 'verify', body, f.user));
    for (const body of [{ keyVersion: 0 }, { keyVersion: 101 }, { keyVersion: '1' }, { keyVersion: 1.5 }, { keyVersion: 2 }, { version: 1 }, []]) {
      badRequest(await ncp.action(f.rsa.keyTag, 'get-pub-key', body, f.user));
    }
  });

  it('when the keyTag is another project\'s or unknown, then NOT_FOUND', async () => {
    const sig = await sign(f.rsa.keyTag, b64('x'));
    for (const tag of [f.foreign.keyTag, '0'.repeat(64)]) {
      notFound(await ncp.action(tag, 'sign', { data: b64('x') }, f.user));
      notFound(await ncp.action(tag, 'verify', { data: b64('x'), signature: sig }, f.user));
      notFound(await ncp.action(tag, 'get-pub-key', {}, f.user));
    }
    notFound(await ncp.action(f.rsa.keyTag, 'sign', { data: b64('x') }, f.other));
  });
});

describe('NCP signatures across rotation', () => {
  it('when an RSA key is rotated, then new signatures name v2, old ones still verify, and each version has its public key', async () => {
    const key = await ncp.create({ keyName: 'signer-3', keyType: 'RSA2048' });
    const data = b64('ledger page');
    const old = await sign(key.keyTag, data);
    const pem1 = await pubKey(key.keyTag);
    assert.equal((await ncp.action(key.keyTag, 'rotate')).status, 200);
    const fresh = await sign(key.keyTag, data);
    assert.equal(versionOf(old), 1);
    assert.equal(versionOf(fresh), 2);
    assert.notEqual(sigBytes(fresh).toString('base64'), sigBytes(old).toString('base64'));
    assert.equal(await verify(key.keyTag, data, old), true);
    assert.equal(await verify(key.keyTag, data, fresh), true);
    // The prefix picks the version: a v2 signature labelled v1 does not verify.
    assert.equal(await verify(key.keyTag, data, fresh.replace('ncpkms:v2:', 'ncpkms:v1:')), false);
    const pem2 = await pubKey(key.keyTag);
    assert.equal(await pubKey(key.keyTag, { keyVersion: 2 }), pem2);
    assert.equal(await pubKey(key.keyTag, { keyVersion: 1 }), pem1);
    assert.equal(nodeVerify('sha256', Buffer.from('ledger page'), pem1, sigBytes(old)), true);
    assert.equal(nodeVerify('sha256', Buffer.from('ledger page'), pem2, sigBytes(fresh)), true);

    // A disabled version neither verifies nor exports its public key.
    assert.equal((await ncp.action(key.keyTag, 'versions/1/disable')).status, 200);
    wrongState(await ncp.action(key.keyTag, 'verify', { data, signature: old }, f.user));
    wrongState(await ncp.action(key.keyTag, 'get-pub-key', { keyVersion: 1 }, f.user));
    assert.equal(await verify(key.keyTag, data, fresh), true);
    assert.equal((await ncp.action(key.keyTag, 'versions/1/enable')).status, 200);
    assert.equal(await verify(key.keyTag, data, old), true);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
