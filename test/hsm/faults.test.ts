/**
 * HSM faults on a real SoftHSM token, in process: the service's runtime is built with its module
 * wrapped in a fault-injecting proxy (test/helpers/fault-binding.ts), and the app listens on port 0.
 * Real faults (C_CloseAllSessions, C_Logout) go through the real binding; injected ones make chosen
 * calls throw the CKR a failing HSM returns.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { createApp } from '../../src/api/app';
import { accessLog } from '../../src/api/middleware/outcome';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { isKmsError } from '../../src/errors/kms-error';
import { FaultInjector } from '../helpers/fault-binding';
import { request } from '../helpers/http';
import { inlinePool } from '../helpers/inline-pool';
import { ROOT } from '../helpers/server';

const WAIT_MS = 300;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime;
let faults: FaultInjector;
let server: Server;
let url: string;
let logs = '';
let admin: string;
let user: string;
let aesTag: string;
let huaweiKeyId: string;
const secrets: Buffer[] = [];

const cli = (args: string[]): string =>
  execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

async function call(method: string, p: string, headers: Record<string, string>, body?: unknown) {
  return request(url, method, p, { headers, ...(body === undefined ? {} : { body }) });
}
const ncp = (action: string, body: unknown) => call('POST', `/kms/v1/keys/${aesTag}/${action}`, { 'x-ncp-ocapi-token': user }, body);
const huawei = (action: string, body: unknown) => call('POST', `/v1.0/p1/kms/${action}`, { 'X-Auth-Token': user }, body);

/** One NCP encrypt+decrypt and one Huawei encrypt+decrypt round trip, asserted to succeed. */
async function roundTrips(): Promise<void> {
  const p = randomBytes(32);
  secrets.push(p);
  const e = await ncp('encrypt', { plaintext: p.toString('base64') });
  assert.equal(e.status, 200, e.text);
  const d = await ncp('decrypt', { ciphertext: e.body.data.ciphertext });
  assert.equal(d.status, 200, d.text);
  assert.equal(d.body.data.plaintext, p.toString('base64'));
  const plain = randomBytes(24).toString('hex');
  secrets.push(Buffer.from(plain));
  const he = await huawei('encrypt-data', { key_id: huaweiKeyId, plain_text: plain });
  assert.equal(he.status, 200, he.text);
  const hd = await huawei('decrypt-data', { cipher_text: he.body.cipher_text });
  assert.equal(hd.status, 200, hd.text);
  assert.equal(hd.body.plain_text, plain);
}

/** Makes the pool hold both its sessions idle, so a fault reaches more than the next one used. */
async function fillPool(): Promise<void> {
  await inlinePool(runtime).use(() => inlinePool(runtime).use(() => undefined));
  assert.equal(inlinePool(runtime).stats.idle, 2);
}

/** No session is lost or leaked: everything opened was closed, dropped with its module, or is still pooled. */
function assertNoLeak(): void {
  const s = inlinePool(runtime).stats;
  assert.equal(s.busy, 0, JSON.stringify(s));
  assert.equal(s.waiting, 0, JSON.stringify(s));
  assert.ok(s.open <= 2 + s.keeper, JSON.stringify(s));
  assert.equal(s.opened - s.closed - s.dropped, s.open, JSON.stringify(s));
}

