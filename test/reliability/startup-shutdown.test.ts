/**
 * The real server process: it starts while its token is silent and becomes healthy by itself once
 * the token answers (a token that can't be used at all ends it: fail-fast.test.ts); SIGTERM stops
 * accepting, lets in-flight requests finish, closes its sessions, finalizes the module and exits 0.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { throughNetshim } from '../helpers/netshim';
import { Secrets } from '../helpers/secrets';
import { keygenHelpers, TestServer } from '../helpers/server';
import { TokenView } from '../helpers/token';
import { PATIENCE_MS, until } from '../helpers/wait';

const secrets = new Secrets();
const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

/** The server's warn and error lines: what a failure message needs to be read without a re-run. */
function warnings(server: TestServer): string {
  return server
    .logs()
    .split('\n')
    .filter((l) => /"level":"(warn|error)"/.test(l))
    .join('\n');
}

describe('start-up while the token does not answer', () => {
  it('when the token is silent at start-up (netshim, generic profile), then the service listens, /healthz is 503 with the reason, HSM calls are 503, and once the token answers it becomes healthy by itself', async () => {
    let hangFile = '';
    const server = await TestServer.start({ KMS_TOKEN_PROFILE: 'generic', KMS_HSM_CALL_TIMEOUT_MS: '1000' }, undefined, {
      envFor: (dataDir) => {
        hangFile = path.join(dataDir, 'partition');
        writeFileSync(hangFile, '');
        return throughNetshim(dataDir, { delayUs: 0, hangFile });
      },
    });
    servers.push(server);
    const health = await server.request('GET', '/healthz');
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'unavailable');
    assert.match(health.body.reason, /no answer from the token/);
    const token = server.token('p1', true);
    secrets.add(token);
    const r = await server.request('POST', '/v1.0/p1/kms/gen-random', { headers: { 'X-Auth-Token': token }, body: { random_data_length: '256' } });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.error.error_code, 'KMS.0104');

    rmSync(hangFile);
    await until('healthy', async () => (await server.request('GET', '/healthz')).status === 200, { everyMs: 100 });
    const created = await server.request('POST', '/v1.0/p1/kms/create-key', { headers: { 'X-Auth-Token': token }, body: { key_alias: 'late' } });
    assert.equal(created.status, 200, `${created.text}\n${warnings(server)}`);
    const plain = randomBytes(16).toString('hex');
    secrets.add(plain);
    const enc = await server.request('POST', '/v1.0/p1/kms/encrypt-data', {
      headers: { 'X-Auth-Token': token },
      body: { key_id: created.body.key_info.key_id, plain_text: plain },
    });
    assert.equal(enc.status, 200, `${enc.text}\n${warnings(server)}`);
    const dec = await server.request('POST', '/v1.0/p1/kms/decrypt-data', { headers: { 'X-Auth-Token': token }, body: { cipher_text: enc.body.cipher_text } });
    assert.equal(dec.body.plain_text, plain);
    assert.match(server.logs(), /hsm token reachable again/);
    secrets.assertNotLogged(server);
  });
});

describe('start-up reconciliation', () => {
  it('when a key the store lists has lost its token objects, then start-up logs an error naming it and keeps the row', async () => {
    const first = await TestServer.start();
    const token = first.token('p1', true);
    secrets.add(token);
    const kept = first.key('p1', 'kept', 'AES_256');
    const lost = first.key('p1', 'lost', 'AES_256');
    const earlier = first.logs();
    await first.stop({ keepData: true });
    const view = new TokenView(first);
    for (const h of view.objectsOf(lost.key_id)) view.lib.C_DestroyObject(view.session, h);
    view.close();
    const server = await TestServer.start({}, first.dataDir);
    servers.push(server);
    await until('the reconciliation report', () => /has no token object/.test(server.logs()));
    const line = server.logs().split('\n').find((l) => l.includes('has no token object')) ?? '';
    assert.match(line, /"level":"error"/);
    assert.ok(line.includes(lost.key_id));
    assert.ok(!server.logs().includes(`has no token object","keyId":"${kept.key_id}`));
    const d = await server.request('POST', '/v1.0/p1/kms/describe-key', { headers: { 'X-Auth-Token': token }, body: { key_id: lost.key_id } });
    assert.equal(d.status, 200, d.text);
    const ok = await server.request('POST', '/v1.0/p1/kms/encrypt-data', { headers: { 'X-Auth-Token': token }, body: { key_id: kept.key_id, plain_text: 'still-works-1234' } });
    assert.equal(ok.status, 200, ok.text);
    secrets.add('still-works-1234');
    secrets.assertNotLogged(server, earlier);
  });
});

