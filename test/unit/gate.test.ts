import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Gate } from '../../src/hsm/gate';

describe('Gate', () => {
  it('when more jobs come than it lets through, then at most `limit` run at once, the rest start in arrival order, and failures free their slot', async () => {
    const gate = new Gate(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const jobs = Array.from({ length: 7 }, (_, i) =>
      gate.run(async () => {
        started.push(i);
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (i === 1) throw new Error('job 1 fails');
        return i;
      }),
    );
    const results = await Promise.allSettled(jobs);
    assert.equal(most, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(results[1]!.status, 'rejected');
    assert.deepEqual(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value), [0, 2, 3, 4, 5, 6]);
    assert.equal(await gate.run(async () => 'free again'), 'free again');
  });
});
