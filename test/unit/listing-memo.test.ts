/** What a listing remembers of each handle: new handles only are read, gone ones forgotten, all of it forgotten when old or after a re-initialisation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ObjectHandle } from '../../src/hsm/binding';
import { hex, ListingMemo } from '../../src/hsm/listing-memo';

const h = (n: number): ObjectHandle => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n);
  return b as ObjectHandle;
};
const read = (entries: Array<[number, string | null]>): Map<string, string | null> => new Map(entries.map(([n, v]) => [hex(h(n)), v]));

describe('listing memo', () => {
  it('when a listing follows another, then only new handles are unknown, and what was read before is answered again', () => {
    const memo = new ListingMemo<string>(60_000, () => 0);
    assert.deepEqual(memo.unknown(1, [h(1), h(2), h(3)]), [h(1), h(2), h(3)]);
    assert.deepEqual(memo.settle([h(1), h(2), h(3)], read([[1, 'a'], [2, null], [3, 'c']]), true), ['a', 'c']);
    assert.deepEqual(memo.unknown(1, [h(1), h(2), h(3), h(4)]), [h(4)]);
    assert.deepEqual(memo.settle([h(1), h(2), h(3), h(4)], read([[4, 'd']]), true), ['a', 'c', 'd']);
    assert.equal(memo.size, 4, 'the object that is not ours is remembered as such');
  });

  it('when a handle is no longer found, or was destroyed before it was read, then it is left out and forgotten', () => {
    const memo = new ListingMemo<string>(60_000, () => 0);
    memo.unknown(1, [h(1), h(2)]);
    memo.settle([h(1), h(2)], read([[1, 'a'], [2, 'b']]), true);
    assert.deepEqual(memo.unknown(1, [h(2), h(5)]), [h(5)]);
    assert.deepEqual(memo.settle([h(2), h(5)], read([]), true), ['b'], '5 was destroyed between the search and the read');
    assert.equal(memo.size, 1);
    assert.deepEqual(memo.unknown(1, [h(1), h(2)]), [h(1)], 'a handle gone once is read again if it is ever found again');
  });

  it('when the module was re-initialised, or the memo is older than its limit, then every handle is read again', () => {
    let now = 0;
    const memo = new ListingMemo<string>(60_000, () => now);
    memo.unknown(1, [h(1)]);
    memo.settle([h(1)], read([[1, 'a']]), true);
    assert.deepEqual(memo.unknown(2, [h(1)]), [h(1)], 'a new generation');
    memo.settle([h(1)], read([[1, 'a']]), true);
    now = 59_999;
    assert.deepEqual(memo.unknown(2, [h(1)]), []);
    memo.settle([h(1)], read([]), true);
    now = 60_000;
    assert.deepEqual(memo.unknown(2, [h(1)]), [h(1)], 'an hour-old memo');
  });

  it('when a listing is not to be remembered (the module was re-initialised meanwhile), then it is answered and nothing is kept', () => {
    const memo = new ListingMemo<string>(60_000, () => 0);
    memo.unknown(1, [h(1)]);
    assert.deepEqual(memo.settle([h(1)], read([[1, 'a']]), false), ['a']);
    assert.equal(memo.size, 0);
    assert.deepEqual(memo.unknown(1, [h(1)]), [h(1)]);
  });
});
