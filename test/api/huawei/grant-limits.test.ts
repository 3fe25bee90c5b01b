/**
 * What a grant can and cannot pass on (issue 19): a grantee grants only a subset of one of its own
 * grants, grants derived from a grant go with it, and a grantee opens a ciphertext only through
 * the operation that matches what the envelope says it holds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';

let f: Fixture;
let p3: string;
let p4: string;

const hw = (token: string, project: string, action: string, body: unknown) =>
  f.server.request('POST', `/v1.0/${project}/kms/${action}`, { headers: { 'X-Auth-Token': token }, body });

async function grant(token: string, issuer: string, grantee: string, ops: string[]): Promise<string> {
  const r = await hw(token, issuer, 'create-grant', { key_id: f.aes.key_id, grantee_principal: grantee, operations: ops });
  assert.equal(r.status, 200, `${issuer} -> ${grantee} ${ops.join(',')}: ${r.text}`);
  return r.body.grant_id as string;
}

const makesDataKeys = async (token: string, project: string): Promise<number> =>
  (await hw(token, project, 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' })).status;

const grantIds = async (): Promise<string[]> => {
  const r = await hw(f.admin, 'p1', 'list-grants', { key_id: f.aes.key_id });
  assert.equal(r.status, 200, r.text);
  return r.body.grants.map((g: { grant_id: string }) => g.grant_id).sort();
};

before(async () => {
  f = await fixture();
  p3 = f.server.token('p3', true);
  p4 = f.server.token('p4', true);
  f.secrets.add(p3, p4);
});
after(async () => {
  await f?.server.stop();
});

describe('grants passed on by a grantee', () => {
  it('when a grantee with create-grant grants operations it does not hold, to itself or a third project, then it is refused and nothing is granted', async () => {
    const root = await grant(f.admin, 'p1', 'p2', ['create-grant', 'create-datakey', 'describe-key']);
    for (const [grantee, ops] of [
      ['p2', ['decrypt-data', 'create-datakey']],
      ['p3', ['decrypt-datakey']],
      ['p3', ['create-datakey', 'encrypt-data']],
    ] as const) {
      const r = await hw(f.other, 'p2', 'create-grant', { key_id: f.aes.key_id, grantee_principal: grantee, operations: ops });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.body.error.error_code, 'KMS.0306');
    }
    assert.deepEqual(await grantIds(), [root]);
    assert.equal((await hw(f.other, 'p2', 'encrypt-data', { key_id: f.aes.key_id, plain_text: 'x' })).status, 404);
    assert.equal(await makesDataKeys(p3, 'p3'), 404);
    assert.ok((await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: root })).status === 200);
  });

  it('when a grantee passes on a subset, then the third project gets it, and revoking the first grant removes every grant derived from it at once', async () => {
    const root = await grant(f.admin, 'p1', 'p2', ['create-grant', 'create-datakey', 'describe-key']);
    const child = await grant(f.other, 'p2', 'p3', ['create-grant', 'create-datakey']);
    const grandchild = await grant(p3, 'p3', 'p4', ['create-datakey']);
    const unrelated = await grant(f.admin, 'p1', 'p3', ['describe-key']);
    assert.equal(await makesDataKeys(p4, 'p4'), 200);
    assert.equal(await makesDataKeys(p3, 'p3'), 200);
    assert.deepEqual(await grantIds(), [root, child, grandchild, unrelated].sort());

    const revoked = await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: root });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(await grantIds(), [unrelated]);
    assert.equal(await makesDataKeys(f.other, 'p2'), 404);
    assert.equal(await makesDataKeys(p3, 'p3'), 404);
    assert.equal(await makesDataKeys(p4, 'p4'), 404);
    assert.equal((await hw(p3, 'p3', 'describe-key', { key_id: f.aes.key_id })).status, 200, 'a grant made by the owner stays');
    assert.equal((await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: unrelated })).status, 200);
  });

  it('when a grantee retires its grant, then the grants it passed on go with it', async () => {
    const root = await grant(f.admin, 'p1', 'p2', ['create-grant', 'create-datakey']);
    await grant(f.other, 'p2', 'p3', ['create-datakey']);
    assert.equal(await makesDataKeys(p3, 'p3'), 200);
    const retired = await hw(f.other, 'p2', 'retire-grant', { key_id: f.aes.key_id, grant_id: root });
    assert.equal(retired.status, 200, retired.text);
    assert.deepEqual(await grantIds(), []);
    assert.equal(await makesDataKeys(p3, 'p3'), 404);
  });
});

describe('what a grantee may open', () => {
  const hexToB64 = (h: string) => Buffer.from(h, 'hex').toString('base64');
  const b64ToHex = (b: string) => Buffer.from(b, 'base64').toString('hex').toUpperCase();

  it('when a grantee holds only decrypt-data, then it cannot open a data key through decrypt-data, and still decrypts data', async () => {
    const g = await grant(f.admin, 'p1', 'p2', ['decrypt-data']);
    const dk = await hw(f.admin, 'p1', 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    assert.equal(dk.status, 200, dk.text);
    f.secrets.addHex(dk.body.plain_text);
    const refused = await hw(f.other, 'p2', 'decrypt-data', { key_id: f.aes.key_id, cipher_text: hexToB64(dk.body.cipher_text) });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.body.error.error_code, 'KMS.0306');
    assert.ok(!refused.text.includes(dk.body.plain_text));

    const data = await hw(f.admin, 'p1', 'encrypt-data', { key_id: f.aes.key_id, plain_text: 'hello' });
    assert.equal(data.status, 200, data.text);
    const opened = await hw(f.other, 'p2', 'decrypt-data', { key_id: f.aes.key_id, cipher_text: data.body.cipher_text });
    assert.equal(opened.status, 200, opened.text);
    assert.equal(opened.body.plain_text, 'hello');
    assert.equal((await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: g })).status, 200);
  });

  it('when a grantee holds only decrypt-datakey, then it opens data keys but not data', async () => {
    const g = await grant(f.admin, 'p1', 'p2', ['decrypt-datakey']);
    const dk = await hw(f.admin, 'p1', 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    f.secrets.addHex(dk.body.plain_text);
    const back = await hw(f.other, 'p2', 'decrypt-datakey', { key_id: f.aes.key_id, cipher_text: dk.body.cipher_text, datakey_cipher_length: '32' });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.body.data_key, dk.body.plain_text);
    const data = await hw(f.admin, 'p1', 'encrypt-data', { key_id: f.aes.key_id, plain_text: 'abcdefghabcdefghabcdefghabcdefgh' });
    const refused = await hw(f.other, 'p2', 'decrypt-datakey', { key_id: f.aes.key_id, cipher_text: b64ToHex(data.body.cipher_text), datakey_cipher_length: '32' });
    assert.equal(refused.status, 403, refused.text);
    assert.equal((await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: g })).status, 200);
  });

  it("when the key's own project opens a data key through decrypt-data or NCP decrypt, then it works as before", async () => {
    const dk = await hw(f.admin, 'p1', 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' });
    f.secrets.addHex(dk.body.plain_text);
    const r = await hw(f.admin, 'p1', 'decrypt-data', { key_id: f.aes.key_id, cipher_text: hexToB64(dk.body.cipher_text) });
    assert.equal(r.status, 200, r.text);
    assert.equal(b64ToHex(r.body.plain_text_base64), dk.body.plain_text);
    const n = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/decrypt`, {
      headers: { 'x-ncp-ocapi-token': f.admin },
      body: { ciphertext: `ncpkms:v1:${hexToB64(dk.body.cipher_text)}` },
    });
    assert.equal(n.status, 200, n.text);
    assert.equal(b64ToHex(n.body.data.plaintext), dk.body.plain_text);
  });
});

describe('NCP key numbers', () => {
  it("when projects create keys, then each project's keyId counts its own keys only", async () => {
    const create = async (token: string, name: string) => {
      const r = await f.server.request('POST', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': token }, body: { keyName: name, keyType: 'AES256' } });
      assert.equal(r.status, 200, r.text);
      return r.body.data.keyId as number;
    };
    // p1 has three keys and p2 one (the fixture's): p2's next is its second.
    assert.equal(await create(f.other, 'p2-second'), 2);
    assert.equal(await create(p4, 'p4-first'), 1);
    const p1Next = await create(f.admin, 'p1-fourth');
    assert.equal(p1Next, 4);
  });
});
