/** Who may call what, and what every dialect answers outside its routes. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../helpers/fixture';

let f: Fixture;
before(async () => {
  f = await fixture();
});
after(async () => {
  await f?.server.stop();
});

describe('authentication, projects and routing', () => {
  it('when /healthz is asked and a token session works, then 200', async () => {
    const r = await f.server.request('GET', '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ok');
  });

  it('when the NCP token header is missing or unknown, then 401 UNAUTHORIZED', async () => {
    const p = `/kms/v1/keys/${f.aes.keyTag}/create-custom-key`;
    for (const headers of [{}, { 'x-ncp-ocapi-token': 'nope' }, { 'x-ncp-ocapi-token': f.user.slice(0, -1) + (f.user.endsWith('A') ? 'B' : 'A') }]) {
      const r = await f.server.request('POST', p, { headers, body: { requestPlainKey: true } });
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 'UNAUTHORIZED');
      assert.equal(r.body.data, undefined);
    }
  });

  it('when the Huawei X-Auth-Token is missing or unknown, then 401 KMS.0301', async () => {
    for (const headers of [{}, { 'X-Auth-Token': 'nope' }]) {
      const r = await f.server.request('POST', '/v1.0/p1/kms/create-datakey', { headers, body: { key_id: f.aes.key_id, datakey_length: '512' } });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.error_code, 'KMS.0301');
    }
  });

  it('when a Huawei path names another project than the token\'s, then 403 KMS.0321', async () => {
    const r = await f.server.request('POST', '/v1.0/p1/kms/create-datakey', {
      headers: { 'X-Auth-Token': f.other },
      body: { key_id: f.aes.key_id, datakey_length: '512' },
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.error_code, 'KMS.0321');
    assert.equal(r.body.plain_text, undefined);
  });

  it('when a token of another project names a key, then the key reads as not found in both dialects', async () => {
    const ncp = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/create-custom-key`, { headers: { 'x-ncp-ocapi-token': f.other }, body: {} });
    assert.equal(ncp.status, 404);
    assert.equal(ncp.body.code, 'NOT_FOUND');
    const hw = await f.server.request('POST', '/v1.0/p2/kms/create-datakey', { headers: { 'X-Auth-Token': f.other }, body: { key_id: f.aes.key_id, datakey_length: '512' } });
    assert.equal(hw.status, 404);
    assert.equal(hw.body.error.error_code, 'KMS.0207');
  });

  it('when a route does not exist or the method is wrong, then each dialect answers in its shape', async () => {
    const ncp = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/no-such-thing`, { headers: { 'x-ncp-ocapi-token': f.user }, body: {} });
    assert.equal(ncp.status, 404);
    assert.equal(ncp.body.code, 'NOT_FOUND');
    const hw = await f.server.request('POST', '/v1.0/p1/kms/no-such-thing', { headers: { 'X-Auth-Token': f.user }, body: {} });
    assert.equal(hw.status, 400);
    assert.equal(hw.body.error.error_code, 'KMS.0201');
    const method = await f.server.request('GET', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': f.user } });
    assert.equal(method.status, 405);
    assert.equal(method.body.error.error_code, 'KMS.0215');
    const elsewhere = await f.server.request('GET', '/nothing-here');
    assert.equal(elsewhere.status, 404);
  });

  it('when any response is sent, then it carries a request id and no-store, and never a stack trace', async () => {
    const r = await f.server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': f.user, 'X-Request-Id': 'trace-123' }, raw: '{' });
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-request-id'), 'trace-123');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('x-powered-by'), null);
    assert.doesNotMatch(r.text, /at .*\.js:\d+|SyntaxError|node_modules/);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
