/**
 * One data dir, one server (issue 19): a second server on the same data dir and node id refuses to
 * start and names the PID holding the lock; another node id may run beside it; a lock left by a
 * killed server is taken over at once.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestServer } from '../helpers/server';

let first: TestServer;

before(async () => {
  first = await TestServer.start({ KMS_NODE_ID: 'node-a' });
});
after(async () => {
  await first?.stop();
});

describe('data dir lock', () => {
  it('when a second server starts on the same data dir and node id, then it refuses to start, naming the PID that holds the lock, and the first keeps serving', async () => {
    const refused = await TestServer.start({ KMS_NODE_ID: 'node-a' }, first.dataDir, { makeToken: false }).then(
      // Started after all: stopped again (its data dir is the first's), so a failing test doesn't leave it running.
      async (second) => {
        await second.stop({ keepData: true });
        return 'a second server started on the same data dir and node id';
      },
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    assert.match(refused, /server exited with 1/);
    assert.match(refused, new RegExp(`PID ${first.pid}\\b`));
    const health = await first.request('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.ok(existsSync(path.join(first.dataDir, 'server-node-a.lock')));
  });

  it('when a server with another node id starts on the same data dir, then it runs beside the first', async () => {
    const other = await TestServer.start({ KMS_NODE_ID: 'node-b' }, first.dataDir, { makeToken: false });
    try {
      assert.equal((await other.request('GET', '/healthz')).status, 200);
    } finally {
      await other.stop({ keepData: true });
    }
    assert.ok(!existsSync(path.join(first.dataDir, 'server-node-b.lock')), 'a clean stop removes its lock');
  });

  it('when the server holding the lock was killed, then the next one takes the lock over at once', async () => {
    const dir = first.dataDir;
    await first.kill('SIGKILL');
    assert.ok(existsSync(path.join(dir, 'server-node-a.lock')), 'left behind by the kill');
    first = await TestServer.start({ KMS_NODE_ID: 'node-a' }, dir, { makeToken: false });
    assert.equal((await first.request('GET', '/healthz')).status, 200);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.lock')), ['server-node-a.lock']);
  });
});
