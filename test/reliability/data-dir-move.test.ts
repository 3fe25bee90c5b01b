/**
 * A data dir is movable: SoftHSM's config in it names its token directory by absolute path, and the
 * service (and scripts/dev-token.sh) point it at the data dir's current place, so a dir that was
 * moved or restored elsewhere opens the same token with the same keys.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { softHsmConfText } from '../../src/config/softhsm-conf';
import { ROOT, TestServer } from '../helpers/server';

const servers: TestServer[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of servers) await s.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function dataKey(server: TestServer, token: string, keyId: string): Promise<number> {
  const r = await server.request('POST', '/v1.0/demo/kms/create-datakey', { headers: { 'X-Auth-Token': token }, body: { key_id: keyId, datakey_length: '256' } });
  return r.status;
}

describe('moving the data dir', () => {
  it('when a data dir is moved after use, then the service started on its new place opens the same token and its keys work', async () => {
    const first = await TestServer.start({ KMS_LOG_LEVEL: 'info' });
    const token = first.token('demo', true);
    const key = first.key('demo', 'moved', 'AES_256');
    assert.equal(await dataKey(first, token, key.key_id), 200);
    await first.stop({ keepData: true });

    const parent = mkdtempSync(path.join(tmpdir(), 'p11kms-moved-'));
    dirs.push(parent);
    const moved = path.join(parent, 'data');
    renameSync(first.dataDir, moved); // the old place is gone: its absolute path leads nowhere

    const second = await TestServer.start({ KMS_LOG_LEVEL: 'info' }, moved, { makeToken: false });
    servers.push(second);
    assert.equal(await dataKey(second, token, key.key_id), 200);
    assert.match(readFileSync(second.softhsmConf(), 'utf8'), new RegExp(`^directories\\.tokendir = ${moved}/tokens$`, 'm'));
    assert.ok(second.cli(['token', 'list', '--project', 'demo']).includes('"project":"demo"'));
  });

  it('when scripts/dev-token.sh runs on a moved data dir, then it finds the existing token instead of making a new one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'p11kms-move-script-'));
    dirs.push(dir);
    const env = { ...process.env, KMS_DATA_DIR: path.join(dir, 'a'), SOFTHSM2_CONF: '' };
    execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const pin = readFileSync(path.join(dir, 'a', 'token.pin'), 'utf8');
    renameSync(path.join(dir, 'a'), path.join(dir, 'b'));
    const out = execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env: { ...env, KMS_DATA_DIR: path.join(dir, 'b') }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(out, '');
    assert.equal(readFileSync(path.join(dir, 'b', 'token.pin'), 'utf8'), pin);
    assert.match(readFileSync(path.join(dir, 'b', 'softhsm2.conf'), 'utf8'), new RegExp(`^directories\\.tokendir = ${dir}/b/tokens$`, 'm'));
  });

  it('when the operator changed other lines of softhsm2.conf, then only the token directory is rewritten', () => {
    const conf = 'directories.tokendir = /old/place/tokens\nobjectstore.backend = file\nlog.level = INFO\n';
    assert.equal(softHsmConfText(conf, '/new/place'), 'directories.tokendir = /new/place/tokens\nobjectstore.backend = file\nlog.level = INFO\n');
  });
});