async function until(what: string, ms: number, cond: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await cond()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-faults-'));
  env = { ...process.env, KMS_DATA_DIR: dataDir, KMS_POOL_SIZE: '2', KMS_POOL_WAIT_MS: String(WAIT_MS), KMS_HSM_RETRY_MAX_MS: '200' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  admin = cli(['token', 'create', '--project', 'p1', '--admin']).trim();
  user = cli(['token', 'create', '--project', 'p1']).trim();
  aesTag = (JSON.parse(cli(['key', 'create', '--project', 'p1', '--alias', 'a', '--spec', 'AES_256'])) as { keyTag: string }).keyTag;
  huaweiKeyId = (JSON.parse(cli(['key', 'create', '--project', 'p1', '--alias', 'h', '--spec', 'AES_256'])) as { key_id: string }).key_id;
  const config = loadConfig(env);
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  faults = new FaultInjector(config.tokenLabel);
  // Key objects made in this process, where the proxy sees C_GenerateKey (the helper process has
  // its own module; test/hsm/keygen-process.test.ts breaks that one).
  const log = createLogger('debug', sink);
  runtime = openRuntime(config, log, { wrapModule: faults.wrap, keygenInProcess: true });
  server = createApp(runtime.services, { observers: [accessLog(log)] }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  runtime?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('HSM faults', () => {
  it('when the service works, then round trips succeed in both dialects', async () => {
    await roundTrips();
    assertNoLeak();
  });

  it('when every session is closed under the service (real C_CloseAllSessions, which also ends the login), then requests succeed on new, logged-in sessions', async () => {
    await roundTrips();
    const before = inlinePool(runtime).stats;
    const logins = faults.count('login');
    await fillPool();
    await faults.closeAllSessions();
    await roundTrips();
    await roundTrips();
    const after = inlinePool(runtime).stats;
    assert.ok(after.closed > before.closed, 'the dead sessions were closed and replaced');
    assert.ok(faults.count('login') > logins, 'the pool logged in again');
    assertNoLeak();
  });

  it('when the token is logged out under the service (real C_Logout), then requests log in again and succeed', async () => {
    await roundTrips();
    const logins = faults.count('login');
    await fillPool();
    await faults.logout();
    await roundTrips();
    assert.ok(faults.count('login') > logins, 'the pool logged in again');
    await roundTrips();
    assertNoLeak();
  });

  for (const ckr of ['CKR_SESSION_HANDLE_INVALID', 'CKR_USER_NOT_LOGGED_IN', 'CKR_DEVICE_ERROR'] as const) {
    it(`when one encrypt and one decrypt fail with ${ckr}, then the session is replaced, the call is retried once and the client sees success`, async () => {
      const recoveries = inlinePool(runtime).stats.recoveries;
      faults.fail('encrypt', ckr, 1);
      faults.fail('decrypt', ckr, 1);
      await roundTrips();
      assert.equal(faults.injected.get('encrypt') !== undefined, true);
      if (ckr === 'CKR_DEVICE_ERROR') assert.ok(inlinePool(runtime).stats.recoveries > recoveries, 'the module was re-initialised');
      assertNoLeak();
    });
  }

  it('when key creation hits CKR_DEVICE_ERROR, then it is not retried: a 503 in the dialect shape, no key row, and the next creation works', async () => {
    faults.fail(['generateKey'], 'CKR_DEVICE_ERROR', 1);
    const r = await call('POST', '/kms/v1/keys', { 'x-ncp-ocapi-token': admin }, { keyName: 'fault-key', keyType: 'AES256' });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.code, 'SERVICE_UNAVAILABLE');
    assert.equal(faults.injected.get('generateKey'), 1);
    const list = await call('GET', '/kms/v1/keys', { 'x-ncp-ocapi-token': admin });
    assert.equal(list.status, 200, list.text);
    assert.ok(!list.text.includes('fault-key'), 'no row for the failed creation');
    const again = await call('POST', '/kms/v1/keys', { 'x-ncp-ocapi-token': admin }, { keyName: 'fault-key', keyType: 'AES256' });
    assert.equal(again.status, 200, again.text);
    assertNoLeak();
  });

  it('when the HSM is unreachable, then requests get a 503 in each dialect shape within the pool wait, /healthz says 503 and why, and after it is back requests succeed without a restart', async () => {
    faults.outage('CKR_DEVICE_ERROR');
    const started = Date.now();
    const [n, h] = await Promise.all([ncp('encrypt', { plaintext: randomBytes(8).toString('base64') }), huawei('gen-random', { random_data_length: '256' })]);
    assert.ok(Date.now() - started < WAIT_MS + 1500, 'answered within a bounded time');
    assert.equal(n.status, 503, n.text);
    assert.equal(n.body.code, 'SERVICE_UNAVAILABLE');
    assert.equal(h.status, 503, h.text);
    assert.equal(h.body.error.error_code, 'KMS.0104');
    for (const r of [n, h]) assert.equal(r.headers.get('retry-after'), '1', 'a 503 says when to retry');
    // While it is down, answers come at once (no waiting for a session that can't be opened).
    const t = Date.now();
    for (let i = 0; i < 20; i++) assert.equal((await ncp('decrypt', { ciphertext: 'ncpkms:v1:AAAA' })).status >= 400, true);
    assert.ok(Date.now() - t < 20 * (WAIT_MS + 200));
    const health = await call('GET', '/healthz', {});
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'unavailable');
    assert.equal(health.headers.get('retry-after'), '1');
    assert.match(health.body.reason, /CKR_DEVICE_ERROR/);
    faults.heal();
    const took = await until('healthy again', 10_000, async () => (await call('GET', '/healthz', {})).status === 200);
    assert.ok(took < 5000);
    await roundTrips();
    assertNoLeak();
  });

  it('when 1000 requests hold sessions of a pool of 2, then each completes or gets a clean 503 after the configured wait; nothing deadlocks or leaks', async () => {
    const opened = inlinePool(runtime).stats;
    const started = Date.now();
    const waited: number[] = [];
    const results = await Promise.allSettled(
      Array.from({ length: 1000 }, () => {
        const t = Date.now();
        return inlinePool(runtime)
          .use(async (s) => {
            inlinePool(runtime).module.generateRandom(s, 16);
            await new Promise((r) => setTimeout(r, 2)); // hold the session across a tick, as a slow HSM would
            return 'ok';
          })
          .catch((e: unknown) => {
            waited.push(Date.now() - t);
            throw e;
          });
      }),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(ok + refused.length, 1000);
    assert.ok(ok > 0 && refused.length > 0, `${ok} completed, ${refused.length} refused`);
    for (const r of refused) assert.ok(isKmsError(r.reason) && r.reason.code === 'HsmUnavailable');
    // Refused after the configured wait, not before and not much later.
    for (const ms of waited) assert.ok(ms >= WAIT_MS - 5 && ms < WAIT_MS + 2000, `refused after ${ms} ms`);
    assert.ok(Date.now() - started < WAIT_MS * 4 + 5000, 'bounded');
    assertNoLeak();
    assert.ok(inlinePool(runtime).stats.opened - opened.opened <= 2, 'no sessions beyond the pool size were opened');

    // The same over HTTP, both dialects mixed: 200 or the dialect's 503, never anything else.
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        i % 2 ? ncp('encrypt', { plaintext: randomBytes(16).toString('base64') }) : huawei('gen-random', { random_data_length: '256' }),
      ),
    );
    for (const r of replies) assert.ok(r.status === 200 || r.status === 503, r.text);
    assertNoLeak();
    assert.equal((await call('GET', '/healthz', {})).status, 200);
  });

  it('when the token rejects the PIN at a re-login (its PIN was changed under the service), then the service logs in once, never again, and /healthz says why', async () => {
    const { pin, pkcs11Module, tokenLabel } = loadConfig(env);
    const changed = randomBytes(12).toString('hex');
    // Another application changes the user PIN (a session of this process: the login is the process's).
    const lib = new pkcs11js.PKCS11();
    lib.load(pkcs11Module);
    const slot = lib.C_GetSlotList(true).find((sl) => lib.C_GetTokenInfo(sl).label.trim() === tokenLabel);
    assert.ok(slot);
    const s = lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    lib.C_SetPIN(s, pin, changed);
    lib.C_CloseSession(s);
    // The service is logged out and must log in again: the token refuses its PIN.
    const attempts = () => faults.attempts.get('login') ?? 0;
    const before = attempts();
    await faults.logout();
    const r = await huawei('encrypt-data', { key_id: huaweiKeyId, plain_text: 'after the PIN changed' });
    assert.equal(r.status, 503, r.text);
    const health = await call('GET', '/healthz', {});
    assert.equal(health.status, 503);
    assert.match(health.body.reason, /CKR_PIN_INCORRECT/);
    assert.match(health.body.reason, /not retrying/);
    assert.equal(attempts() - before, 1, 'one login attempt');
    // Several retry periods (KMS_HSM_RETRY_MAX_MS=200) and requests later: still that one attempt.
    for (let i = 0; i < 10; i++) {
      assert.equal((await huawei('gen-random', { random_data_length: '64' })).status, 503);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(attempts() - before, 1, 'no login after the rejected one');
    assert.ok(!logs.includes(pin) && !logs.includes(changed), 'no PIN in the logs');
  });

  it('then nothing secret was logged', () => {
    assert.match(logs, /"message":"access"/);
    for (const s of secrets) {
      for (const form of [s.toString('hex'), s.toString('base64'), s.toString('utf8')]) {
        if (form.length >= 8) assert.ok(!logs.includes(form), 'a plaintext appears in the logs');
      }
    }
    assert.ok(!logs.includes(admin) && !logs.includes(user));
  });
});
