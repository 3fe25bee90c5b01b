import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
import { assertRefused, b64, badRequest, forbidden, Ncp, notFound, wrongState } from './client';

const DAY_MS = 86_400_000;
const INFO_FIELDS = [
  'currentVersion',
  'destroyDate',
  'isAutoRotation',
  'isConvergent',
  'keyId',
  'keyName',
  'keyTag',
  'keyType',
  'memo',
  'nextRotationDate',
  'protectionType',
  'registerDate',
  'rotationPeriod',
  'status',
];
const LIST_FIELDS = ['destroyDate', 'isConvergent', 'keyId', 'keyName', 'keyTag', 'keyType', 'protectionType', 'registerDate', 'status'];

let f: Fixture;
let ncp: Ncp;
before(async () => {
  f = await fixture();
  ncp = new Ncp(f);
});
after(async () => {
  await f?.server.stop();
});

const count = async (token = f.admin): Promise<number> => {
  const r = await ncp.call('GET', '/keys?pageSize=200', undefined, token);
  assert.equal(r.status, 200, r.text);
  return r.body.data.totalCount;
};

/** Runs a refused request and checks that the key reads the same before and after. */
async function unchanged(tag: string, refused: () => Promise<void>): Promise<void> {
  const before = await ncp.info(tag);
  const versionsBefore = await ncp.versions(tag);
  await refused();
  assert.deepEqual(await ncp.info(tag), before);
  assert.deepEqual(await ncp.versions(tag), versionsBefore);
}

