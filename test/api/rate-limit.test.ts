/** Per-project rate limits: a tiny override for one project, 429 + Retry-After, other projects unaffected. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Secrets } from '../helpers/secrets';
import { TestServer, type Reply } from '../helpers/server';

let server: TestServer;
const secrets = new Secrets();
let slow: string;
let fast: string;

before(async () => {
  server = await TestServer.start({ KMS_RATE_LIMITS: 'slow=3', KMS_RATE_LIMIT: '1000' });
  slow = server.token('slow', true);
  fast = server.token('fast', true);
  secrets.add(slow, fast);
});
after(async () => {
  await server?.stop();
});

const burst = (n: number, f: () => Promise<Reply>): Promise<Reply[]> => Promise.all(Array.from({ length: n }, f));

describe('rate limits', () => {
  it('when a project with a limit of 3/s sends 10 NCP requests at once, then the excess gets 429 TOO_MANY_REQUESTS with Retry-After', async () => {
    const replies = await burst(10, () => server.request('GET', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': slow } }));
    const ok = replies.filter((r) => r.status === 200);
    const throttled = replies.filter((r) => r.status === 429);
    assert.ok(ok.length >= 1 && ok.length <= 3, `ok: ${ok.length}`);
    assert.equal(ok.length + throttled.length, 10);
    for (const r of throttled) {
      assert.equal(r.body.code, 'TOO_MANY_REQUESTS');
      const after = r.headers.get('retry-after');
      assert.match(after ?? '', /^[1-9][0-9]*$/);
      assert.ok(r.headers.get('x-request-id'));
    }
  });

  it('when the same project calls Huawei over the limit, then 429 APIGW.0308 with Retry-After', async () => {
    const replies = await burst(10, () => server.request('POST', '/v1.0/slow/kms/list-keys', { headers: { 'X-Auth-Token': slow }, body: {} }));
    const throttled = replies.filter((r) => r.status === 429);
    assert.ok(throttled.length >= 7, `throttled: ${throttled.length}`);
    for (const r of throttled) {
      assert.equal(r.body.error.error_code, 'APIGW.0308');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
  });

  it('when another project calls at the same time, then it is not throttled', async () => {
    const [slowReplies, fastReplies] = await Promise.all([
      burst(10, () => server.request('GET', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': slow } })),
      burst(40, () => server.request('GET', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': fast } })),
    ]);
    assert.ok(slowReplies.some((r) => r.status === 429));
    assert.ok(fastReplies.every((r) => r.status === 200));
  });

  it('when the window has passed, then the throttled project is served again', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const r = await server.request('GET', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': slow } });
    assert.equal(r.status, 200);
  });

  it('then nothing secret was logged', () => {
    secrets.assertNotLogged(server);
  });
});
