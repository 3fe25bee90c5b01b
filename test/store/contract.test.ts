/**
 * The MetadataStore contract, run against both stores: SQLite (a file) and PostgreSQL (a real
 * server started by the test, helpers/postgres.ts). Two store objects on one database stand for two
 * processes or nodes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgStore } from '../../src/store/postgres';
import { SqliteStore } from '../../src/store/sqlite';
import { AliasTaken, StoreUnavailable, type ApiTokenRecord, type GrantRecord, type MetadataStore, type NewKeyRecord } from '../../src/store/store';
import { TestPostgres } from '../helpers/postgres';

const DAY_MS = 86_400_000;

function newKey(projectId: string, alias = `k-${randomUUID().slice(0, 8)}`, createdAt = 1_000): NewKeyRecord {
  const keyId = randomUUID();
  return {
    keyId,
    keyTag: keyId.replace(/-/g, ''),
    projectId,
    alias,
    description: '',
    spec: 'AES_256',
    usage: 'ENCRYPT_DECRYPT',
    convergent: false,
    createdAt,
    rotationEnabled: false,
    rotationIntervalDays: 365,
  };
}

function token(id: string, projectId = 'p1', createdAt = 1): ApiTokenRecord {
  return { id, projectId, secretHash: Buffer.alloc(32, 7), admin: false, createdAt, revokedAt: null, scopes: ['crypto', 'read'], expiresAt: null };
}

/** Waits until `ok()` holds (the other node hears of a change through the database's change feed). */
async function eventually(what: string, ok: () => Promise<boolean>, withinMs = 1_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `${what} within ${withinMs} ms`);
    await sleep(10);
  }
}

interface Kind {
  readonly name: string;
  /** Two stores on one fresh database. */
  open(): Promise<[MetadataStore, MetadataStore]>;
  cleanup(): void;
}

let pgServer: TestPostgres | undefined;
const sqliteDir = mkdtempSync(join(tmpdir(), 'p11kms-contract-'));
after(() => pgServer?.destroy());

const KINDS: Kind[] = [
  {
    name: 'SQLite',
    open: async () => {
      const file = join(sqliteDir, `${randomUUID()}.db`);
      return [new SqliteStore(file), new SqliteStore(file)];
    },
    cleanup: () => rmSync(sqliteDir, { recursive: true, force: true }),
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      pgServer ??= TestPostgres.start();
      const url = await pgServer.createDatabase('contract');
      const a = new PgStore(url);
      await a.listTokens(); // migrate before the second opens
      return [a, new PgStore(url)];
    },
    cleanup: () => undefined,
  },
];

