/**
 * The access log: one info line per request with its request id, method, route template, status,
 * time and project (and the error code of a refusal), never a body, header value or token;
 * KMS_ACCESS_LOG=off silences it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { TestServer } from '../helpers/server';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

function accessLines(server: TestServer): Array<Record<string, unknown>> {
  return server
    .logs()
    .split('\n')
    .filter((l) => l.includes('"message":"access"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
}

describe('access log', () => {
  it('when requests succeed or are refused, then each gets exactly one info line with its route, status, time and project, and nothing secret', async () => {
    const server = await TestServer.start({ KMS_LOG_LEVEL: 'info' });
    servers.push(server);
    const token = server.token('p1', true);
    const key = server.key('p1', 'logged', 'AES_256');
    const ids = { health: 'acc-health', ok: 'acc-ok', refused: 'acc-refused', missing: 'acc-missing' };
    await server.request('GET', '/healthz', { headers: { 'x-request-id': ids.health } });
    const ok = await server.request('POST', '/v1.0/p1/kms/create-datakey', {
      headers: { 'x-request-id': ids.ok, 'X-Auth-Token': token },
      body: { key_id: key.key_id, datakey_length: '256' },
    });
    assert.equal(ok.status, 200);
    const refused = await server.request('POST', `/kms/v1/keys/${key.keyTag}/encrypt`, {
      headers: { 'x-request-id': ids.refused, 'x-ncp-ocapi-token': 'p11kms_0000000000000000_wrong' },
      body: { plaintext: 'aGVsbG8=' },
    });
    assert.equal(refused.status, 401);
    assert.equal((await server.request('GET', '/nowhere', { headers: { 'x-request-id': ids.missing } })).status, 404);

    await until(() => accessLines(server).filter((l) => Object.values(ids).includes(String(l['requestId']))).length >= 4);
    const lines = accessLines(server);
    const of = (id: string) => {
      const mine = lines.filter((l) => l['requestId'] === id);
      assert.equal(mine.length, 1, `one access line for ${id}`);
      return mine[0]!;
    };
    const health = of(ids.health);
    assert.equal(health['level'], 'info');
    assert.equal(health['method'], 'GET');
    assert.equal(health['route'], '/healthz');
    assert.equal(health['status'], 200);
    assert.equal(typeof health['ms'], 'number');

    const done = of(ids.ok);
    assert.equal(done['method'], 'POST');
    assert.equal(done['status'], 200);
    assert.equal(done['project'], 'p1');
    assert.equal(done['operation'], 'huawei:create-datakey');
    assert.equal(done['route'], '/v1.0/{project_id}/kms/create-datakey');

    const no = of(ids.refused);
    assert.equal(no['status'], 401);
    assert.equal(no['operation'] ?? 'ncp:encrypt', 'ncp:encrypt');
    assert.equal(no['error'], 'UNAUTHORIZED');
    assert.equal(no['project'], undefined);

    assert.equal(of(ids.missing)['status'], 404);

    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const secret of [token, ok.body.plain_text as string, ok.body.cipher_text as string, 'aGVsbG8=', key.keyTag, key.key_id]) {
      assert.ok(!text.includes(secret), 'the access log carries no token, body or key name');
    }
  });

  it('when KMS_ACCESS_LOG=off, then no access lines are written', async () => {
    const server = await TestServer.start({ KMS_LOG_LEVEL: 'debug', KMS_ACCESS_LOG: 'off' });
    servers.push(server);
    assert.equal((await server.request('GET', '/healthz')).status, 200);
    assert.equal((await server.request('GET', '/livez')).status, 200);
    assert.deepEqual(accessLines(server), []);
  });
});
