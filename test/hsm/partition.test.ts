/**
 * A network HSM that falls silent (netshim's hang file: every call waits) and comes back, with
 * the real server on the `generic` profile (every token call on a session thread with a
 * deadline): liveness never waits for the token, health and crypto requests answer 503 within
 * their deadlines, the service recovers by itself once the token answers again, and every
 * ciphertext it answered before, during or after opens afterwards. In front of both real tokens:
 * SoftHSM and NSS softokn.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nssParameters } from '../../src/config/load';
import { throughNetshim } from '../helpers/netshim';
import { Secrets } from '../helpers/secrets';
import { ROOT, TestServer } from '../helpers/server';

const CALL_TIMEOUT_MS = 1500;
const NSS_MODULE = '/usr/lib/x86_64-linux-gnu/libsoftokn3.so';
const secrets = new Secrets();
let server: TestServer;
let hangFile: string;
let apiToken: string;
let keyId: string;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; out: T }> {
  const start = performance.now();
  const out = await fn();
  return { ms: performance.now() - start, out };
}

async function until(what: string, ms: number, cond: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await cond()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const encrypt = (plain: string) =>
  server.request('POST', '/v1.0/p1/kms/encrypt-data', { headers: { 'X-Auth-Token': apiToken }, body: { key_id: keyId, plain_text: plain } });
const decrypt = (cipher: string) => server.request('POST', '/v1.0/p1/kms/decrypt-data', { headers: { 'X-Auth-Token': apiToken }, body: { cipher_text: cipher } });

for (const token of ['softhsm2', 'nss'] as const) {
  describe(`a network HSM that falls silent and comes back (netshim in front of ${token}, generic profile)`, () => {
    before(async () => {
      // The dev token of the profile, then netshim in front of it and the generic profile.
      server = await TestServer.start({ KMS_TOKEN_PROFILE: token === 'nss' ? 'nss' : 'softhsm2', KMS_HSM_CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS) }, undefined, {
        envFor: (dataDir) => {
          hangFile = path.join(dataDir, 'partition');
          const nss = token === 'nss' ? { NETSHIM_MODULE: NSS_MODULE, KMS_PKCS11_LIBRARY_PARAMETERS: nssParameters(path.join(dataDir, 'nss'), 'p11kms-dev') } : {};
          return { ...throughNetshim(dataDir, { delayUs: 200, hangFile }), ...nss, KMS_TOKEN_PROFILE: 'generic' };
        },
      });
      apiToken = server.token('p1', true);
      secrets.add(apiToken);
      keyId = server.key('p1', 'partition', 'AES_256').key_id;
    });

    after(async () => {
      rmSync(hangFile, { force: true });
      await server?.stop();
    });

    it('when the token is silent, then /livez answers at once, /healthz and crypto answer 503 within their deadlines; once it answers again, requests succeed without a restart and no ciphertext is lost', async () => {
      const answered = new Map<string, string>();
      const plain = () => {
        const p = randomBytes(16).toString('hex');
        secrets.add(p);
        return p;
      };
      for (let i = 0; i < 8; i++) {
        const p = plain();
        const r = await encrypt(p);
        assert.equal(r.status, 200, r.text);
        answered.set(r.body.cipher_text, p);
      }

      writeFileSync(hangFile, '');
      // Requests already under way when it fell silent, and new ones.
      const during = Array.from({ length: 6 }, () => {
        const p = plain();
        return timed(() => encrypt(p)).then((t) => ({ ...t, p }));
      });
      const live: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = await timed(() => server.request('GET', '/livez'));
        assert.equal(t.out.status, 200);
        live.push(t.ms);
        await new Promise((r) => setTimeout(r, 50));
      }
      const health = await timed(() => server.request('GET', '/healthz'));
      const results = await Promise.all(during);
      const late = await timed(() => encrypt(plain()));

      assert.equal(health.out.status, 503, health.out.text);
      for (const r of [...results, late]) {
        if (r.out.status === 200) {
          // Answered before the token fell silent: it must open later.
          answered.set(r.out.body.cipher_text, (r as { p?: string }).p ?? '');
          continue;
        }
        assert.equal(r.out.status, 503, r.out.text);
        assert.equal(r.out.body.error.error_code, 'KMS.0104');
      }
      const slowest = Math.max(...results.map((r) => r.ms), late.ms);
      // Loose bounds for a busy machine; npm run bench measures the figures themselves.
      assert.ok(Math.max(...live) < 1000, `/livez took ${Math.max(...live).toFixed(0)} ms`);
      assert.ok(health.ms < 5000, `/healthz took ${health.ms.toFixed(0)} ms`);
      assert.ok(slowest < CALL_TIMEOUT_MS + 3000, `a crypto request took ${slowest.toFixed(0)} ms`);
      assert.match(server.logs(), /hsm token not answering/);

      rmSync(hangFile);
      const healed = Date.now();
      await until('an encrypt after the token answers again', 30_000, async () => (await encrypt(plain())).status === 200);
      const recoveredMs = Date.now() - healed;
      assert.ok(recoveredMs < 10_000, `recovered after ${recoveredMs} ms`);
      assert.equal((await server.request('GET', '/healthz')).status, 200);

      for (let i = 0; i < 4; i++) {
        const p = plain();
        const r = await encrypt(p);
        assert.equal(r.status, 200, r.text);
        answered.set(r.body.cipher_text, p);
      }
      for (const [cipher, p] of answered) {
        const r = await decrypt(cipher);
        assert.equal(r.status, 200, r.text);
        if (p) assert.equal(r.body.plain_text, p);
      }
      assert.match(server.logs(), /hsm token reachable again/);
      secrets.assertNotLogged(server);
    });

    it('when the token is silent with calls stuck inside it, then a CLI command still ends with its exit code and the server still exits 0 on SIGTERM', async () => {
      writeFileSync(hangFile, '');
      const stuck = await encrypt('stuck');
      assert.equal(stuck.status, 503, stuck.text);
      // The CLI's audit record waits for a MAC from the silent token: its thread stays inside the call.
      const cli = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = execFile(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'token', 'create', '--project', 'p2'], { env: server.env, timeout: 120_000 }, (e, out, err) =>
          resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, out, err }),
        );
        child.stdin?.end();
      });
      assert.equal(cli.code, 0, cli.err);
      secrets.add(cli.out.trim());
      assert.match(cli.err, /never returned/);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([server.kill('SIGTERM'), new Promise((resolve) => (timer = setTimeout(() => resolve('still running after 60 s'), 60_000)))]);
      clearTimeout(timer);
      assert.equal(code, 0);
    });
  });
}
