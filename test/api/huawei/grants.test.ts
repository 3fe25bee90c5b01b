/** Huawei grants: the one way across projects, exactly the granted operations, revocable on the next request. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';

let f: Fixture;
let p2crypto: string;
let p3: string;

const hw = (token: string, project: string, action: string, body: unknown) =>
  f.server.request('POST', `/v1.0/${project}/kms/${action}`, { headers: { 'X-Auth-Token': token }, body });

before(async () => {
  f = await fixture();
  p2crypto = f.server.token('p2');
  p3 = f.server.token('p3', true);
  f.secrets.add(p2crypto, p3);
});
after(async () => {
  await f?.server.stop();
});

async function grant(ops: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await hw(f.admin, 'p1', 'create-grant', { key_id: f.aes.key_id, grantee_principal: 'p2', operations: ops, ...extra });
  assert.equal(r.status, 200, r.text);
  assert.match(r.body.grant_id, /^[0-9a-f]{64}$/);
  return r.body.grant_id as string;
}

describe('Huawei grants', () => {
  let grantId = '';

  it('when p1 grants p2 create-datakey and decrypt-datakey, then p2 uses exactly those in its own path', async () => {
    grantId = await grant(['create-datakey', 'decrypt-datakey', 'describe-key']);
    const dk = await hw(p2crypto, 'p2', 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    assert.equal(dk.status, 200, dk.text);
    f.secrets.addHex(dk.body.plain_text);
    assert.equal(dk.body.key_id, f.aes.key_id);
    const back = await hw(p2crypto, 'p2', 'decrypt-datakey', { key_id: f.aes.key_id, cipher_text: dk.body.cipher_text, datakey_cipher_length: '32' });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.body.data_key, dk.body.plain_text);
    assert.equal((await hw(p2crypto, 'p2', 'describe-key', { key_id: f.aes.key_id })).status, 200);
  });

  it('when the grantee calls an operation it was not granted, then the key reads as missing', async () => {
    for (const [action, body] of [
      ['encrypt-data', { key_id: f.aes.key_id, plain_text: 'x' }],
      ['create-datakey-without-plaintext', { key_id: f.aes.key_id, datakey_length: '256' }],
      ['disable-key', { key_id: f.aes.key_id }],
      ['list-grants', { key_id: f.aes.key_id }],
      ['get-key-rotation-status', { key_id: f.aes.key_id }],
    ] as const) {
      const r = await hw(f.other, 'p2', action, body);
      assert.equal(r.status, 404, `${action}: ${r.text}`);
      assert.equal(r.body.error.error_code, 'KMS.0207');
    }
    // Not by alias, not through NCP, not for another project, not another key of p1.
    assert.equal((await hw(f.other, 'p2', 'create-datakey', { key_id: 'alias/aes-1', datakey_length: '256' })).status, 404);
    const n = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/create-custom-key`, { headers: { 'x-ncp-ocapi-token': f.other }, body: {} });
    assert.equal(n.status, 404);
    assert.equal((await hw(p3, 'p3', 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' })).status, 404);
    assert.equal((await hw(f.other, 'p2', 'create-datakey', { key_id: f.convergent.key_id, datakey_length: '256' })).status, 404);
  });

  it('when the owner lists grants, then the grant is there with the vendor fields; the grantee sees it as retirable', async () => {
    const r = await hw(f.user, 'p1', 'list-grants', { key_id: f.aes.key_id });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.total, 1);
    assert.equal(r.body.truncated, 'false');
    const g = r.body.grants[0];
    assert.equal(g.grant_id, grantId);
    assert.equal(g.key_id, f.aes.key_id);
    assert.equal(g.grantee_principal, 'p2');
    assert.equal(g.issuing_principal, 'p1');
    assert.deepEqual(g.operations, ['create-datakey', 'decrypt-datakey', 'describe-key']);
    assert.match(g.creation_date, /^\d+$/);
    const retirable = await hw(f.other, 'p2', 'list-retirable-grants', {});
    assert.equal(retirable.status, 200);
    assert.deepEqual(retirable.body.grants.map((x: { grant_id: string }) => x.grant_id), [grantId]);
    const none = await hw(p3, 'p3', 'list-retirable-grants', {});
    assert.equal(none.body.total, 0);
  });

  it('when the owner revokes the grant, then the grantee\'s next request reads the key as missing', async () => {
    const r = await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: grantId });
    assert.equal(r.status, 200, r.text);
    const after = await hw(f.other, 'p2', 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    assert.equal(after.status, 404);
    assert.equal(after.body.plain_text, undefined);
    const again = await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: grantId });
    assert.equal(again.status, 400);
    assert.equal(again.body.error.error_code, 'KMS.2501');
  });

  it('when the retiring principal retires a grant, then it stops working; nobody else can retire it', async () => {
    const id = await grant(['encrypt-data', 'decrypt-data'], { retiring_principal: 'p3', name: 'for-p2' });
    const enc = await hw(f.other, 'p2', 'encrypt-data', { key_id: f.aes.key_id, plain_text: 'granted plaintext 1' });
    f.secrets.add('granted plaintext 1');
    assert.equal(enc.status, 200, enc.text);
    // decrypt-data without key_id: the envelope names p1's key, the grant allows it.
    const dec = await hw(f.other, 'p2', 'decrypt-data', { cipher_text: enc.body.cipher_text });
    assert.equal(dec.status, 200, dec.text);
    assert.equal(dec.body.plain_text, 'granted plaintext 1');
    const stranger = f.server.token('p4', true);
    f.secrets.add(stranger);
    assert.equal((await hw(stranger, 'p4', 'retire-grant', { key_id: f.aes.key_id, grant_id: id })).status, 404);
    const r = await hw(p3, 'p3', 'retire-grant', { key_id: f.aes.key_id, grant_id: id });
    assert.equal(r.status, 200, r.text);
    assert.equal((await hw(f.other, 'p2', 'decrypt-data', { cipher_text: enc.body.cipher_text })).status, 404);
  });

  it('when the grantee retires its own grant, then it stops working', async () => {
    const id = await grant(['describe-key']);
    assert.equal((await hw(f.other, 'p2', 'retire-grant', { key_id: f.aes.key_id, grant_id: id })).status, 200);
    assert.equal((await hw(f.other, 'p2', 'describe-key', { key_id: f.aes.key_id })).status, 404);
  });

  it('when create-grant is malformed or the token lacks admin, then 4xx and no grant exists', async () => {
    const bad: Array<[Record<string, unknown>, number, string?]> = [
      [{ key_id: f.aes.key_id, grantee_principal: 'p2', operations: ['create-grant'] }, 400, 'KMS.2401'],
      [{ key_id: f.aes.key_id, grantee_principal: 'p2', operations: ['delete-key'] }, 400],
      [{ key_id: f.aes.key_id, grantee_principal: 'p2', operations: [] }, 400],
      [{ key_id: f.aes.key_id, grantee_principal: 'p 2', operations: ['describe-key'] }, 400, 'KMS.2402'],
      [{ key_id: f.aes.key_id, grantee_principal: 'p1', operations: ['describe-key'] }, 400, 'KMS.2402'],
      [{ key_id: f.aes.key_id, operations: ['describe-key'] }, 400],
    ];
    for (const [body, status, code] of bad) {
      const r = await hw(f.admin, 'p1', 'create-grant', body);
      assert.equal(r.status, status, JSON.stringify(body));
      if (code) assert.equal(r.body.error.error_code, code, JSON.stringify(body));
    }
    const r = await hw(f.user, 'p1', 'create-grant', { key_id: f.aes.key_id, grantee_principal: 'p2', operations: ['describe-key'] });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.error_code, 'KMS.0306');
    const list = await hw(f.admin, 'p1', 'list-grants', { key_id: f.aes.key_id });
    assert.equal(list.body.total, 0);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