describe('orphans are never used', () => {
  it("when an orphan object carries the CKA_ID of a key's next version, then it is reported, rotation replaces it, and old and new ciphertexts decrypt", async () => {
    const first = await TestServer.start();
    const token = first.token('p1', true);
    secrets.add(token);
    const key = first.key('p1', 'rotating', 'AES_256');
    const ncp = (server: TestServer, action: string, body?: unknown) =>
      server.request('POST', `/kms/v1/keys/${key.keyTag}/${action}`, { headers: { 'x-ncp-ocapi-token': token }, ...(body ? { body } : {}) });
    const p1 = randomBytes(20);
    secrets.add(p1);
    const ct1 = (await ncp(first, 'encrypt', { plaintext: p1.toString('base64') })).body.data.ciphertext as string;
    const earlier = first.logs();
    await first.stop({ keepData: true });
    // What a rotation that crashed after making objects and before its claim was dropped leaves, but unusable.
    const view = new TokenView(first);
    view.plantOrphan(key.key_id, 2);
    view.close();
    const server = await TestServer.start({}, first.dataDir);
    servers.push(server);
    await until('the orphan report', () => /orphan token object found/.test(server.logs()));
    assert.ok(server.logs().split('\n').some((l) => l.includes('orphan token object found') && l.includes(key.key_id)));
    const rotated = await ncp(server, 'rotate');
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(rotated.body.data.version, 2);
    const p2 = randomBytes(20);
    secrets.add(p2);
    const e2 = await ncp(server, 'encrypt', { plaintext: p2.toString('base64') });
    assert.equal(e2.status, 200, e2.text);
    assert.match(e2.body.data.ciphertext, /^ncpkms:v2:/);
    assert.equal((await ncp(server, 'decrypt', { ciphertext: e2.body.data.ciphertext })).body.data.plaintext, p2.toString('base64'));
    assert.equal((await ncp(server, 'decrypt', { ciphertext: ct1 })).body.data.plaintext, p1.toString('base64'));
    secrets.assertNotLogged(server, earlier);
  });
});

describe('graceful shutdown', () => {
  it('when SIGTERM arrives with requests in flight, then they finish with 200, new connections are refused, sessions are closed and the process exits 0', async () => {
    const server = await TestServer.start();
    servers.push(server);
    const token = server.token('p1', true);
    secrets.add(token);
    const key = server.key('p1', 'rsa', 'RSA_2048');
    const sign = () =>
      server.request('POST', `/kms/v1/keys/${key.keyTag}/sign`, {
        headers: { 'x-ncp-ocapi-token': token },
        body: { data: randomBytes(32).toString('base64') },
      });
    assert.equal((await sign()).status, 200);
    let signalled = 0;
    let answered = 0;
    const outcomes = Array.from({ length: 300 }, () =>
      sign().then(
        (r) => {
          answered++;
          return { status: r.status, after: signalled > 0 && Date.now() >= signalled };
        },
        () => ({ status: 0, after: true }), // not accepted: the listener was closed first
      ),
    );
    // The server is serving them once the first has come back; the rest are in flight.
    await until('the first answer', () => answered > 0, { everyMs: 1 });
    signalled = Date.now();
    const code = server.kill('SIGTERM');
    const results = await Promise.all(outcomes);
    assert.equal(await code, 0);
    for (const r of results) assert.ok(r.status === 0 || r.status === 200, `status ${r.status}`);
    assert.ok(results.some((r) => r.status === 200 && r.after), 'some requests were still in flight at SIGTERM and completed');
    const logs = server.logs();
    assert.match(logs, /"message":"stopping"/);
    assert.match(logs, /"message":"stopped"/);
    await assert.rejects(fetch(`${server.url}/livez`));
    secrets.assertNotLogged(server);
  });

  it('when clients give up on key creations and SIGTERM follows, then the creations that started still complete: key rows, their objects, nothing logged at error, exit 0', async () => {
    // The grace period is not what is tested: on a loaded machine six RSA pairs made one at a time
    // can take longer than the default 10 s, and the runtime would then close under them.
    const server = await TestServer.start({ KMS_SHUTDOWN_GRACE_MS: String(PATIENCE_MS) });
    servers.push(server);
    const token = server.token('p1', true);
    secrets.add(token);
    // An RSA pair takes the helper tens to hundreds of ms, and it makes them one at a time: the
    // clients leave, and the server is told to stop, while they are being made.
    const gaveUp = new AbortController();
    const asked = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) =>
      fetch(`${server.url}/v1.0/p1/kms/create-key`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'X-Auth-Token': token },
        body: JSON.stringify({ key_alias: `abandoned-${n}`, key_spec: 'RSA_2048' }),
        signal: gaveUp.signal,
      }).catch(() => undefined),
    );
    // The helper starts with the first job; the others are queued behind it.
    await until('a key-generation helper', () => keygenHelpers({ dataDir: server.dataDir }).length > 0, { everyMs: 5 });
    gaveUp.abort();
    await Promise.all(asked);
    assert.equal(await server.kill('SIGTERM'), 0);
    const logs = server.logs();
    assert.ok(!logs.split('\n').some((l) => l.includes('"level":"error"')), `errors logged: ${logs.split('\n').filter((l) => l.includes('"level":"error"')).join('\n')}`);
    // A request the abort caught before the server read it never starts; every one that started finished.
    const created = logs.split('\n').filter((l) => l.includes('"message":"key created"')).length;
    assert.ok(created >= 1, 'at least the first creation had started');
    // On a restart the key is there and whole: no orphan, nothing missing.
    const again = await TestServer.start({}, server.dataDir);
    servers.push(again);
    await until('the reconciliation report', () => /token and store reconciled/.test(again.logs()));
    const report = JSON.parse(again.logs().split('\n').find((l) => l.includes('token and store reconciled'))!) as { objects: number; orphans: number; missing: number };
    assert.deepEqual({ orphans: report.orphans, missing: report.missing }, { orphans: 0, missing: 0 });
    assert.equal(report.objects, 2 * created, 'an RSA pair per created key, and nothing else');
  });
});
