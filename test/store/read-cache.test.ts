import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite';
import { ReadCache } from '../../src/store/read-cache';
import type { ApiTokenRecord, NewKeyRecord } from '../../src/store/store';

const dir = mkdtempSync(join(tmpdir(), 'p11kms-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function newKey(projectId: string): NewKeyRecord {
  const keyId = randomUUID();
  return {
    keyId,
    keyTag: keyId.replace(/-/g, '').slice(0, 20),
    projectId,
    alias: `k-${keyId.slice(0, 8)}`,
    description: '',
    spec: 'AES_256',
    usage: 'ENCRYPT_DECRYPT',
    convergent: false,
    createdAt: 1_000,
    rotationEnabled: false,
    rotationIntervalDays: 365,
  };
}

function token(id: string): ApiTokenRecord {
  return { id, projectId: 'p1', secretHash: Buffer.alloc(32, 7), admin: false, createdAt: 1, revokedAt: null, scopes: ['crypto'], expiresAt: null };
}

describe('store read cache', async () => {
  // Two connections to one file: the server's and the CLI's (or another worker's).
  const file = join(dir, 'kms.db');
  const server = new SqliteStore(file);
  const cli = new SqliteStore(file);
  after(async () => {
    await server.close();
    await cli.close();
  });

  it('when another connection revokes a token or disables a key, then the next read sees it', async () => {
    await cli.insertToken(token('t1'));
    const k = await cli.insertKey(newKey('p1'));
    assert.equal((await server.tokenById('t1'))?.revokedAt, null);
    assert.equal((await server.keyById(k.keyId))?.state, 'Enabled');
    assert.equal((await server.keyByTag(k.keyTag))?.state, 'Enabled');
    assert.equal((await server.version(k.keyId, 1))?.state, 'Enabled');
    // Read again: now from memory.
    assert.equal((await server.tokenById('t1'))?.revokedAt, null);

    assert.equal(await cli.revokeToken('t1', 5), true);
    assert.equal(await cli.transition(k.keyId, ['Enabled'], 'Disabled', 6), true);
    assert.equal(await cli.setVersionState(k.keyId, 1, 'Enabled', 'Disabled', 6), true);
    assert.equal((await server.tokenById('t1'))?.revokedAt, 5);
    assert.equal((await server.keyById(k.keyId))?.state, 'Disabled');
    assert.equal((await server.keyByTag(k.keyTag))?.state, 'Disabled');
    assert.equal((await server.version(k.keyId, 1))?.state, 'Disabled');
  });

  it('when a miss was cached and another connection inserts the row, then the next read finds it', async () => {
    assert.equal(await server.tokenById('t2'), undefined);
    await cli.insertToken(token('t2'));
    assert.equal((await server.tokenById('t2'))?.id, 't2');
  });

  it('when the same connection writes, then its own next read sees the write', async () => {
    const k = await server.insertKey(newKey('p1'));
    assert.equal((await server.keyById(k.keyId))?.state, 'Enabled');
    assert.equal(await server.transition(k.keyId, ['Enabled'], 'Disabled', 7), true);
    assert.equal((await server.keyById(k.keyId))?.state, 'Disabled');
    await server.updateKey(k.keyId, { description: 'changed' });
    assert.equal((await server.keyById(k.keyId))?.description, 'changed');
  });

  it('when a transaction is rolled back, then nothing read inside it is remembered', async () => {
    const k = await server.insertKey(newKey('p1'));
    assert.equal(await server.claimVersion(k.keyId, 2, 10), true);
    assert.equal(await server.transition(k.keyId, ['Enabled'], 'Disabled', 11), true);
    // The key left Enabled: promotion rolls back.
    assert.equal(await server.promoteVersion(k.keyId, 2, 12), false);
    assert.equal((await server.keyById(k.keyId))?.currentVersion, 1);
    assert.equal((await server.version(k.keyId, 2))?.state, 'Creating');
  });

  it('when records come from the cache, then they are frozen (a caller cannot change what the next request reads)', async () => {
    await server.insertToken(token('t3'));
    const t = (await server.tokenById('t3'))!;
    assert.equal(Object.isFrozen(await server.tokenById('t3')), true);
    assert.throws(() => {
      (t as { projectId: string }).projectId = 'other';
    }, TypeError);
  });
});

describe('ReadCache', () => {
  it('answers from memory while data_version stays, reloads when it moves, and drops everything when full', () => {
    let version = 1;
    let loads = 0;
    const c = new ReadCache(() => version, () => false, 3);
    const load = (v: string) => () => {
      loads++;
      return { v };
    };
    c.get('a', load('a1'));
    assert.deepEqual(c.get('a', load('a2')), { v: 'a1' });
    assert.equal(loads, 1);
    version = 2;
    assert.deepEqual(c.get('a', load('a3')), { v: 'a3' });
    assert.equal(loads, 2);
    c.get('b', load('b'));
    c.get('c', load('c'));
    assert.equal(c.size, 3);
    c.get('d', load('d'));
    assert.equal(c.size, 1);
  });

  it('never caches inside a transaction', () => {
    let loads = 0;
    const c = new ReadCache(() => 1, () => true);
    c.get('a', () => ({ n: ++loads }));
    c.get('a', () => ({ n: ++loads }));
    assert.equal(loads, 2);
    assert.equal(c.size, 0);
  });
});
