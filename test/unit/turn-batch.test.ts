import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnBatch } from '../../src/hsm/turn-batch';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('TurnBatch', () => {
  it('when jobs are queued in one turn, then none starts before the check phase, and they start in order, back to back', async () => {
    const b = new TurnBatch(true);
    const started: string[] = [];
    const job = (name: string) => () => {
      started.push(name);
      return Promise.resolve(name);
    };
    const all = Promise.all([b.run(job('a')), b.run(job('b')), b.run(job('c'))]);
    await Promise.resolve();
    assert.deepEqual(started, [], 'nothing ran in the turn that queued them');
    await nextTurn();
    assert.deepEqual(started, ['a', 'b', 'c']);
    assert.deepEqual(await all, ['a', 'b', 'c']);
  });

  it('when a job throws or rejects, then only its caller gets the error', async () => {
    const b = new TurnBatch(true);
    const thrown = b.run((): Promise<number> => {
      throw new Error('sync');
    });
    const rejected = b.run(() => Promise.reject(new Error('async')));
    const fine = b.run(() => Promise.resolve(7));
    await assert.rejects(thrown, /sync/);
    await assert.rejects(rejected, /async/);
    assert.equal(await fine, 7);
  });

  it('when a job is queued by a job of the running flush, then it runs in the next turn', async () => {
    const b = new TurnBatch(true);
    const order: string[] = [];
    let inner: Promise<void> | undefined;
    await b.run(async () => {
      order.push('outer');
      inner = b.run(async () => {
        order.push('inner');
      });
    });
    await inner;
    assert.deepEqual(order, ['outer', 'inner']);
  });

  it('when batching is off, then a job starts at once', async () => {
    const b = new TurnBatch(false);
    let ran = false;
    const p = b.run(async () => {
      ran = true;
    });
    assert.equal(ran, true);
    await p;
  });
});
