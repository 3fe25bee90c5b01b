import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IV_BYTES } from '../../src/kms/envelope/format';
import { randomIv } from '../../src/kms/envelope/iv';

describe('GCM IVs', () => {
  it('when many IVs are drawn across several batches, then each is 12 bytes, none repeats, and earlier ones do not change', () => {
    const ivs = Array.from({ length: 2000 }, () => randomIv());
    const snapshot = ivs.map((iv) => iv.toString('hex'));
    for (const iv of ivs) assert.equal(iv.length, IV_BYTES);
    assert.equal(new Set(snapshot).size, ivs.length, 'no IV handed out twice');
    for (let i = 0; i < 2000; i++) randomIv();
    assert.deepEqual(ivs.map((iv) => iv.toString('hex')), snapshot, 'a refill never rewrites an IV already handed out');
  });
});
