import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { KmsError } from '../../src/errors/kms-error';
import { contextFromObject } from '../../src/kms/envelope/context';
import { aad, decodeEnvelope, encodeEnvelope, encodeHeader, type Envelope } from '../../src/kms/envelope/format';

const keyId = randomUUID();
const aes: Envelope = { alg: 'aes-gcm', contents: 'data', keyId, keyVersion: 3, iv: Buffer.alloc(12, 1), sealed: Buffer.alloc(80, 2) };
const rsa: Envelope = { ...aes, alg: 'rsa-oaep-hybrid', wrappedKey: Buffer.alloc(256, 3) };

function rejects(b: Buffer): void {
  assert.throws(() => decodeEnvelope(b), (e: unknown) => e instanceof KmsError && e.code === 'InvalidCiphertext');
}

describe('envelope format', () => {
  it('when an envelope is encoded and decoded, then every field survives', () => {
    for (const e of [aes, rsa, { ...aes, contents: 'data-key' } as const, { ...rsa, contents: 'unmarked' } as const]) {
      const back = decodeEnvelope(encodeEnvelope(e));
      assert.deepEqual({ ...back }, { ...e });
    }
  });

  it('when the envelope is truncated anywhere, then it is rejected before any token call', () => {
    const full = encodeEnvelope(rsa);
    for (const cut of [0, 1, 21, 22, 23, 24, 22 + 2 + 255, 22 + 2 + 256 + 12 + 16]) rejects(full.subarray(0, cut));
    rejects(encodeEnvelope(aes).subarray(0, 22 + 12 + 16));
  });

  it('when the format version, algorithm, key version or wrapped-key length is foreign, then it is rejected', () => {
    const good = encodeEnvelope(rsa);
    const mutate = (at: number, value: number, width: 1 | 2 | 4 = 1) => {
      const b = Buffer.from(good);
      b.writeUIntBE(value, at, width);
      return b;
    };
    rejects(mutate(0, 0));
    rejects(mutate(0, 3));
    rejects(mutate(1, 0));
    rejects(mutate(1, 9));
    rejects(mutate(2, 0));
    rejects(mutate(2, 3));
    rejects(mutate(19, 0, 4));
    rejects(mutate(23, 255, 2));
    rejects(mutate(23, 257, 2));
  });

  it('when an envelope holds a data key, then its header says so (format 2), inside the additional data', () => {
    const data = encodeEnvelope(aes);
    const dataKey = encodeEnvelope({ ...aes, contents: 'data-key' });
    assert.equal(data[0], 2);
    assert.equal(data[2], 1);
    assert.equal(dataKey[2], 2);
    assert.notDeepEqual(aad(encodeHeader(aes), Buffer.alloc(0)), aad(encodeHeader({ ...aes, contents: 'data-key' }), Buffer.alloc(0)));
  });

  it('when a format 1 envelope (no contents byte) is decoded, then it reads as unmarked, with its 22-byte header as additional data', () => {
    const v1 = Buffer.alloc(22 + 12 + 20);
    v1.writeUInt8(1, 0);
    v1.writeUInt8(1, 1);
    v1.write(keyId.replace(/-/g, ''), 2, 16, 'hex');
    v1.writeUInt32BE(7, 18);
    const e = decodeEnvelope(v1);
    assert.equal(e.contents, 'unmarked');
    assert.equal(e.keyId, keyId);
    assert.equal(e.keyVersion, 7);
    assert.deepEqual(encodeHeader(e), v1.subarray(0, 22));
  });

  it('when the key id is not a lower-case UUID, then the header refuses it', () => {
    assert.throws(() => encodeHeader({ alg: 'aes-gcm', contents: 'data', keyId: 'not-a-uuid', keyVersion: 1 }));
    assert.throws(() => encodeHeader({ alg: 'aes-gcm', contents: 'data', keyId, keyVersion: 0 }));
  });

  it('when contexts differ only in where one field ends, then the additional data differs', () => {
    const h = encodeHeader(aes);
    assert.notDeepEqual(aad(h, contextFromObject({ a: 'bc' })), aad(h, contextFromObject({ ab: 'c' })));
    assert.notDeepEqual(aad(h, Buffer.from('x')), aad(h, Buffer.alloc(0)));
  });
});

describe('encryption context', () => {
  it('when keys come in another order, then the bytes are the same', () => {
    assert.deepEqual(contextFromObject({ b: '2', a: '1', n: { y: 1, x: [1, 'z'] } }), contextFromObject({ n: { x: [1, 'z'], y: 1 }, a: '1', b: '2' }));
  });

  it('when the context is empty or absent, then there is no context', () => {
    assert.equal(contextFromObject({}).length, 0);
    assert.equal(contextFromObject(undefined).length, 0);
  });
});
