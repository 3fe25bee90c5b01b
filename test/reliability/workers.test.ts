/**
 * KMS_WORKERS: several server processes on one port (src/cluster.ts). Each worker has its own
 * PKCS#11 session pool; keys made through one worker are usable at once through the others; a
 * worker that dies is replaced; SIGTERM to the primary drains every worker and exits 0.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Secrets } from '../helpers/secrets';
import { keygenHelpers, TestServer } from '../helpers/server';
import { until } from '../helpers/wait';

let server: TestServer;
const secrets = new Secrets();
let admin: string;

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

/** Worker processes of this server: node processes whose environment names its data dir and a slot. */
function workerPids(dataDir: string): number[] {
  // A worker's key-generation helper inherits its environment: told apart by its script.
  const helpers = new Set(keygenHelpers({ dataDir }));
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || helpers.has(Number(name))) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (env.includes(`KMS_DATA_DIR=${dataDir}`) && env.some((e) => e.startsWith('P11KMS_WORKER_SLOT='))) out.push(Number(name));
    } catch {
      // not ours, or gone
    }
  }
  return out;
}

before(async () => {
  server = await TestServer.start({ KMS_WORKERS: '2' });
  await until('both workers', () => count(server.logs(), /"message":"listening"/g) >= 2);
  admin = server.token('w1', true);
  secrets.add(admin);
});
after(async () => {
  await server?.stop();
});

const post = (path: string, body: unknown) => server.request('POST', `/v1.0/w1/kms/${path}`, { headers: { 'X-Auth-Token': admin }, body });

describe('several worker processes (KMS_WORKERS=2)', () => {
  it('when KMS_WORKERS=2, then two worker processes serve one port and /livez answers without the HSM', async () => {
    assert.equal(workerPids(server.dataDir).length, 2);
    const r = await server.request('GET', '/livez');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'live' });
  });

  it('when a key is created through one worker, then data keys under it are made and opened through every worker at once', async () => {
    for (let i = 0; i < 4; i++) {
      const created = await post('create-key', { key_alias: `w-${i}` });
      assert.equal(created.status, 200);
      assert.ok(keygenHelpers({ dataDir: server.dataDir }).length >= 1, 'the key was made by a helper process');
      const keyId = String(created.body.key_info.key_id);
      // Concurrent requests are spread over both workers by the primary.
      const dks = await Promise.all(Array.from({ length: 6 }, () => post('create-datakey', { key_id: keyId, datakey_length: '256' })));
      for (const dk of dks) {
        assert.equal(dk.status, 200);
        secrets.addHex(dk.body.plain_text);
      }
      const opened = await Promise.all(
        dks.map((dk) => post('decrypt-datakey', { key_id: keyId, cipher_text: dk.body.cipher_text, datakey_cipher_length: '32' })),
      );
      opened.forEach((o, j) => {
        assert.equal(o.status, 200);
        assert.equal(o.body.data_key, dks[j]!.body.plain_text);
      });
    }
  });

  it('when a worker dies, then the primary starts a replacement and the service keeps answering', async () => {
    const [victim] = workerPids(server.dataDir);
    assert.ok(victim);
    process.kill(victim, 'SIGKILL');
    await until('a replacement worker', () => {
      const now = workerPids(server.dataDir);
      return now.length === 2 && !now.includes(victim);
    });
    await until('the replacement listening', () => count(server.logs(), /"message":"listening"/g) >= 3);
    assert.match(server.logs(), /"message":"worker exited; starting a replacement"/);
    for (let i = 0; i < 6; i++) assert.equal((await server.request('GET', '/livez')).status, 200);
  });

  it('when the primary gets SIGTERM, then every worker drains and the service exits 0', async () => {
    const code = await server.stop({ keepData: true });
    assert.equal(code, 0);
    assert.ok(count(server.logs(), /"message":"stopped"/g) >= 2, 'each worker logs that it stopped');
    assert.deepEqual(workerPids(server.dataDir), []);
    // Keys were created through the workers: their helpers end with them.
    await until('the key-generation helpers to exit', () => keygenHelpers({ dataDir: server.dataDir }).length === 0);
  });

  it('then nothing secret was logged', () => {
    secrets.assertNotLogged(server);
  });
});
