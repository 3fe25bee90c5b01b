/**
 * Prometheus metrics on their own listener (KMS_METRICS_ADDR; port 0 here): requests by dialect,
 * operation and status, token calls and their errors by CKR name, the session pool, token up, audit
 * sync time, rate-limited requests and keys by state; summed over workers; no key id, token or
 * project in any label unless the project label is opted in.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as kms from '@aws-sdk/client-kms';
import { TestServer } from '../helpers/server';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function metricsUrl(server: TestServer): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const m = /"message":"metrics listening","path":"\/metrics","port":(\d+)/.exec(server.logs());
    if (m) return `http://127.0.0.1:${m[1]}/metrics`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no metrics listener:\n${server.logs()}`);
}

/** Every sample of the exposition text: `name{labels}` → value. */
async function scrape(url: string): Promise<{ text: string; value(name: string, labels?: Record<string, string>): number }> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  return {
    text,
    value(name, labels = {}) {
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
      }
      return sum;
    },
  };
}

describe('metrics', () => {
  it('when requests are served, then /metrics on its own port counts them with their operation and status, token calls, pool, audit and keys, and no key id, token or project', async () => {
    const server = await TestServer.start({ KMS_LOG_LEVEL: 'info', KMS_RATE_LIMITS: 'slow=1' });
    servers.push(server);
    const url = await metricsUrl(server);
    const token = server.token('p1', true);
    const slow = server.token('slow', true);
    const key = server.key('p1', 'counted', 'AES_256');
    server.key('p1', 'disabled', 'AES_256');
    for (let i = 0; i < 3; i++) {
      const r = await server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': token }, body: { key_id: key.key_id, datakey_length: '256' } });
      assert.equal(r.status, 200);
    }
    const dk = await server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': token }, body: { key_id: key.key_id, datakey_length: '256' } });
    const tampered = dk.body.cipher_text.slice(0, -2) + (dk.body.cipher_text.endsWith('00') ? '11' : '00');
    const bad = await server.request('POST', '/v1.0/p1/kms/decrypt-datakey', {
      headers: { 'X-Auth-Token': token },
      body: { key_id: key.key_id, cipher_text: tampered, datakey_cipher_length: '32' },
    });
    assert.equal(bad.status, 400);
    assert.equal((await server.request('POST', `/kms/v1/keys/${key.keyTag}/encrypt`, { headers: { 'x-ncp-ocapi-token': 'p11kms_0000000000000000_x' }, body: { plaintext: 'aGk=' } })).status, 401);
    let limited = 0;
    for (let i = 0; i < 5 && limited === 0; i++) {
      const r = await server.request('POST', '/v1.0/slow/kms/list-keys', { headers: { 'X-Auth-Token': slow }, body: {} });
      if (r.status === 429) limited++;
    }
    assert.equal(limited, 1);
    const aws = JSON.parse(server.cli(['token', 'create', '--project', 'p1', '--aws'])) as { accessKeyId: string; secretAccessKey: string; region: string };
    const sdk = new kms.KMS({ region: aws.region, endpoint: server.url, credentials: aws, maxAttempts: 1 });
    assert.equal((await sdk.describeKey({ KeyId: key.key_id })).KeyMetadata?.KeyId, key.key_id);

    const m = await scrape(url);
    assert.equal(m.value('p11kms_http_request_duration_seconds_count', { dialect: 'huawei', operation: 'create-datakey', status: '200' }), 4);
    assert.equal(m.value('p11kms_http_request_duration_seconds_count', { dialect: 'huawei', operation: 'decrypt-datakey', status: '400' }), 1);
    assert.equal(m.value('p11kms_http_request_duration_seconds_count', { dialect: 'ncp', status: '401' }), 1);
    assert.equal(m.value('p11kms_http_request_duration_seconds_count', { dialect: 'aws', operation: 'DescribeKey', status: '200' }), 1);
    assert.equal(m.value('p11kms_rate_limited_requests_total', { dialect: 'huawei' }), 1);
    assert.ok(m.value('p11kms_token_call_duration_seconds_count') > 0, 'token calls are timed');
    assert.ok(m.value('p11kms_token_call_duration_seconds_count', { operation: 'openSession' }) > 0);
    const errors = m.text.split('\n').filter((l) => l.startsWith('p11kms_token_call_errors_total{'));
    assert.ok(errors.some((l) => /ckr="CKR_[A-Z_]+"/.test(l)), `the tampered ciphertext's token error is counted by CKR name:\n${errors.join('\n')}`);
    assert.equal(m.value('p11kms_token_up'), 1);
    assert.equal(m.value('p11kms_pool_sessions'), 4);
    assert.equal(m.value('p11kms_pool_sessions_in_use'), 0);
    assert.equal(m.value('p11kms_pool_waiting'), 0);
    assert.equal(m.value('p11kms_keys', { state: 'Enabled' }), 3, "p1's two and the key that seals AWS secrets");
    assert.ok(m.value('p11kms_audit_sync_duration_seconds_count') >= 8, `every audited request: ${m.value('p11kms_audit_sync_duration_seconds_count')}`);
    for (const secret of [key.key_id, key.keyTag, token, slow, aws.accessKeyId, aws.secretAccessKey, 'p1"', 'slow"']) assert.ok(!m.text.includes(secret), 'no key id, token or project in the metrics');

    assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
    assert.notEqual(new URL(url).port, new URL(server.url).port, 'a listener of its own');
    assert.equal((await server.request('GET', '/metrics')).status, 404, 'not on the API port');
  });

  it('when the token is driven from session threads (generic profile), then their calls are timed and their failures counted by CKR name', async () => {
    const server = await TestServer.start({ KMS_LOG_LEVEL: 'info', KMS_TOKEN_PROFILE: 'generic' });
    servers.push(server);
    const url = await metricsUrl(server);
    const token = server.token('p3', true);
    const key = server.key('p3', 'threaded', 'AES_256');
    const dk = await server.request('POST', '/v1.0/p3/kms/create-datakey', { headers: { 'X-Auth-Token': token }, body: { key_id: key.key_id, datakey_length: '256' } });
    assert.equal(dk.status, 200);
    const tampered = dk.body.cipher_text.slice(0, -2) + (dk.body.cipher_text.endsWith('00') ? '11' : '00');
    const bad = await server.request('POST', '/v1.0/p3/kms/decrypt-datakey', {
      headers: { 'X-Auth-Token': token },
      body: { key_id: key.key_id, cipher_text: tampered, datakey_cipher_length: '32' },
    });
    assert.equal(bad.status, 400);
    const m = await scrape(url);
    const ops = m.text.split('\n').filter((l) => l.startsWith('p11kms_token_call_duration_seconds_count{'));
    assert.ok(m.value('p11kms_token_call_duration_seconds_count', { operation: 'decrypt' }) >= 1, `the decryption's thread call is timed:\n${ops.join('\n')}`);
    const errors = m.text.split('\n').filter((l) => l.startsWith('p11kms_token_call_errors_total{'));
    assert.ok(errors.some((l) => /operation="decrypt".*ckr="CKR_[A-Z_]+"|ckr="CKR_[A-Z_]+".*operation="decrypt"/.test(l)), `the tampered ciphertext's failure is counted by CKR name:\n${errors.join('\n')}`);
    assert.equal(m.value('p11kms_token_up'), 1);
    assert.equal(m.value('p11kms_pool_sessions'), 32, "the generic profile's default KMS_POOL_SIZE");
    assert.equal(m.value('p11kms_pool_sessions_in_use'), 0);
  });

  it('when several workers serve, then the primary sums their metrics; the project label only when opted in', async () => {
    const server = await TestServer.start({ KMS_LOG_LEVEL: 'info', KMS_WORKERS: '2', KMS_METRICS_PROJECT_LABEL: 'true' });
    servers.push(server);
    const url = await metricsUrl(server);
    const token = server.token('p2', true);
    const key = server.key('p2', 'summed', 'AES_256');
    const n = 12;
    for (let i = 0; i < n; i++) {
      // A new connection each time, so the primary hands them to both workers.
      const r = await fetch(`${server.url}/v1.0/p2/kms/describe-key`, {
        method: 'POST',
        headers: { 'X-Auth-Token': token, connection: 'close' },
        body: JSON.stringify({ key_id: key.key_id }),
      });
      assert.equal(r.status, 200);
      await r.text();
    }
    const m = await scrape(url);
    assert.equal(m.value('p11kms_http_request_duration_seconds_count', { operation: 'describe-key', project: 'p2' }), n);
    assert.equal(m.value('p11kms_pool_sessions'), 8, 'both workers\' pools');
    assert.equal(m.value('p11kms_token_up'), 1);
    assert.equal(m.value('p11kms_keys', { state: 'Enabled' }), 1, 'the store is counted once, not once per worker');
  });
});