describe('NCP create key', () => {
  it('when an AES256 key is created with every field, then its info comes back and reads the same through GET', async () => {
    const t0 = Date.now();
    const data = await ncp.create({
      keyName: 'orders-1',
      keyType: 'AES256',
      protectionType: 'COMMON_HSM',
      isAutoRotation: true,
      rotationPeriod: 30,
      isConvergent: false,
      memo: 'order table keys',
    });
    assert.deepEqual(Object.keys(data).sort(), INFO_FIELDS);
    assert.ok(Number.isInteger(data['keyId']));
    assert.match(data.keyTag, /^[A-Za-z0-9_-]{1,128}$/);
    assert.equal(data['keyName'], 'orders-1');
    assert.equal(data['keyType'], 'AES256');
    assert.equal(data['status'], 'ENABLE');
    assert.equal(data['currentVersion'], 1);
    assert.equal(data['protectionType'], 'COMMON_HSM');
    assert.equal(data['isConvergent'], false);
    assert.equal(data['isAutoRotation'], true);
    assert.equal(data['rotationPeriod'], 30);
    assert.equal(data['memo'], 'order table keys');
    assert.equal(data['destroyDate'], null);
    const registered = data['registerDate'] as number;
    assert.ok(registered >= t0 - 1000 && registered <= Date.now() + 1000);
    assert.equal(data['nextRotationDate'], registered + 30 * DAY_MS);
    assert.deepEqual(await ncp.info(data.keyTag), data);
    // The new key works at once.
    const ct = (await ncp.encrypt(data.keyTag, Buffer.from('first secret row'))) as string;
    assert.equal(await ncp.decrypt(data.keyTag, ct), b64('first secret row'));
  });

  it('when only keyName and keyType are given, then the defaults apply (RSA2048, BASIC accepted)', async () => {
    for (const body of [{ keyName: 'signer-1', keyType: 'RSA2048' }, { keyName: 'basic-1', keyType: 'AES256', protectionType: 'BASIC' }]) {
      const data = await ncp.create(body);
      assert.equal(data['keyType'], body.keyType);
      assert.equal(data['isAutoRotation'], false);
      assert.equal(data['rotationPeriod'], 90);
      assert.equal(data['nextRotationDate'], null);
      assert.equal(data['isConvergent'], false);
      assert.equal(data['memo'], '');
      assert.equal(data['protectionType'], 'COMMON_HSM');
    }
  });

  it('when a convergent AES256 key is created, then it says so and needs a context to encrypt', async () => {
    const data = await ncp.create({ keyName: 'conv-x', keyType: 'AES256', isConvergent: true });
    assert.equal(data['isConvergent'], true);
    badRequest(await ncp.action(data.keyTag, 'encrypt', { plaintext: b64('x') }, f.user));
  });

  it('when the caller has no admin token, then 403 FORBIDDEN and no key', async () => {
    const before = await count();
    forbidden(await ncp.post('/keys', { keyName: 'nope-1', keyType: 'AES256' }, f.user));
    assert.equal(await count(), before);
  });

  it('when the keyName is already used by a live key of the project, then INVALID_REQUEST; another project may use it', async () => {
    const before = await count();
    badRequest(await ncp.post('/keys', { keyName: 'orders-1', keyType: 'RSA2048' }));
    badRequest(await ncp.post('/keys', { keyName: 'aes-1', keyType: 'AES256' }));
    assert.equal(await count(), before);
    const r = await ncp.post('/keys', { keyName: 'orders-1', keyType: 'AES256' }, f.other);
    assert.equal(r.status, 200, r.text);
  });

  it('when keyType is ECDSA or a convergent key is not AES256, then 400 INVALID_REQUEST', async () => {
    const before = await count();
    badRequest(await ncp.post('/keys', { keyName: 'ec-1', keyType: 'ECDSA' }));
    badRequest(await ncp.post('/keys', { keyName: 'rsa-c', keyType: 'RSA2048', isConvergent: true }));
    assert.equal(await count(), before);
  });

  it('when any field has a wrong type, length or pattern, then 400 INVALID_REQUEST and no key', async () => {
    const ok = { keyName: 'valid-1', keyType: 'AES256' };
    const bad: unknown[] = [
      {},
      { keyType: 'AES256' },
      { keyName: 'valid-1' },
      { ...ok, keyName: 'ab' },
      { ...ok, keyName: 'a'.repeat(16) },
      { ...ok, keyName: '1abc' },
      { ...ok, keyName: '-abc' },
      { ...ok, keyName: 'ab c' },
      { ...ok, keyName: 'ab.c' },
      { ...ok, keyName: 'abc/' },
      { ...ok, keyName: 'ab한글' },
      { ...ok, keyName: 123 },
      { ...ok, keyType: 'AES' },
      { ...ok, keyType: 'aes256' },
      { ...ok, keyType: 'AES_256' },
      { ...ok, protectionType: 'HSM' },
      { ...ok, isAutoRotation: 'true' },
      { ...ok, isAutoRotation: 1 },
      { ...ok, rotationPeriod: 0 },
      { ...ok, rotationPeriod: 731 },
      { ...ok, rotationPeriod: 1.5 },
      { ...ok, rotationPeriod: '90' },
      { ...ok, isConvergent: 'yes' },
      { ...ok, memo: 'm'.repeat(101) },
      { ...ok, memo: 5 },
      { ...ok, extra: 1 },
      [ok],
      'text',
      null,
    ];
    const before = await count();
    for (const body of bad) badRequest(await ncp.post('/keys', body));
    const malformed = await f.server.request('POST', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': f.admin }, raw: '{"keyName":' });
    badRequest(malformed);
    assert.equal(await count(), before);
    // The limits themselves are accepted.
    const edge = await ncp.create({ keyName: 'a'.repeat(15), keyType: 'AES256', rotationPeriod: 730, memo: 'm'.repeat(100) });
    assert.equal(edge['rotationPeriod'], 730);
    await ncp.create({ keyName: 'a_1', keyType: 'AES256', rotationPeriod: 1 });
  });

  it('when there is no token or a bad one, then 401 UNAUTHORIZED', async () => {
    for (const headers of [{}, { 'x-ncp-ocapi-token': 'p11kms_0000000000000000_' + 'A'.repeat(43) }]) {
      const r = await f.server.request('POST', '/kms/v1/keys', { headers, body: { keyName: 'anon-1', keyType: 'AES256' } });
      assertRefused(r, 401, 'UNAUTHORIZED');
    }
  });
});

describe('NCP key list and info', () => {
  it('when keys are listed page by page, then every live key of the project appears once, in creation order', async () => {
    const all = await ncp.call('GET', '/keys', undefined, f.user);
    assert.equal(all.status, 200, all.text);
    const total = all.body.data.totalCount;
    assert.ok(total >= 5);
    assert.equal(all.body.data.currentPageNo, 1);
    assert.equal(all.body.data.totalPageNo, 1);
    assert.equal(all.body.data.keyList.length, total);
    for (const item of all.body.data.keyList) {
      assert.deepEqual(Object.keys(item).sort(), LIST_FIELDS);
      assert.ok(!('memo' in item));
    }
    const ids = all.body.data.keyList.map((k: { keyId: number }) => k.keyId);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => a - b));
    assert.ok(!all.body.data.keyList.some((k: { keyTag: string }) => k.keyTag === f.foreign.keyTag));

    const seen: string[] = [];
    const pages = Math.ceil(total / 2);
    for (let p = 1; p <= pages; p++) {
      const r = await ncp.call('GET', `/keys?pageNo=${p}&pageSize=2`, undefined, f.user);
      assert.equal(r.status, 200);
      assert.equal(r.body.data.currentPageNo, p);
      assert.equal(r.body.data.totalPageNo, pages);
      assert.equal(r.body.data.totalCount, total);
      seen.push(...r.body.data.keyList.map((k: { keyTag: string }) => k.keyTag));
    }
    assert.deepEqual(seen, all.body.data.keyList.map((k: { keyTag: string }) => k.keyTag));
    const beyond = await ncp.call('GET', `/keys?pageNo=${pages + 1}&pageSize=2`);
    assert.deepEqual(beyond.body.data.keyList, []);
    assert.equal(beyond.body.data.currentPageNo, pages + 1);
  });

  it('when an item of the list is compared with the key info, then they agree', async () => {
    const r = await ncp.call('GET', '/keys?pageSize=200');
    const item = r.body.data.keyList.find((k: { keyTag: string }) => k.keyTag === f.rsa.keyTag);
    const info = await ncp.info(f.rsa.keyTag);
    for (const field of LIST_FIELDS) assert.deepEqual(item[field], info[field], field);
    assert.equal(info['keyName'], 'rsa-1');
    assert.equal(info['keyType'], 'RSA2048');
  });

  it('when the query is malformed, then 400 INVALID_REQUEST', async () => {
    for (const q of ['pageNo=0', 'pageNo=-1', 'pageNo=abc', 'pageNo=1.5', 'pageNo=', 'pageNo=1e3', 'pageNo=1234567890', 'pageSize=0', 'pageSize=201',
      'pageSize=1000', 'pageSize=abc', 'pageSize=', 'pageNo=1&pageNo=2', 'sort=name']) {
      badRequest(await ncp.call('GET', `/keys?${q}`));
    }
    const edge = await ncp.call('GET', '/keys?pageNo=1&pageSize=200');
    assert.equal(edge.status, 200);
  });

  it('when another project lists, then it sees only its own keys', async () => {
    const r = await ncp.call('GET', '/keys', undefined, f.other);
    assert.equal(r.status, 200);
    const tags = r.body.data.keyList.map((k: { keyTag: string }) => k.keyTag);
    assert.ok(tags.includes(f.foreign.keyTag));
    assert.ok(!tags.includes(f.aes.keyTag));
  });

  it('when a key of another project, an unknown or a malformed keyTag is read, then NOT_FOUND or INVALID_REQUEST', async () => {
    notFound(await ncp.call('GET', `/keys/${f.foreign.keyTag}`));
    notFound(await ncp.call('GET', `/keys/${'0'.repeat(64)}`));
    badRequest(await ncp.call('GET', `/keys/${'a'.repeat(129)}`));
    const own = await ncp.call('GET', `/keys/${f.aes.keyTag}`, undefined, f.user);
    assert.equal(own.status, 200);
    assert.equal(own.body.data.keyName, 'aes-1');
  });
});

