/**
 * Secure defaults on a fresh install: the store's files are owner-only wherever KMS_DB points, the
 * dev token's SO PIN is not kept, and the start-up log counts key versions left modifiable.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { ROOT, TestServer } from '../helpers/server';

let server: TestServer;
let dbDir: string;
let dbFile: string;

before(async () => {
  dbDir = mkdtempSync(path.join(tmpdir(), 'p11kms-db-'));
  dbFile = path.join(dbDir, 'elsewhere.db');
  server = await TestServer.start({ KMS_DB: dbFile });
});

after(async () => {
  await server?.stop();
  if (dbDir) rmSync(dbDir, { recursive: true, force: true });
});

describe('secure defaults', () => {
  it('when nothing is configured, then session copies and the data-key stock are off', () => {
    const c = loadConfig({ KMS_DATA_DIR: server.dataDir, KMS_PIN: '1234' });
    assert.equal(c.sessionKeyCopies, 0);
    assert.equal(c.dataKeyStock, 0);
  });

  it('when the store is opened where KMS_DB points, under umask 022, then the database, -wal and -shm files are 0600', async () => {
    const admin = server.token('p1', true);
    const r = await server.request('POST', '/v1.0/p1/kms/create-key', { headers: { 'X-Auth-Token': admin }, body: { key_alias: 'k' } });
    assert.equal(r.status, 200, r.text);
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) {
      assert.ok(existsSync(f), f);
      assert.equal((statSync(f).mode & 0o777).toString(8), '600', f);
    }
  });

  it('when the dev token is made, then its SO PIN is not kept anywhere in the data dir', () => {
    assert.ok(existsSync(path.join(server.dataDir, 'token.pin')), 'the user PIN is');
    assert.ok(!existsSync(path.join(server.dataDir, 'token.so-pin')));
  });

  it('when the token holds versions made with session copies on, then the start-up log counts them', async () => {
    const env = { ...server.env, KMS_SESSION_KEY_COPIES: '8' };
    for (const alias of ['m1', 'm2']) {
      execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'key', 'create', '--project', 'p1', '--alias', alias, '--spec', 'AES_256'], { env, stdio: 'ignore' });
    }
    await server.stop({ keepData: true });
    server = await TestServer.start({ KMS_DB: dbFile }, server.dataDir);
    const deadline = Date.now() + 60_000;
    while (!/CKA_MODIFIABLE/.test(server.logs()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const line = server.logs().split('\n').find((l) => l.includes('CKA_MODIFIABLE'));
    assert.ok(line, server.logs());
    assert.equal(JSON.parse(line).versions, 2, line);
  });
});
