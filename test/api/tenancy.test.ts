/** Tenancy: every route answers "not yours" exactly like "does not exist"; scopes; expiry; revocation. */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ACTION_SCOPES } from '../../src/api/huawei/routes';
import { fixture, type Fixture } from '../helpers/fixture';

let f: Fixture;
let aesCipher: string; // a p1 ciphertext (Huawei encrypt-data, base64)
let dekCipher: string; // a p1 data key ciphertext (hex)
let ncpCipher: string; // a p1 NCP ciphertext
let ncpSignature: string;

const hw = (token: string, project: string, method: string, path: string, body?: unknown) =>
  f.server.request(method, `/v1.0/${project}/kms${path}`, { headers: { 'X-Auth-Token': token }, ...(body === undefined ? {} : { body }) });
const ncp = (token: string, method: string, path: string, body?: unknown) =>
  f.server.request(method, `/kms/v1${path}`, { headers: { 'x-ncp-ocapi-token': token }, ...(body === undefined ? {} : { body }) });

before(async () => {
  f = await fixture();
  const plain = 'tenancy secret plaintext';
  f.secrets.add(plain);
  const enc = await hw(f.admin, 'p1', 'POST', '/encrypt-data', { key_id: f.aes.key_id, plain_text: plain });
  assert.equal(enc.status, 200, enc.text);
  aesCipher = enc.body.cipher_text;
  const dk = await hw(f.admin, 'p1', 'POST', '/create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
  f.secrets.addHex(dk.body.plain_text);
  dekCipher = dk.body.cipher_text;
  const ne = await ncp(f.admin, 'POST', `/keys/${f.aes.keyTag}/encrypt`, { plaintext: Buffer.from(plain).toString('base64') });
  ncpCipher = ne.body.data.ciphertext;
  const ns = await ncp(f.admin, 'POST', `/keys/${f.rsa.keyTag}/sign`, { data: Buffer.from('data').toString('base64') });
  ncpSignature = ns.body.data.signature;
});
after(async () => {
  await f?.server.stop();
});

/** Huawei actions that name a key in the body, with a valid body for a given key id. */
function huaweiKeyBodies(keyId: string, rsaId: string): Record<string, Record<string, unknown>> {
  const dek = randomBytes(32);
  const message = createHash('sha256').update('m').digest().toString('base64');
  return {
    'describe-key': { key_id: keyId },
    'enable-key': { key_id: keyId },
    'disable-key': { key_id: keyId },
    'schedule-key-deletion': { key_id: keyId, pending_days: '7' },
    'cancel-key-deletion': { key_id: keyId },
    'update-key-alias': { key_id: keyId, key_alias: 'renamed' },
    'update-key-description': { key_id: keyId, key_description: 'd' },
    'enable-key-rotation': { key_id: keyId },
    'disable-key-rotation': { key_id: keyId },
    'update-key-rotation-interval': { key_id: keyId, rotation_interval: 30 },
    'get-key-rotation-status': { key_id: keyId },
    'create-datakey': { key_id: keyId, datakey_length: '256' },
    'create-datakey-without-plaintext': { key_id: keyId, datakey_length: '256' },
    'encrypt-datakey': { key_id: keyId, plain_text: Buffer.concat([dek, createHash('sha256').update(dek).digest()]).toString('hex'), datakey_plain_length: '32' },
    'decrypt-datakey': { key_id: keyId, cipher_text: dekCipher, datakey_cipher_length: '32' },
    'encrypt-data': { key_id: keyId, plain_text: 'hello' },
    'decrypt-data': { key_id: keyId, cipher_text: aesCipher },
    'get-publickey': { key_id: rsaId },
    sign: { key_id: rsaId, message, signing_algorithm: 'RSASSA_PSS_SHA_256' },
    verify: { key_id: rsaId, message, signature: Buffer.alloc(256, 1).toString('base64'), signing_algorithm: 'RSASSA_PSS_SHA_256' },
    'create-grant': { key_id: keyId, grantee_principal: 'p3', operations: ['describe-key'] },
    'list-grants': { key_id: keyId },
    'revoke-grant': { key_id: keyId, grant_id: 'a'.repeat(64) },
    'retire-grant': { key_id: keyId, grant_id: 'a'.repeat(64) },
  };
}
const HUAWEI_NO_KEY = ['create-key', 'list-keys', 'gen-random', 'list-retirable-grants'];

describe('tenancy: another project\'s key reads exactly like a missing one', () => {
  it('when the Huawei action table is compared with this test, then every action is covered', () => {
    const covered = new Set([...Object.keys(huaweiKeyBodies('x', 'y')), ...HUAWEI_NO_KEY]);
    assert.deepEqual([...Object.keys(ACTION_SCOPES)].sort(), [...covered].sort());
  });

  it('when a p2 admin names a p1 key in any Huawei action, then the answer equals the one for a key that does not exist', async () => {
    const foreign = huaweiKeyBodies(f.aes.key_id, f.rsa.key_id);
    const missing = huaweiKeyBodies(randomUUID(), randomUUID());
    for (const action of Object.keys(foreign)) {
      const a = await hw(f.other, 'p2', 'POST', `/${action}`, foreign[action]);
      const b = await hw(f.other, 'p2', 'POST', `/${action}`, missing[action]);
      assert.equal(a.status, 404, `${action}: ${a.text}`);
      assert.equal(a.body.error.error_code, 'KMS.0207', action);
      assert.equal(a.status, b.status, action);
      assert.deepEqual(a.body, b.body, action);
    }
    // decrypt-data without key_id: the envelope names a p1 key.
    const r = await hw(f.other, 'p2', 'POST', '/decrypt-data', { cipher_text: aesCipher });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.error_code, 'KMS.0207');
  });

  it('when a p2 admin uses the Huawei tag routes on a p1 key, then the answers equal those for a missing key', async () => {
    const routes: Array<[string, (id: string) => string, unknown]> = [
      ['GET', (id) => `/${id}/tags`, undefined],
      ['POST', (id) => `/${id}/tags`, { tag: { key: 'k', value: 'v' } }],
      ['POST', (id) => `/${id}/tags/action`, { action: 'create', tags: [{ key: 'k', value: 'v' }] }],
      ['DELETE', (id) => `/${id}/tags/k`, undefined],
    ];
    const missing = randomUUID();
    for (const [method, path, body] of routes) {
      const a = await hw(f.other, 'p2', method, path(f.aes.key_id), body);
      const b = await hw(f.other, 'p2', method, path(missing), body);
      assert.equal(a.status, 404, `${method} ${path('id')}: ${a.text}`);
      assert.deepEqual(a.body, b.body);
    }
    const tags = await hw(f.other, 'p2', 'GET', '/tags');
    assert.equal(tags.status, 200);
    const list = await hw(f.other, 'p2', 'POST', '/list-keys', {});
    assert.ok(!list.text.includes(f.aes.key_id));
  });

  it('when a p2 admin names a p1 keyTag on any NCP route, then the answer equals the one for a keyTag that does not exist', async () => {
    const routes: Array<[string, string, unknown]> = [
      ['GET', '', undefined],
      ['DELETE', '', undefined],
      ['POST', '/enable', {}],
      ['POST', '/disable', {}],
      ['POST', '/request-deletion', {}],
      ['POST', '/cancel-deletion', {}],
      ['POST', '/rotate', {}],
      ['GET', '/versions', undefined],
      ['POST', '/versions/1/enable', {}],
      ['POST', '/versions/1/disable', {}],
      ['PUT', '/rotation-period', { rotationPeriod: 30 }],
      ['POST', '/enable-auto-rotation', {}],
      ['POST', '/disable-auto-rotation', {}],
      ['POST', '/create-custom-key', { requestPlainKey: true }],
      ['POST', '/encrypt', { plaintext: Buffer.from('x').toString('base64') }],
      ['POST', '/decrypt', { ciphertext: ncpCipher }],
      ['POST', '/re-encrypt', { ciphertext: ncpCipher }],
      ['POST', '/reencrypt', { ciphertext: ncpCipher }],
      ['POST', '/sign', { data: Buffer.from('data').toString('base64') }],
      ['POST', '/verify', { data: Buffer.from('data').toString('base64'), signature: ncpSignature }],
      ['POST', '/get-pub-key', {}],
    ];
    const missing = randomBytes(32).toString('hex');
    for (const [method, suffix, body] of routes) {
      const tag = suffix === '/sign' || suffix === '/verify' || suffix === '/get-pub-key' ? f.rsa.keyTag : f.aes.keyTag;
      const a = await ncp(f.other, method, `/keys/${tag}${suffix}`, body);
      const b = await ncp(f.other, method, `/keys/${missing}${suffix}`, body);
      assert.equal(a.status, 404, `${method} ${suffix}: ${a.text}`);
      assert.equal(a.body.code, 'NOT_FOUND');
      assert.deepEqual(a.body, b.body, `${method} ${suffix}`);
    }
    const list = await ncp(f.other, 'GET', '/keys');
    assert.equal(list.status, 200);
    assert.ok(!list.text.includes(f.aes.keyTag));
  });

  it('when p1 checks its keys after all that, then nothing changed', async () => {
    const r = await hw(f.admin, 'p1', 'POST', '/describe-key', { key_id: f.aes.key_id });
    assert.equal(r.body.key_info.key_state, '2');
    assert.equal(r.body.key_info.key_alias, 'aes-1');
  });

  it('when a Huawei path names another project, then 403', async () => {
    const r = await hw(f.other, 'p1', 'POST', '/describe-key', { key_id: f.aes.key_id });
    assert.equal(r.status, 403);
  });
});