describe('NCP enable and disable key', () => {
  it('when a key is disabled and enabled, then the answers carry keyTag, status and statusDate and the info follows', async () => {
    const key = await ncp.create({ keyName: 'toggle-1', keyType: 'AES256' });
    const d = await ncp.action(key.keyTag, 'disable');
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(Object.keys(d.body.data).sort(), ['keyTag', 'status', 'statusDate']);
    assert.equal(d.body.data.keyTag, key.keyTag);
    assert.equal(d.body.data.status, 'DISABLE');
    assert.ok(Math.abs(d.body.data.statusDate - Date.now()) < 60_000);
    assert.equal((await ncp.info(key.keyTag))['status'], 'DISABLE');
    const e = await ncp.action(key.keyTag, 'enable', {});
    assert.equal(e.status, 200);
    assert.equal(e.body.data.status, 'ENABLE');
    assert.equal((await ncp.info(key.keyTag))['status'], 'ENABLE');
  });

  it('when the key is already in the target state, then 422 UNPROCESSABLE_ENTITY and nothing changes', async () => {
    const key = await ncp.create({ keyName: 'toggle-2', keyType: 'AES256' });
    await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, 'enable')));
    assert.equal((await ncp.action(key.keyTag, 'disable')).status, 200);
    await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, 'disable')));
  });

  it('when the caller has no admin token, another project, or sends fields, then refused and nothing changes', async () => {
    for (const action of ['disable', 'enable', 'request-deletion', 'cancel-deletion', 'rotate']) {
      await unchanged(f.aes.keyTag, async () => {
        forbidden(await ncp.action(f.aes.keyTag, action, {}, f.user));
        notFound(await ncp.action(f.aes.keyTag, action, {}, f.other));
        badRequest(await ncp.action(f.aes.keyTag, action, { force: true }));
        badRequest(await ncp.action(f.aes.keyTag, action, []));
      });
    }
    await unchanged(f.aes.keyTag, async () => {
      forbidden(await ncp.call('DELETE', `/keys/${f.aes.keyTag}`, undefined, f.user));
      notFound(await ncp.call('DELETE', `/keys/${f.aes.keyTag}`, undefined, f.other));
    });
  });

  it('when a key is disabled, then every crypto call is refused with 422, and after enabling old ciphertexts open again', async () => {
    const aes = await ncp.create({ keyName: 'crypto-1', keyType: 'AES256' });
    const rsa = await ncp.create({ keyName: 'crypto-2', keyType: 'RSA2048' });
    const ct = (await ncp.encrypt(aes.keyTag, Buffer.from('kept across states'))) as string;
    const ck = await ncp.action(aes.keyTag, 'create-custom-key', { requestPlainKey: true }, f.user);
    f.secrets.addBase64(ck.body.data.plaintext);
    const sig = await ncp.action(rsa.keyTag, 'sign', { data: b64('doc') }, f.user);
    assert.equal(sig.status, 200);

    for (const [tag, calls] of [
      [aes.keyTag, [
        ['encrypt', { plaintext: b64('x') }],
        ['decrypt', { ciphertext: ct }],
        ['create-custom-key', {}],
        ['re-encrypt', { ciphertext: ct }],
        ['reencrypt', { ciphertext: ct }],
      ]],
      [rsa.keyTag, [
        ['sign', { data: b64('doc') }],
        ['verify', { data: b64('doc'), signature: sig.body.data.signature }],
        ['get-pub-key', {}],
      ]],
    ] as const) {
      for (const step of ['disable', 'request-deletion'] as const) {
        assert.equal((await ncp.action(tag, step)).status, 200);
        for (const [action, body] of calls) await unchanged(tag, async () => wrongState(await ncp.action(tag, action, body, f.user)));
        if (step === 'request-deletion') {
          assert.equal((await ncp.action(tag, 'cancel-deletion')).status, 200);
          assert.equal((await ncp.info(tag))['status'], 'DISABLE');
        }
        assert.equal((await ncp.action(tag, 'enable')).status, 200);
      }
    }
    assert.equal(await ncp.decrypt(aes.keyTag, ct), b64('kept across states'));
    assert.equal(await ncp.decrypt(aes.keyTag, ck.body.data.ciphertext), ck.body.data.plaintext);
    const v = await ncp.action(rsa.keyTag, 'verify', { data: b64('doc'), signature: sig.body.data.signature }, f.user);
    assert.deepEqual(v.body.data, { valid: true });
  });
});