for (const kind of KINDS) {
  describe(`metadata store contract: ${kind.name}`, () => {
    let s: MetadataStore;
    let other: MetadataStore;
    before(async () => {
      [s, other] = await kind.open();
    });
    after(async () => {
      await s?.close();
      await other?.close();
      kind.cleanup();
    });

    it('when a key is inserted, then it is found by id, tag and alias, Enabled at version 1', async () => {
      const k = await s.insertKey(newKey('p1', 'find-me'));
      assert.equal(k.state, 'Enabled');
      assert.equal(k.currentVersion, 1);
      assert.equal((await s.keyById(k.keyId))?.keyTag, k.keyTag);
      assert.equal((await s.keyByTag(k.keyTag))?.keyId, k.keyId);
      assert.equal((await s.keyByAlias('p1', 'find-me'))?.keyId, k.keyId);
      assert.equal(await s.keyByAlias('p2', 'find-me'), undefined);
      assert.deepEqual((await s.versions(k.keyId)).map((v) => [v.version, v.state]), [[1, 'Enabled']]);
      assert.equal(await s.keyById(randomUUID()), undefined);
    });

    it('when an alias is taken by a live key of the project, then AliasTaken; once that key is Deleted it may be used again', async () => {
      const k = await s.insertKey(newKey('p1', 'dup'));
      await assert.rejects(s.insertKey(newKey('p1', 'dup')), AliasTaken);
      await s.insertKey(newKey('p2', 'dup')); // another project
      const other2 = await s.insertKey(newKey('p1', 'dup-2'));
      await assert.rejects(s.updateKey(other2.keyId, { alias: 'dup' }), AliasTaken);
      assert.equal(await s.transition(k.keyId, ['Enabled'], 'PendingDeletion', 2, 3), true);
      assert.equal(await s.transition(k.keyId, ['PendingDeletion'], 'Deleted', 4), true);
      const again = await s.insertKey(newKey('p1', 'dup'));
      assert.equal((await s.keyByAlias('p1', 'dup'))?.keyId, again.keyId);
    });

    it('when keys are listed, then live keys of the project in creation order, paged, optionally by state, with the total', async () => {
      const keys = [];
      for (let i = 0; i < 5; i++) keys.push(await s.insertKey(newKey('list')));
      await s.transition(keys[1]!.keyId, ['Enabled'], 'Disabled', 5);
      await s.transition(keys[2]!.keyId, ['Enabled'], 'PendingDeletion', 5, 10);
      await s.transition(keys[2]!.keyId, ['PendingDeletion'], 'Deleted', 6);
      const page1 = await s.listKeys('list', { offset: 0, limit: 2 });
      assert.equal(page1.total, 4);
      assert.deepEqual(page1.keys.map((k) => k.keyId), [keys[0]!.keyId, keys[1]!.keyId]);
      const page2 = await s.listKeys('list', { offset: 2, limit: 2 });
      assert.deepEqual(page2.keys.map((k) => k.keyId), [keys[3]!.keyId, keys[4]!.keyId]);
      const disabled = await s.listKeys('list', { state: 'Disabled', offset: 0, limit: 10 });
      assert.deepEqual(disabled.keys.map((k) => k.keyId), [keys[1]!.keyId]);
      assert.equal(disabled.total, 1);
      assert.ok(keys[1]!.num > keys[0]!.num, 'numbers grow');
    });

    it('when keys are counted, then every state is counted over all projects (zero included)', async () => {
      const before = await s.keyCounts();
      const a = await s.insertKey(newKey('count-a'));
      const b = await s.insertKey(newKey('count-b'));
      await s.insertKey(newKey('count-b'));
      await s.transition(a.keyId, ['Enabled'], 'Disabled', 5);
      await s.transition(b.keyId, ['Enabled'], 'PendingDeletion', 5, 10);
      const after = await s.keyCounts();
      assert.deepEqual(Object.keys(after).sort(), ['Deleted', 'Disabled', 'Enabled', 'PendingDeletion']);
      assert.equal(after.Enabled - before.Enabled, 1);
      assert.equal(after.Disabled - before.Disabled, 1);
      assert.equal(after.PendingDeletion - before.PendingDeletion, 1);
      assert.equal(after.Deleted - before.Deleted, 0);
    });

    it('when a transition names states the key is not in, then it does not happen and reports false', async () => {
      const k = await s.insertKey(newKey('p1'));
      assert.equal(await s.transition(k.keyId, ['Disabled'], 'Enabled', 2), false);
      assert.equal(await s.transition(k.keyId, ['Enabled', 'Disabled'], 'PendingDeletion', 3, 99), true);
      const pending = (await s.keyById(k.keyId))!;
      assert.equal(pending.state, 'PendingDeletion');
      assert.equal(pending.deletionDate, 99);
      assert.equal(pending.stateChangedAt, 3);
      assert.equal(await s.transition(k.keyId, ['Enabled', 'Disabled'], 'PendingDeletion', 4, 100), false);
      assert.equal(await s.transition(k.keyId, ['PendingDeletion'], 'Disabled', 5, null), true);
      assert.equal((await s.keyById(k.keyId))?.deletionDate, null);
    });

    it('when a key is updated, then alias, description and rotation settings change', async () => {
      const k = await s.insertKey(newKey('p1'));
      await s.updateKey(k.keyId, { description: 'd', rotationEnabled: true, rotationIntervalDays: 30 });
      await s.updateKey(k.keyId, {});
      const u = (await s.keyById(k.keyId))!;
      assert.deepEqual([u.description, u.rotationEnabled, u.rotationIntervalDays], ['d', true, 30]);
    });

    it('when versions are claimed, then one caller wins each number; promotion needs the previous version current and the key Enabled', async () => {
      const k = await s.insertKey(newKey('p1'));
      assert.equal(await s.claimVersion(k.keyId, 2, 10), true);
      assert.equal(await other.claimVersion(k.keyId, 2, 10), false, 'the other node loses the race');
      assert.equal((await s.version(k.keyId, 2))?.state, 'Creating');
      assert.equal(await s.promoteVersion(k.keyId, 2, 11), true);
      const r = (await s.keyById(k.keyId))!;
      assert.deepEqual([r.currentVersion, r.rotationCount, r.lastRotationAt], [2, 1, 11]);
      // A claim of a number that skips one can't be promoted (versions stay contiguous).
      assert.equal(await s.claimVersion(k.keyId, 4, 12), true);
      assert.equal(await s.promoteVersion(k.keyId, 4, 12), false);
      assert.equal((await s.keyById(k.keyId))?.currentVersion, 2);
      assert.equal(await s.dropVersion(k.keyId, 4), true);
      // Disabled meanwhile: the promotion rolls back entirely.
      assert.equal(await s.claimVersion(k.keyId, 3, 13), true);
      await s.transition(k.keyId, ['Enabled'], 'Disabled', 14);
      assert.equal(await s.promoteVersion(k.keyId, 3, 15), false);
      assert.equal((await s.version(k.keyId, 3))?.state, 'Creating');
      assert.equal((await s.keyById(k.keyId))?.currentVersion, 2);
      assert.equal(await s.dropVersion(k.keyId, 3), true);
      assert.equal(await s.dropVersion(k.keyId, 2), false, 'a promoted version is never dropped');
      assert.deepEqual((await s.versions(k.keyId)).map((v) => v.version), [1, 2]);
    });

    it('when a version state is set, then only from the named state', async () => {
      const k = await s.insertKey(newKey('p1'));
      assert.equal(await s.setVersionState(k.keyId, 1, 'Disabled', 'Enabled', 2), false);
      assert.equal(await s.setVersionState(k.keyId, 1, 'Enabled', 'Disabled', 2), true);
      assert.equal((await s.version(k.keyId, 1))?.state, 'Disabled');
    });

    it('when the sweep asks, then due deletions, unpurged keys, due rotations, stale claims and live versions are listed', async () => {
      const due = await s.insertKey(newKey('sweep'));
      await s.transition(due.keyId, ['Enabled'], 'PendingDeletion', 1, 50);
      const notYet = await s.insertKey(newKey('sweep'));
      await s.transition(notYet.keyId, ['Enabled'], 'PendingDeletion', 1, 500);
      const ids = (await s.dueForDeletion(100)).map((k) => k.keyId);
      assert.ok(ids.includes(due.keyId) && !ids.includes(notYet.keyId));

      await s.transition(due.keyId, ['PendingDeletion'], 'Deleted', 100);
      assert.ok((await s.unpurged()).some((k) => k.keyId === due.keyId));
      await s.markPurged(due.keyId);
      assert.ok(!(await s.unpurged()).some((k) => k.keyId === due.keyId));

      const rot = await s.insertKey({ ...newKey('sweep', undefined, 0), rotationEnabled: true, rotationIntervalDays: 1 });
      assert.ok(!(await s.dueForRotation(DAY_MS - 1)).some((k) => k.keyId === rot.keyId));
      assert.ok((await s.dueForRotation(DAY_MS)).some((k) => k.keyId === rot.keyId));

      await s.claimVersion(rot.keyId, 2, 1_000);
      assert.ok((await s.staleCreating(1_001)).some((v) => v.keyId === rot.keyId && v.version === 2));
      assert.ok(!(await s.staleCreating(1_000)).some((v) => v.keyId === rot.keyId));
      const live = await s.liveVersions();
      assert.ok(live.some((v) => v.keyId === rot.keyId && v.version === 1));
      assert.ok(!live.some((v) => v.keyId === rot.keyId && v.version === 2), 'Creating is not live');
      assert.ok(!live.some((v) => v.keyId === due.keyId), 'Deleted is not live');
    });

    it('when tags are set, overwritten and deleted, then key and project listings follow', async () => {
      const a = await s.insertKey(newKey('tags'));
      const b = await s.insertKey(newKey('tags'));
      await s.setTag(a.keyId, { key: 'env', value: 'prod' });
      await s.setTag(a.keyId, { key: 'env', value: 'dev' });
      await s.setTag(a.keyId, { key: 'Team', value: 'x' });
      await s.setTag(b.keyId, { key: 'env', value: 'prod' });
      assert.deepEqual(await s.tags(a.keyId), [{ key: 'Team', value: 'x' }, { key: 'env', value: 'dev' }]);
      assert.deepEqual(await s.projectTags('tags'), [{ key: 'Team', values: ['x'] }, { key: 'env', values: ['dev', 'prod'] }]);
      assert.equal(await s.deleteTag(a.keyId, 'env'), true);
      assert.equal(await s.deleteTag(a.keyId, 'env'), false);
      assert.deepEqual(await s.tags(a.keyId), [{ key: 'Team', value: 'x' }]);
    });

    it('when tokens are inserted and revoked, then lists are in creation order and a revocation happens once', async () => {
      await s.insertToken(token('ta', 'tok', 2));
      await s.insertToken({ ...token('tb', 'tok', 1), admin: true, scopes: ['admin', 'crypto', 'read'], expiresAt: 77 });
      assert.deepEqual((await s.listTokens('tok')).map((t) => t.id), ['tb', 'ta']);
      const tb = (await s.tokenById('tb'))!;
      assert.deepEqual([tb.admin, tb.scopes, tb.expiresAt, tb.secretHash.length], [true, ['admin', 'crypto', 'read'], 77, 32]);
      assert.equal(await s.revokeToken('ta', 9), true);
      assert.equal(await s.revokeToken('ta', 10), false);
      assert.equal(await s.revokeToken('nope', 10), false);
      assert.equal((await s.tokenById('ta'))?.revokedAt, 9);
    });

    it('when grants are made, then they are listed per key and retirer, checked per operation, and deleted once', async () => {
      const k = await s.insertKey(newKey('owner'));
      const g = { grantId: randomUUID(), keyId: k.keyId, ownerProject: 'owner', granteeProject: 'guest', operations: ['encrypt-data', 'decrypt-data'], name: 'n', retiringProject: 'ops', issuingProject: 'owner', parentGrantId: '', createdAt: 5 };
      assert.equal(await s.insertGrant(g), true);
      assert.deepEqual(await s.grant(g.grantId), g);
      assert.deepEqual((await s.grantsOfKey(k.keyId)).map((x) => x.grantId), [g.grantId]);
      assert.deepEqual((await s.retirableGrants('ops')).map((x) => x.grantId), [g.grantId]);
      assert.deepEqual((await s.retirableGrants('guest')).map((x) => x.grantId), [g.grantId]);
      assert.equal(await s.granted(k.keyId, 'guest', 'decrypt-data'), true);
      assert.equal(await s.granted(k.keyId, 'guest', 'create-datakey'), false);
      assert.equal(await s.granted(k.keyId, 'other', 'decrypt-data'), false);
      assert.equal(await s.deleteGrant(g.grantId), true);
      assert.equal(await s.deleteGrant(g.grantId), false);
    });

    it('when grants are passed on, then deleting one deletes every grant derived from it at once, and a grant whose parent is gone is not written', async () => {
      const k = await s.insertKey(newKey('owner'));
      const grant = (id: string, grantee: string, parent: string): GrantRecord => ({
        grantId: `${id}-${randomUUID()}`,
        keyId: k.keyId,
        ownerProject: 'owner',
        granteeProject: grantee,
        operations: ['create-grant', 'decrypt-data'],
        name: '',
        retiringProject: '',
        issuingProject: parent === '' ? 'owner' : 'guest',
        parentGrantId: parent,
        createdAt: 6,
      });
      const root = grant('root', 'guest', '');
      const child = grant('child', 'third', root.grantId);
      const grandchild = grant('grandchild', 'fourth', child.grantId);
      const sibling = grant('sibling', 'guest', '');
      for (const g of [root, child, grandchild, sibling]) assert.equal(await s.insertGrant(g), true);
      assert.equal((await other.grant(grandchild.grantId))?.parentGrantId, child.grantId);
      // Deleted through the other connection (another process or node): the whole line goes.
      assert.equal(await other.deleteGrant(root.grantId), true);
      assert.deepEqual((await s.grantsOfKey(k.keyId)).map((g) => g.grantId), [sibling.grantId]);
      assert.equal(await s.granted(k.keyId, 'fourth', 'decrypt-data'), false);
      assert.equal(await s.deleteGrant(child.grantId), false);
      assert.equal(await s.insertGrant(grant('orphan', 'fifth', root.grantId)), false);
      assert.deepEqual((await s.grantsOfKey(k.keyId)).map((g) => g.grantId), [sibling.grantId]);
    });

    it('when several connections pass on grants while their parent is deleted, then no grant outlives it', async () => {
      const k = await s.insertKey(newKey('owner'));
      const base = { keyId: k.keyId, ownerProject: 'owner', granteeProject: 'guest', operations: ['create-grant'], name: '', retiringProject: '', issuingProject: 'guest', createdAt: 7 };
      const root = { ...base, grantId: randomUUID(), parentGrantId: '', issuingProject: 'owner' };
      assert.equal(await s.insertGrant(root), true);
      const inserts = Array.from({ length: 20 }, (_, i) => (i % 2 ? s : other).insertGrant({ ...base, grantId: randomUUID(), parentGrantId: root.grantId }));
      const deleted = other.deleteGrant(root.grantId);
      await Promise.all([...inserts, deleted]);
      assert.deepEqual(await s.grantsOfKey(k.keyId), []);
    });

    it("when keys are created in several projects, then each project's key numbers count its own keys from 1", async () => {
      const a1 = await s.insertKey(newKey('num-a'));
      const b1 = await other.insertKey(newKey('num-b'));
      const a2 = await other.insertKey(newKey('num-a'));
      const made = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? s : other).insertKey(newKey('num-c'))));
      assert.deepEqual([a1.num, b1.num, a2.num], [1, 1, 2]);
      assert.deepEqual(made.map((k) => k.num).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6]);
      assert.equal((await other.keyById(a2.keyId))?.num, 2);
    });

    it('when another connection changes a key, version or token that this one has read, then this one sees it within 1 s', async () => {
      await other.insertToken(token('seen'));
      const k = await other.insertKey(newKey('p1'));
      // First reads on this store: found at once (a miss is never what a newly created row reads as).
      assert.equal((await s.tokenById('seen'))?.revokedAt, null);
      assert.equal((await s.keyById(k.keyId))?.state, 'Enabled');
      assert.equal((await s.keyByTag(k.keyTag))?.state, 'Enabled');
      assert.equal((await s.version(k.keyId, 1))?.state, 'Enabled');
      await other.revokeToken('seen', 5);
      await other.transition(k.keyId, ['Enabled'], 'Disabled', 6);
      await other.setVersionState(k.keyId, 1, 'Enabled', 'Disabled', 6);
      await eventually('revocation seen', async () => (await s.tokenById('seen'))?.revokedAt === 5);
      await eventually('disabled key seen', async () => (await s.keyById(k.keyId))?.state === 'Disabled');
      await eventually('disabled key seen by tag', async () => (await s.keyByTag(k.keyTag))?.state === 'Disabled');
      await eventually('disabled version seen', async () => (await s.version(k.keyId, 1))?.state === 'Disabled');
    });

    it('when a row was missing and another connection inserts it, then the next read finds it', async () => {
      assert.equal(await s.tokenById('late'), undefined);
      await other.insertToken(token('late'));
      assert.equal((await s.tokenById('late'))?.id, 'late');
    });

    it('when this connection writes, then its own next read sees the write', async () => {
      const k = await s.insertKey(newKey('p1'));
      assert.equal((await s.keyById(k.keyId))?.state, 'Enabled');
      await s.transition(k.keyId, ['Enabled'], 'Disabled', 7);
      assert.equal((await s.keyById(k.keyId))?.state, 'Disabled');
    });

    it('when work is run exclusively, then it runs; on PostgreSQL a second runner meanwhile is turned away', async () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const first = s.exclusive('sweep-test', async () => {
        started();
        await held;
        return 1;
      });
      await running;
      const second = await other.exclusive('sweep-test', async () => 2);
      release();
      assert.deepEqual(await first, { ran: true, value: 1 });
      if (kind.name === 'PostgreSQL') assert.deepEqual(second, { ran: false });
      else assert.deepEqual(second, { ran: true, value: 2 });
      assert.deepEqual(await other.exclusive('sweep-test', async () => 3), { ran: true, value: 3 }, 'free again once the first finished');
    });
  });
}

describe('PostgreSQL store: database down and back', () => {
  it('when the server stops, then calls fail with StoreUnavailable; when it is back, the same store works again', async () => {
    pgServer ??= TestPostgres.start();
    const server = pgServer;
    const url = await server.createDatabase('outage');
    const s = new PgStore(url);
    try {
      await s.insertToken(token('o1'));
      await server.stopServer();
      try {
        await assert.rejects(s.tokenById('o1'), StoreUnavailable);
        await assert.rejects(s.insertToken(token('o2')), StoreUnavailable);
      } finally {
        await server.startServer();
      }
      await eventually('store answers again', async () => (await s.tokenById('o1').catch(() => undefined))?.id === 'o1', 30_000);
      await s.insertToken(token('o3'));
      assert.equal((await s.tokenById('o3'))?.id, 'o3');
    } finally {
      await s.close();
    }
  });
});