describe('scopes, expiry and revocation', () => {
  it('when token create runs without flags, then it prints one token and nothing else', () => {
    const out = f.server.cli(['token', 'create', '--project', 'p1']);
    assert.match(out, /^p11kms_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    f.secrets.add(out.trim());
  });

  it('when a read-only token calls crypto or management, then 403 in each dialect; reads work', async () => {
    const read = f.server.cli(['token', 'create', '--project', 'p1', '--scope', 'read']).trim();
    f.secrets.add(read);
    const c = await hw(read, 'p1', 'POST', '/create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    assert.equal(c.status, 403);
    assert.equal(c.body.error.error_code, 'KMS.0306');
    assert.equal(c.body.plain_text, undefined);
    const m = await hw(read, 'p1', 'POST', '/disable-key', { key_id: f.aes.key_id });
    assert.equal(m.status, 403);
    const n = await ncp(read, 'POST', `/keys/${f.aes.keyTag}/encrypt`, { plaintext: 'AAAA' });
    assert.equal(n.status, 403);
    assert.equal(n.body.code, 'FORBIDDEN');
    assert.equal((await hw(read, 'p1', 'POST', '/describe-key', { key_id: f.aes.key_id })).status, 200);
    assert.equal((await hw(read, 'p1', 'POST', '/get-publickey', { key_id: f.rsa.key_id })).status, 200);
    assert.equal((await ncp(read, 'GET', `/keys/${f.aes.keyTag}`)).status, 200);
    assert.equal((await hw(read, 'p1', 'GET', `/${f.aes.key_id}/tags`)).status, 200);
  });

  it('when a crypto-only token reads, or an admin-only token uses a key, then 403', async () => {
    const crypto = f.server.cli(['token', 'create', '--project', 'p1', '--scope', 'crypto']).trim();
    const admin = f.server.cli(['token', 'create', '--project', 'p1', '--scope', 'admin']).trim();
    f.secrets.add(crypto, admin);
    assert.equal((await hw(crypto, 'p1', 'POST', '/describe-key', { key_id: f.aes.key_id })).status, 403);
    assert.equal((await ncp(crypto, 'GET', '/keys')).status, 403);
    const dk = await hw(crypto, 'p1', 'POST', '/create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    assert.equal(dk.status, 200);
    f.secrets.addHex(dk.body.plain_text);
    assert.equal((await hw(admin, 'p1', 'POST', '/create-datakey', { key_id: f.aes.key_id, datakey_length: '256' })).status, 403);
    const created = await hw(admin, 'p1', 'POST', '/create-key', { key_alias: 'by-admin-scope' });
    assert.equal(created.status, 200);
  });

  it('when a token expires, then the next request gets 401', async () => {
    // The token must be seen working before it expires, and the CLI alone can take seconds on a
    // loaded machine: a lifetime too short to check is tried again with twice as long.
    let t = '';
    for (let life = 2; ; life *= 2) {
      const started = Date.now();
      t = f.server.cli(['token', 'create', '--project', 'p1', '--expires', `${life}s`]).trim();
      f.secrets.add(t);
      const made = Date.now();
      const first = await ncp(t, 'GET', '/keys');
      if (first.status === 200) {
        // Expired by now whenever during the CLI's run it was made.
        await sleep(made + life * 1000 + 100 - Date.now());
        break;
      }
      assert.ok(Date.now() - started >= life * 1000, `a fresh token was refused: ${first.status} ${first.text}`);
    }
    const r = await ncp(t, 'GET', '/keys');
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'UNAUTHORIZED');
    const h = await hw(t, 'p1', 'POST', '/list-keys', {});
    assert.equal(h.status, 401);
    assert.equal(h.body.error.error_code, 'KMS.0301');
  });

  it('when --expires is not a duration or a future date, then the CLI refuses', () => {
    assert.throws(() => f.server.cli(['token', 'create', '--project', 'p1', '--expires', '2001-01-01T00:00:00Z']));
    assert.throws(() => f.server.cli(['token', 'create', '--project', 'p1', '--expires', 'soon']));
  });

  it('when a token is revoked, then the next request gets 401; token list shows it revoked and never a secret', async () => {
    const t = f.server.cli(['token', 'create', '--project', 'p1', '--scope', 'crypto,read', '--expires', '30d']).trim();
    f.secrets.add(t);
    const id = t.split('_')[1]!;
    assert.equal((await hw(t, 'p1', 'POST', '/list-keys', {})).status, 200);
    f.server.cli(['token', 'revoke', id]);
    assert.equal((await hw(t, 'p1', 'POST', '/list-keys', {})).status, 401);
    assert.equal((await ncp(t, 'GET', '/keys')).status, 401);
    const lines = f.server.cli(['token', 'list', '--project', 'p1']).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const mine = lines.find((l) => l['id'] === id);
    assert.ok(mine);
    assert.deepEqual(Object.keys(mine).sort(), ['created', 'expires', 'id', 'project', 'revoked', 'scopes']);
    assert.deepEqual(mine['scopes'], ['crypto', 'read']);
    assert.equal(mine['project'], 'p1');
    assert.ok(typeof mine['revoked'] === 'string');
    assert.ok(typeof mine['expires'] === 'string');
    assert.ok(lines.every((l) => l['project'] === 'p1'));
    const all = f.server.cli(['token', 'list']);
    assert.ok(!all.includes(t.slice('p11kms_0123456789abcdef_'.length)));
    assert.ok(!all.includes(f.admin.slice('p11kms_0123456789abcdef_'.length)));
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