describe('NCP key deletion', () => {
  it('when deletion is requested, then the key is REVOKE with a destroyDate 72 hours on, in the info and the list', async () => {
    const key = await ncp.create({ keyName: 'doomed-1', keyType: 'AES256' });
    const r = await ncp.action(key.keyTag, 'request-deletion');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body.data).sort(), ['destroyDate', 'keyTag', 'status', 'statusDate']);
    assert.equal(r.body.data.status, 'REVOKE');
    assert.equal(r.body.data.destroyDate, r.body.data.statusDate + 72 * 3600_000);
    const info = await ncp.info(key.keyTag);
    assert.equal(info['status'], 'REVOKE');
    assert.equal(info['destroyDate'], r.body.data.destroyDate);
    const list = await ncp.call('GET', '/keys?pageSize=200');
    const item = list.body.data.keyList.find((k: { keyTag: string }) => k.keyTag === key.keyTag);
    assert.equal(item.status, 'REVOKE');
    assert.equal(item.destroyDate, r.body.data.destroyDate);
  });

  it('when a key pending deletion is enabled, disabled, rotated or asked to be deleted again, then 422 and nothing changes', async () => {
    const key = await ncp.create({ keyName: 'doomed-2', keyType: 'AES256' });
    assert.equal((await ncp.action(key.keyTag, 'request-deletion')).status, 200);
    for (const action of ['request-deletion', 'enable', 'disable', 'rotate', 'enable-auto-rotation']) {
      await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, action)));
    }
  });

  it('when deletion is cancelled, then the key is DISABLE without destroyDate; cancelling again is 422', async () => {
    const key = await ncp.create({ keyName: 'saved-1', keyType: 'AES256' });
    await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, 'cancel-deletion')));
    assert.equal((await ncp.action(key.keyTag, 'request-deletion')).status, 200);
    const r = await ncp.action(key.keyTag, 'cancel-deletion');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body.data).sort(), ['keyTag', 'status', 'statusDate']);
    assert.equal(r.body.data.status, 'DISABLE');
    const info = await ncp.info(key.keyTag);
    assert.equal(info['status'], 'DISABLE');
    assert.equal(info['destroyDate'], null);
    await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, 'cancel-deletion')));
  });

  it('when a key that is not pending deletion is deleted, then 422 and it stays', async () => {
    const key = await ncp.create({ keyName: 'kept-1', keyType: 'AES256' });
    await unchanged(key.keyTag, async () => wrongState(await ncp.call('DELETE', `/keys/${key.keyTag}`)));
    assert.equal((await ncp.action(key.keyTag, 'disable')).status, 200);
    await unchanged(key.keyTag, async () => wrongState(await ncp.call('DELETE', `/keys/${key.keyTag}`)));
  });

  it('when a key pending deletion is deleted, then data is null, it is gone everywhere, and its name is free again', async () => {
    const key = await ncp.create({ keyName: 'gone-1', keyType: 'RSA2048' });
    assert.equal((await ncp.action(key.keyTag, 'request-deletion')).status, 200);
    const before = await count();
    const r = await ncp.call('DELETE', `/keys/${key.keyTag}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { code: 'SUCCESS', data: null });
    notFound(await ncp.call('GET', `/keys/${key.keyTag}`));
    notFound(await ncp.call('GET', `/keys/${key.keyTag}/versions`));
    notFound(await ncp.call('DELETE', `/keys/${key.keyTag}`));
    notFound(await ncp.action(key.keyTag, 'sign', { data: b64('x') }, f.user));
    assert.equal(await count(), before - 1);
    const again = await ncp.create({ keyName: 'gone-1', keyType: 'AES256' });
    assert.notEqual(again.keyTag, key.keyTag);
  });
});

describe('NCP key logs', () => {
  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
