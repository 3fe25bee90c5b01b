/**
 * One key's whole life through HTTP, with the token checked from outside at every step:
 * create → use → rotate → disable → enable → schedule deletion → cancel → schedule deletion →
 * (clock advanced) → deleted. Plus: the sweep survives a restart, automatic rotation runs on its
 * interval without one, and concurrent state changes leave a state the vendor could produce.
 *
 * "Clock advanced" = the test moves the key's stored deletion date (or last rotation) into the
 * past, which is exactly what the passing of time does to the store; the service's own sweep
 * (every 200 ms here) then acts on it. On both real tokens: SoftHSM and NSS softokn.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Secrets } from '../helpers/secrets';
import { TestServer } from '../helpers/server';
import { TokenView } from '../helpers/token';
import { until } from '../helpers/wait';

let server: TestServer;
let view: TokenView;
let admin: string;
let earlierLogs = '';
const secrets = new Secrets();
const SWEEP = { KMS_SWEEP_INTERVAL_MS: '200' };


const ncp = (method: string, p: string, body?: unknown) =>
  server.request(method, `/kms/v1${p}`, { headers: { 'x-ncp-ocapi-token': admin }, ...(body === undefined ? {} : { body }) });

function moveIntoPast(keyTag: string, column: 'deletion_date' | 'last_rotation_at'): void {
  const db = new Database(path.join(server.dataDir, 'p11kms.db'));
  try {
    const changed = db.prepare(`UPDATE keys SET ${column} = ? WHERE key_tag = ?`).run(Date.now() - 2 * 86_400_000, keyTag).changes;
    assert.equal(changed, 1);
  } finally {
    db.close();
  }
}

async function createKey(name: string, extra: Record<string, unknown> = {}): Promise<{ keyTag: string; keyId: string }> {
  const r = await ncp('POST', '/keys', { keyName: name, keyType: 'AES256', ...extra });
  assert.equal(r.status, 200, r.text);
  const keyTag: string = r.body.data.keyTag;
  // Huawei's name for the same key, from the CLI-independent path: describe by alias.
  const d = await server.request('POST', '/v1.0/p1/kms/describe-key', { headers: { 'X-Auth-Token': admin }, body: { key_id: `alias/${name}` } });
  assert.equal(d.status, 200, d.text);
  return { keyTag, keyId: d.body.key_info.key_id };
}

async function encrypt(keyTag: string, plaintext: Buffer): Promise<string> {
  secrets.add(plaintext);
  const r = await ncp('POST', `/keys/${keyTag}/encrypt`, { plaintext: plaintext.toString('base64') });
  assert.equal(r.status, 200, r.text);
  return r.body.data.ciphertext;
}

async function decryptStatus(keyTag: string, ciphertext: string, expect?: Buffer): Promise<number> {
  const r = await ncp('POST', `/keys/${keyTag}/decrypt`, { ciphertext });
  if (r.status === 200 && expect) assert.equal(r.body.data.plaintext, expect.toString('base64'));
  return r.status;
}

for (const profile of ['softhsm2', 'nss'] as const) {
  const tokenEnv = profile === 'nss' ? { KMS_TOKEN_PROFILE: 'nss' } : {};
  describe(`key lifecycle (${profile})`, () => {
    before(async () => {
      server = await TestServer.start({ ...tokenEnv, ...SWEEP });
      admin = server.token('p1', true);
      secrets.add(admin);
      view = new TokenView(server);
    });
    after(async () => {
      view?.close();
      await server?.stop();
    });

    it('when a key walks create → rotate → disable → enable → delete → cancel → delete → window ends, then the token follows each step', async () => {
      const { keyTag, keyId } = await createKey('walk');
      assert.equal(view.objectsOf(keyId).length, 1);

      const p1 = Buffer.from('first secret');
      const c1 = await encrypt(keyTag, p1);
      assert.match(c1, /^ncpkms:v1:/);

      const rot = await ncp('POST', `/keys/${keyTag}/rotate`);
      assert.equal(rot.status, 200, rot.text);
      assert.equal(rot.body.data.version, 2);
      assert.equal(view.objectsOf(keyId, 2).length, 1);
      assert.equal(view.objectsOf(keyId).length, 2);
      const p2 = Buffer.from('second secret');
      const c2 = await encrypt(keyTag, p2);
      assert.match(c2, /^ncpkms:v2:/);
      assert.equal(await decryptStatus(keyTag, c1, p1), 200);
      assert.equal(await decryptStatus(keyTag, c2, p2), 200);

      assert.equal((await ncp('POST', `/keys/${keyTag}/disable`)).status, 200);
      assert.equal(await decryptStatus(keyTag, c1), 422);
      assert.equal((await ncp('POST', `/keys/${keyTag}/encrypt`, { plaintext: 'QUJD' })).status, 422);
      assert.equal(view.objectsOf(keyId).length, 2);

      assert.equal((await ncp('POST', `/keys/${keyTag}/enable`)).status, 200);
      assert.equal(await decryptStatus(keyTag, c1, p1), 200);

      const del = await ncp('POST', `/keys/${keyTag}/request-deletion`);
      assert.equal(del.status, 200, del.text);
      assert.equal(del.body.data.status, 'REVOKE');
      assert.equal(await decryptStatus(keyTag, c2), 422);
      assert.equal(view.objectsOf(keyId).length, 2);

      const cancel = await ncp('POST', `/keys/${keyTag}/cancel-deletion`);
      assert.equal(cancel.status, 200, cancel.text);
      assert.equal(cancel.body.data.status, 'DISABLE');
      assert.equal((await ncp('POST', `/keys/${keyTag}/enable`)).status, 200);
      assert.equal(await decryptStatus(keyTag, c2, p2), 200);

      assert.equal((await ncp('POST', `/keys/${keyTag}/request-deletion`)).status, 200);
      moveIntoPast(keyTag, 'deletion_date');
      await until('the sweep to delete the key', async () => (await ncp('GET', `/keys/${keyTag}`)).status === 404);
      await until('the token objects to be destroyed', async () => view.objectsOf(keyId).length === 0);
      assert.equal(await decryptStatus(keyTag, c1), 404);
      const hw = await server.request('POST', '/v1.0/p1/kms/describe-key', { headers: { 'X-Auth-Token': admin }, body: { key_id: keyId } });
      assert.equal(hw.status, 404);
      assert.equal(hw.body.error.error_code, 'KMS.0207');
    });

    it('when automatic rotation is due, then the running service rotates the key by itself', async () => {
      const { keyTag, keyId } = await createKey('auto', { isAutoRotation: true, rotationPeriod: 1 });
      const p = Buffer.from('before auto rotation');
      const c = await encrypt(keyTag, p);
      moveIntoPast(keyTag, 'last_rotation_at');
      await until('automatic rotation', async () => (await ncp('GET', `/keys/${keyTag}`)).body?.data?.currentVersion === 2);
      assert.equal(view.objectsOf(keyId, 2).length, 1);
      assert.equal(await decryptStatus(keyTag, c, p), 200);
      assert.match(await encrypt(keyTag, Buffer.from('after')), /^ncpkms:v2:/);
    });

    it('when state changes race on one key, then it ends in a state the vendor could produce, with whole versions', async () => {
      const { keyTag, keyId } = await createKey('race');
      const p = Buffer.from('survives the race');
      const c = await encrypt(keyTag, p);
      const ops = ['enable', 'disable', 'rotate', 'rotate', 'request-deletion', 'cancel-deletion'];
      const replies = await Promise.all(Array.from({ length: 36 }, (_, i) => ncp('POST', `/keys/${keyTag}/${ops[i % ops.length]}`)));
      for (const r of replies) assert.ok([200, 422, 429].includes(r.status), `unexpected ${r.status}: ${r.text}`);
      const info = await ncp('GET', `/keys/${keyTag}`);
      assert.equal(info.status, 200);
      assert.ok(['ENABLE', 'DISABLE', 'REVOKE'].includes(info.body.data.status));
      const versions = await ncp('GET', `/keys/${keyTag}/versions`);
      const numbers: number[] = versions.body.data.versionList.map((v: { version: number }) => v.version);
      assert.deepEqual(numbers, Array.from({ length: info.body.data.currentVersion }, (_, i) => i + 1));
      for (const n of numbers) assert.equal(view.objectsOf(keyId, n).length, 1, `version ${n} objects`);
      assert.equal(view.objectsOf(keyId).length, numbers.length);
      if (info.body.data.status === 'REVOKE') assert.equal((await ncp('POST', `/keys/${keyTag}/cancel-deletion`)).status, 200);
      if (info.body.data.status !== 'ENABLE') assert.equal((await ncp('POST', `/keys/${keyTag}/enable`)).status, 200);
      assert.equal(await decryptStatus(keyTag, c, p), 200);
    });

    it('when the deletion window ends while the service is down, then the first pass after the restart deletes the key', async () => {
      const { keyTag, keyId } = await createKey('restart');
      assert.equal((await ncp('POST', `/keys/${keyTag}/request-deletion`)).status, 200);
      view.close();
      await server.stop({ keepData: true });
      earlierLogs += server.logs();
      // Time passes while the service is down; the next start runs the sweep once before any interval.
      const db = new Database(path.join(server.dataDir, 'p11kms.db'));
      db.prepare(`UPDATE keys SET deletion_date = ? WHERE key_tag = ?`).run(Date.now() - 1000, keyTag);
      db.close();
      server = await TestServer.start({ ...tokenEnv, KMS_SWEEP_INTERVAL_MS: '3600000' }, server.dataDir);
      view = new TokenView(server);
      await until('the restarted service to delete the key', async () => (await ncp('GET', `/keys/${keyTag}`)).status === 404);
      await until('the token objects to be destroyed', async () => view.objectsOf(keyId).length === 0);
    });

    it('then nothing secret was logged, by either incarnation of the server', () => {
      secrets.assertNotLogged(server, earlierLogs);
    });
  });
}
