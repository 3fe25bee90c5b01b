/**
 * Huawei key tags through HTTP: add one, add or delete in batches, delete one, list a key's tags
 * and the project's; limits, codes and who may change them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
import type { Reply } from '../../helpers/server';
import { assertError, Huawei } from './client';

let f: Fixture;
let hw: Huawei;
before(async () => {
  f = await fixture();
  hw = new Huawei(f);
});
after(async () => {
  await f?.server.stop();
});

const add = (keyId: string, tag: unknown, token = f.admin) => hw.call('POST', `/${keyId}/tags`, { tag }, token);
const batch = (keyId: string, body: unknown, token = f.admin) => hw.call('POST', `/${keyId}/tags/action`, body, token);
const remove = (keyId: string, key: string, token = f.admin) => hw.call('DELETE', `/${keyId}/tags/${key}`, undefined, token);

async function tagsOf(keyId: string): Promise<{ tags: Array<{ key: string; value: string }>; existTagsNum: number }> {
  const r = await hw.call('GET', `/${keyId}/tags`, undefined, f.user);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body).sort(), ['existTagsNum', 'tags']);
  assert.equal(r.body.existTagsNum, r.body.tags.length);
  return r.body;
}

function assertNoContent(r: Reply): void {
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
}

describe('Huawei key tags', () => {
  it('when a tag is added, then 204 with no body, and the key lists it; adding the same key again replaces its value', async () => {
    const keyId = await hw.create('tagged');
    assert.deepEqual(await tagsOf(keyId), { tags: [], existTagsNum: 0 });
    assertNoContent(await hw.call('POST', `/${keyId}/tags`, { tag: { key: 'DEV', value: 'DEV1' }, sequence: '919c82d4-8046-4722-9094-35c3c6524cff' }));
    assert.deepEqual(await tagsOf(keyId), { tags: [{ key: 'DEV', value: 'DEV1' }], existTagsNum: 1 });
    assertNoContent(await add(keyId, { key: 'DEV', value: 'DEV2' }));
    assertNoContent(await add(keyId, { key: 'empty', value: '' }));
    assert.deepEqual((await tagsOf(keyId)).tags, [{ key: 'DEV', value: 'DEV2' }, { key: 'empty', value: '' }]);
  });

  it('when tags are created and deleted in batches, then deletion goes by key, or by key and value when a value is given', async () => {
    const keyId = await hw.create('batch-tagged');
    assertNoContent(await batch(keyId, { action: 'create', tags: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }] }));
    assert.equal((await tagsOf(keyId)).existTagsNum, 3);
    // A value that doesn't match leaves the tag; an unknown key is nothing to delete.
    assertNoContent(await batch(keyId, { action: 'delete', tags: [{ key: 'a', value: 'other' }, { key: 'zzz' }] }));
    assert.equal((await tagsOf(keyId)).existTagsNum, 3);
    assertNoContent(await batch(keyId, { action: 'delete', tags: [{ key: 'a', value: '1' }, { key: 'b' }] }));
    assert.deepEqual((await tagsOf(keyId)).tags, [{ key: 'c', value: '3' }]);
  });

  it('when one tag is deleted by its key in the path, then 204 and it is gone; again, 404 KMS.0416', async () => {
    const keyId = await hw.create('delete-one');
    assertNoContent(await add(keyId, { key: 'with space', value: 'v' }));
    assertNoContent(await add(keyId, { key: '键', value: '值' }));
    assertNoContent(await remove(keyId, encodeURIComponent('with space')));
    assertNoContent(await remove(keyId, encodeURIComponent('键')));
    assert.deepEqual((await tagsOf(keyId)).tags, []);
    assertError(await remove(keyId, 'gone'), 404, 'KMS.0416');
    assertError(await remove(keyId, '%E0%A4%A'), 400, 'KMS.0201');
    assertError(await remove(keyId, 'a'.repeat(37)), 400, 'KMS.0411');
    assertError(await remove(keyId, 'a%3Db'), 400, 'KMS.0406');
  });

  it('when the project\'s tags are listed, then each tag key with every value used on its live keys', async () => {
    const k1 = await hw.create('project-tags-1');
    const k2 = await hw.create('project-tags-2');
    assertNoContent(await add(k1, { key: 'team', value: 'blue' }));
    assertNoContent(await add(k2, { key: 'team', value: 'red' }));
    assertNoContent(await add(k2, { key: 'zone', value: 'z1' }));
    const r = await hw.call('GET', '/tags', undefined, f.user);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body), ['tags']);
    const byKey = new Map((r.body.tags as Array<{ key: string; values: string[] }>).map((t) => [t.key, t.values]));
    assert.deepEqual(byKey.get('team'), ['blue', 'red']);
    assert.deepEqual(byKey.get('zone'), ['z1']);
    // Another project sees none of them.
    const other = await hw.call('GET', '/tags', undefined, f.other, 'p2');
    assert.equal(other.status, 200);
    assert.ok(!(other.body.tags as Array<{ key: string }>).some((t) => t.key === 'team'));
  });

  it('when keys and values are at their limits, then they are kept; one character more is KMS.0411 or KMS.0410', async () => {
    const keyId = await hw.create('tag-limits');
    assertNoContent(await add(keyId, { key: 'k'.repeat(36), value: 'v'.repeat(43) }));
    assertNoContent(await add(keyId, { key: '键'.repeat(36), value: '值'.repeat(43) }));
    assertError(await add(keyId, { key: 'k'.repeat(37), value: 'v' }), 400, 'KMS.0411');
    assertError(await add(keyId, { key: '', value: 'v' }), 400, 'KMS.0411');
    assertError(await add(keyId, { key: 'k', value: 'v'.repeat(44) }), 400, 'KMS.0410');
    assertError(await add(keyId, { key: '键'.repeat(37), value: 'v' }), 400, 'KMS.0411');
    assert.equal((await tagsOf(keyId)).existTagsNum, 2);
  });

  it('when a key or value holds a control character or one of *<>\\=, then KMS.0406 or KMS.0405', async () => {
    const keyId = await hw.create('tag-chars');
    for (const c of ['*', '<', '>', '\\', '=', '\u0000', '\u0001', '\n', '\u001f']) {
      assertError(await add(keyId, { key: `a${c}b`, value: 'v' }), 400, 'KMS.0406');
      assertError(await add(keyId, { key: 'k', value: `a${c}b` }), 400, 'KMS.0405');
    }
    assertError(await add(keyId, { key: 5, value: 'v' }), 400, 'KMS.0406');
    assertError(await add(keyId, { key: 'k', value: 5 }), 400, 'KMS.0405');
    assertError(await add(keyId, { key: 'k' }), 400, 'KMS.0405');
    assertNoContent(await add(keyId, { key: 'a-b_c.d:e/f @+', value: 'ok ünïcode' }));
    assert.equal((await tagsOf(keyId)).existTagsNum, 1);
  });

  it('when a key would get more than 10 tags, then KMS.0409 and none of the request is applied', async () => {
    const keyId = await hw.create('tag-full');
    const ten = Array.from({ length: 10 }, (_, i) => ({ key: `t${i}`, value: `${i}` }));
    assertNoContent(await batch(keyId, { action: 'create', tags: ten }));
    assertError(await add(keyId, { key: 't10', value: 'x' }), 400, 'KMS.0409');
    // Replacing a value keeps the count at 10.
    assertNoContent(await add(keyId, { key: 't0', value: 'new' }));
    assertNoContent(await batch(keyId, { action: 'delete', tags: [{ key: 't9' }] }));
    assertError(await batch(keyId, { action: 'create', tags: [{ key: 't1', value: 'changed' }, { key: 'x1', value: '1' }, { key: 'x2', value: '2' }] }), 400, 'KMS.0409');
    const after = await tagsOf(keyId);
    assert.equal(after.existTagsNum, 9);
    assert.deepEqual(after.tags.find((t) => t.key === 't1'), { key: 't1', value: '1' });
    assert.deepEqual(after.tags.find((t) => t.key === 't0'), { key: 't0', value: 'new' });
  });

  it('when a batch is malformed, then KMS.0404, KMS.0401, KMS.0407, KMS.0412, KMS.0414, KMS.0204 or KMS.0308, and nothing changes', async () => {
    const keyId = await hw.create('tag-batch-errors');
    assertNoContent(await add(keyId, { key: 'keep', value: 'me' }));
    const eleven = Array.from({ length: 11 }, (_, i) => ({ key: `t${i}`, value: '' }));
    const cases: Array<[unknown, string]> = [
      [{ action: 'update', tags: [{ key: 'a', value: 'b' }] }, 'KMS.0404'],
      [{ action: 5, tags: [{ key: 'a', value: 'b' }] }, 'KMS.0404'],
      [{ action: 'create', tags: [] }, 'KMS.0401'],
      [{ action: 'delete', tags: [] }, 'KMS.0401'],
      [{ action: 'create', tags: eleven }, 'KMS.0407'],
      [{ action: 'create', tags: 'a=b' }, 'KMS.0412'],
      [{ action: 'create', tags: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] }, 'KMS.0412'],
      [{ action: 'create', tags: ['a'] }, 'KMS.0414'],
      [{ action: 'create', tags: [{ key: 'a', value: 'b', extra: 1 }] }, 'KMS.0414'],
      [{ action: 'create', tags: [{ key: 'a' }] }, 'KMS.0405'],
      [{ action: 'delete', tags: [{ key: 'keep', value: 'a*' }] }, 'KMS.0405'],
      [{ action: 'create' }, 'KMS.0204'],
      [{ tags: [{ key: 'a', value: 'b' }] }, 'KMS.0204'],
      [{ action: 'create', tags: [{ key: 'a', value: 'b' }], extra: true }, 'KMS.0308'],
    ];
    for (const [body, code] of cases) assertError(await batch(keyId, body), 400, code);
    assertError(await hw.call('POST', `/${keyId}/tags`, {}), 400, 'KMS.0204');
    assertError(await hw.call('POST', `/${keyId}/tags`, { tag: 'a' }), 400, 'KMS.0414');
    assertError(await hw.call('POST', `/${keyId}/tags`, { tag: [{ key: 'a', value: 'b' }] }), 400, 'KMS.0414');
    assert.deepEqual((await tagsOf(keyId)).tags, [{ key: 'keep', value: 'me' }]);
  });

  it('when the key in the path is malformed, unknown or another project\'s, then KMS.0205 or 404 KMS.0207', async () => {
    for (const path of ['/not-a-key/tags', '/alias-x/tags']) {
      assertError(await hw.call('GET', path, undefined, f.user), 400, 'KMS.0205');
      assertError(await hw.call('POST', path, { tag: { key: 'a', value: 'b' } }), 400, 'KMS.0205');
    }
    for (const keyId of [f.foreign.key_id, '00000000-0000-4000-8000-000000000000']) {
      assertError(await hw.call('GET', `/${keyId}/tags`, undefined, f.user), 404, 'KMS.0207');
      assertError(await add(keyId, { key: 'a', value: 'b' }), 404, 'KMS.0207');
      assertError(await batch(keyId, { action: 'create', tags: [{ key: 'a', value: 'b' }] }), 404, 'KMS.0207');
      assertError(await remove(keyId, 'a'), 404, 'KMS.0207');
    }
    const p2 = await hw.call('GET', `/${f.foreign.key_id}/tags`, undefined, f.other, 'p2');
    assert.deepEqual(p2.body, { tags: [], existTagsNum: 0 });
  });

  it('when a token without admin scope changes tags, then 403 KMS.0306 and nothing changes; it may read them', async () => {
    const keyId = await hw.create('tag-guarded');
    assertNoContent(await add(keyId, { key: 'owner', value: 'admin' }));
    assertError(await add(keyId, { key: 'x', value: 'y' }, f.user), 403, 'KMS.0306');
    assertError(await batch(keyId, { action: 'delete', tags: [{ key: 'owner' }] }, f.user), 403, 'KMS.0306');
    assertError(await remove(keyId, 'owner', f.user), 403, 'KMS.0306');
    assert.deepEqual((await tagsOf(keyId)).tags, [{ key: 'owner', value: 'admin' }]);
  });

  it('when the key is pending deletion, then tag changes are KMS.0210 and reads still work; a disabled key may be tagged', async () => {
    const keyId = await hw.create('tag-pending');
    assertNoContent(await add(keyId, { key: 'k', value: 'v' }));
    assert.equal((await hw.post('disable-key', { key_id: keyId })).status, 200);
    assertNoContent(await add(keyId, { key: 'k2', value: 'v2' }));
    assert.equal((await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status, 200);
    assertError(await add(keyId, { key: 'k3', value: 'v3' }), 400, 'KMS.0210');
    assertError(await batch(keyId, { action: 'delete', tags: [{ key: 'k' }] }), 400, 'KMS.0210');
    assertError(await remove(keyId, 'k'), 400, 'KMS.0210');
    assert.equal((await tagsOf(keyId)).existTagsNum, 2);
  });

  it('when a tag route is called with another method, then 405 KMS.0215', async () => {
    assertError(await hw.call('PUT', `/${f.aes.key_id}/tags`, { tag: { key: 'a', value: 'b' } }), 405, 'KMS.0215');
    assertError(await hw.call('DELETE', '/tags'), 405, 'KMS.0215');
    assertError(await hw.call('GET', `/${f.aes.key_id}/tags/action`), 405, 'KMS.0215');
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
