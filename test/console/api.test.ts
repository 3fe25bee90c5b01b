/**
 * The console's server side over HTTP: the page and its files under a strict CSP with no inline
 * script, and the read endpoints (token, `read` scope, own project only, audited, bad input in
 * words). What the page does with them is browser.test.ts's.
 */
import assert from 'node:assert/strict';
import { readFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../helpers/fixture';

let f: Fixture;
let reader = '';
let cryptoOnly = '';

const get = (p: string, token?: string) => f.server.request('GET', p, token === undefined ? {} : { headers: { 'X-Auth-Token': token } });

describe('console server side', { timeout: 300_000 }, () => {
  before(async () => {
    f = await fixture();
    reader = f.server.cli(['token', 'create', '--project', 'p1', '--scope', 'read']).trim();
    cryptoOnly = f.server.cli(['token', 'create', '--project', 'p1', '--scope', 'crypto']).trim();
    f.secrets.add(reader, cryptoOnly);
  });
  after(async () => {
    f.secrets.assertNotLogged(f.server);
    await f.server.stop();
  });

  it('when the page is fetched, then it comes with a CSP that allows only its own files and no inline script', async () => {
    for (const p of ['/console', '/console/', '/console/assets/app.js', '/console/assets/console.css']) {
      const r = await get(p);
      assert.equal(r.status, 200, p);
      const csp = r.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /form-action 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
      assert.equal(r.headers.get('cache-control'), 'no-store');
    }
    const html = (await get('/console')).text;
    // Every script is an external file of this server: no inline code, no event-handler attribute.
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      assert.match(m[1]!, /src="\/console\/assets\/[a-z-]+\.js"/);
      assert.equal(m[2]!.trim(), '');
    }
    assert.doesNotMatch(html, /\son[a-z]+=/i);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
    assert.equal((await get('/console/assets/nope.js')).status, 404);
    assert.equal((await get('/console/assets/..%2Fpackage.json')).status, 404);
  });

  it('when the API is called without a valid token or without the read scope, then it refuses in words', async () => {
    const none = await get('/console/api/keys');
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys(none.body), ['error', 'message']);
    assert.equal(none.body.error, 'Unauthenticated');
    assert.equal((await get('/console/api/keys', 'p11kms_0000000000000000_' + 'A'.repeat(43))).status, 401);
    const forbidden = await get('/console/api/keys', cryptoOnly);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error, 'Forbidden');
    assert.equal((await get('/console/api/nothing-here', reader)).status, 404);
  });

  it('when a read-only token lists and describes keys, then it sees its project only, and a dialect action is refused', async () => {
    const session = await get('/console/api/session', reader);
    assert.deepEqual(session.body, { project: 'p1', tokenId: reader.split('_')[1], scopes: ['read'] });
    const list = await get('/console/api/keys', reader);
    assert.equal(list.status, 200);
    const aliases = list.body.keys.map((k: { alias: string }) => k.alias).sort();
    assert.deepEqual(aliases, ['aes-1', 'conv-1', 'rsa-1']);
    const aes = list.body.keys.find((k: { alias: string }) => k.alias === 'aes-1');
    assert.equal(aes.keyId, f.aes.key_id);
    assert.equal(aes.keyTag, f.aes.keyTag);
    assert.equal(aes.currentVersion, 1);
    assert.equal(aes.state, 'Enabled');
    const filtered = await get('/console/api/keys?q=CONV&state=Enabled', reader);
    assert.deepEqual(filtered.body.keys.map((k: { alias: string }) => k.alias), ['conv-1']);
    assert.equal((await get('/console/api/keys?state=Deleted', reader)).status, 400);
    assert.equal((await get('/console/api/keys?sort=alias', reader)).status, 400);

    const detail = await get(`/console/api/keys/${f.aes.key_id}`, reader);
    assert.equal(detail.status, 200);
    assert.deepEqual(detail.body.versions.map((v: { version: number; state: string }) => [v.version, v.state]), [[1, 'Enabled']]);
    // Another project's key reads as missing.
    const foreign = await get(`/console/api/keys/${f.foreign.key_id}`, reader);
    assert.equal(foreign.status, 404);
    // Read-only: the dialects refuse its actions.
    const rotate = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/rotate`, { headers: { 'x-ncp-ocapi-token': reader } });
    assert.equal(rotate.status, 403);
  });

  it('when the audit trail is read, then only the project\'s records come back, filtered, and the chain verifies until a line is edited', async () => {
    await f.server.request('POST', '/v1.0/p2/kms/create-datakey', { headers: { 'X-Auth-Token': f.other }, body: { key_id: f.foreign.key_id, datakey_length: '256' } });
    await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/disable`, { headers: { 'x-ncp-ocapi-token': f.admin } });
    const refused = await f.server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': f.user }, body: { key_id: f.aes.key_id, datakey_length: '256' } });
    assert.equal(refused.status, 400);

    const all = await get('/console/api/audit', reader);
    assert.equal(all.status, 200);
    assert.ok(all.body.records.length > 0);
    assert.ok(all.body.records.every((r: { project: string }) => r.project === 'p1'), 'no record of another project');
    const times = all.body.records.map((r: { time: string }) => r.time);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');

    const failures = await get(`/console/api/audit?operation=create-datakey&outcome=failure&keyId=${f.aes.key_id}`, reader);
    assert.equal(failures.body.records.length, 1);
    assert.equal(failures.body.records[0].errorCode, 'KMS.0209');
    const future = await get('/console/api/audit?from=2999-01-01T00:00:00Z', reader);
    assert.deepEqual(future.body.records, []);
    assert.equal((await get('/console/api/audit?outcome=maybe', reader)).status, 400);
    assert.equal((await get('/console/api/audit?from=yesterday', reader)).status, 400);
    assert.equal((await get('/console/api/audit?limit=0', reader)).status, 400);

    const verified = await get('/console/api/audit/verify', reader);
    assert.equal(verified.body.ok, true);
    assert.ok(verified.body.files.some((x: { file: string }) => x.file === 'audit.log'));

    // A record copied by hand breaks the chain, and the console says where.
    const file = path.join(f.server.dataDir, 'audit.log');
    const last = readFileSync(file, 'utf8').trim().split('\n').pop()!;
    appendFileSync(file, `${last}\n`);
    const broken = await get('/console/api/audit/verify', reader);
    assert.equal(broken.body.ok, false);
    const bad = broken.body.files.find((x: { file: string }) => x.file === 'audit.log');
    assert.equal(bad.ok, false);
    assert.equal(typeof bad.line, 'number');
    assert.equal(typeof bad.reason, 'string');
  });

  it('when the HSM page is read, then it names the module, the token and the pool, and the health is checked now', async () => {
    const r = await get('/console/api/hsm', reader);
    assert.equal(r.status, 200);
    assert.match(r.body.module, /softhsm2/);
    assert.equal(r.body.tokenLabel, 'p11kms-dev');
    assert.match(r.body.profile, /^softhsm2: calls inline/, 'the profile in use, from the token façade');
    assert.equal(r.body.pool.up, true);
    assert.ok(r.body.pool.size >= 1);
    assert.equal(r.body.health.ok, true);
    assert.ok(Math.abs(r.body.health.checkedAt - Date.now()) < 60_000);
    assert.ok(!JSON.stringify(r.body).includes(f.server.pin()), 'never the PIN');
  });
});
