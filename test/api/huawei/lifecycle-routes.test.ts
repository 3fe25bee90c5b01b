/**
 * Huawei key management through HTTP: describe-key, list-keys, enable/disable, scheduled deletion
 * and its cancellation, alias and description changes, and who may call them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
import { assertError, Huawei, UUID } from './client';

let f: Fixture;
let hw: Huawei;
before(async () => {
  f = await fixture();
  hw = new Huawei(f);
});
after(async () => {
  await f?.server.stop();
});

const DAY_MS = 86_400_000;

describe('Huawei describe-key', () => {
  it('when an AES key is described by id or alias, then every key_info field comes back in the vendor\'s form', async () => {
    const before = Date.now();
    const keyId = await hw.create('describe/aes', { key_description: 'for describe' });
    for (const ref of [keyId, 'alias/describe/aes']) {
      const r = await hw.post('describe-key', { key_id: ref }, f.user);
      assert.equal(r.status, 200, r.text);
      const info = r.body.key_info;
      assert.deepEqual(Object.keys(r.body), ['key_info']);
      assert.deepEqual(Object.keys(info).sort(), [
        'creation_date', 'default_key_flag', 'domain_id', 'expiration_time', 'key_alias', 'key_description', 'key_id',
        'key_rotation_enabled', 'key_spec', 'key_state', 'key_type', 'key_usage', 'origin', 'realm', 'scheduled_deletion_date',
      ]);
      assert.equal(info.key_id, keyId);
      assert.equal(info.domain_id, 'p1');
      assert.equal(info.key_alias, 'describe/aes');
      assert.equal(info.key_description, 'for describe');
      assert.equal(info.key_state, '2');
      assert.equal(info.key_spec, 'AES_256');
      assert.equal(info.key_usage, 'ENCRYPT_DECRYPT');
      assert.equal(info.default_key_flag, '0');
      assert.equal(info.origin, 'kms');
      assert.equal(info.scheduled_deletion_date, '');
      assert.equal(info.key_rotation_enabled, 'false');
      assert.equal(typeof info.realm, 'string');
      assert.match(info.creation_date, /^\d{13}$/);
      assert.ok(Math.abs(Number(info.creation_date) - before) < 60_000);
    }
  });

  it('when an RSA key is described, then key_spec RSA_2048 and its usage', async () => {
    const info = await hw.describe(f.rsa.key_id);
    assert.equal(info['key_spec'], 'RSA_2048');
    assert.equal(info['key_usage'], 'SIGN_VERIFY');
    const enc = await hw.create('describe/rsa-enc', { key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    assert.equal((await hw.describe(enc))['key_usage'], 'ENCRYPT_DECRYPT');
  });

  it('when the key is missing, malformed, unknown or another project\'s, then the vendor code', async () => {
    assertError(await hw.post('describe-key', {}, f.user), 400, 'KMS.0204');
    assertError(await hw.post('describe-key', { key_id: 'nope' }, f.user), 400, 'KMS.0205');
    assertError(await hw.post('describe-key', { key_id: 7 }, f.user), 400, 'KMS.0205');
    assertError(await hw.post('describe-key', { key_id: f.aes.key_id, extra: 1 }, f.user), 400, 'KMS.0308');
    for (const keyId of ['00000000-0000-4000-8000-000000000000', f.foreign.key_id, 'alias/aes-2', 'alias/none']) {
      assertError(await hw.post('describe-key', { key_id: keyId }, f.user), 404, 'KMS.0207');
    }
  });
});

describe('Huawei list-keys', () => {
  // A project of its own, so the test knows every key in it.
  let p3: Huawei;
  let p3admin: string;
  const ids: string[] = [];
  before(async () => {
    p3admin = f.server.token('p3', true);
    f.secrets.add(p3admin);
    p3 = new Huawei(f, 'p3');
    for (let i = 0; i < 5; i++) {
      const r = await p3.post('create-key', { key_alias: `list-${i}` }, p3admin);
      assert.equal(r.status, 200, r.text);
      ids.push(r.body.key_info.key_id);
    }
  });

  it('when no limit is given, then every key, with key_details in the describe shape, total and truncated "false"', async () => {
    const r = await p3.post('list-keys', {}, p3admin);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['key_details', 'keys', 'next_marker', 'total', 'truncated']);
    assert.deepEqual(r.body.keys, ids);
    assert.equal(r.body.total, 5);
    assert.equal(r.body.truncated, 'false');
    assert.equal(r.body.next_marker, '');
    const described = await p3.post('describe-key', { key_id: ids[0] }, p3admin);
    assert.deepEqual(r.body.key_details[0], described.body.key_info);
  });

  it('when pages of 2 are walked with next_marker, then each key comes once and the last page says truncated "false"', async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await p3.post('list-keys', { limit: '2', ...(marker === undefined ? {} : { marker }) }, p3admin);
      assert.equal(r.status, 200, r.text);
      pages++;
      assert.ok(r.body.keys.length <= 2);
      assert.equal(r.body.total, 5);
      seen.push(...r.body.keys);
      if (r.body.truncated === 'false') {
        assert.equal(r.body.next_marker, '');
        break;
      }
      assert.equal(r.body.truncated, 'true');
      assert.match(r.body.next_marker, /^\d+$/);
      marker = r.body.next_marker;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, ids);
    const past = await p3.post('list-keys', { marker: '99' }, p3admin);
    assert.deepEqual([past.body.keys, past.body.truncated, past.body.total], [[], 'false', 5]);
  });

  it('when key_state is given, then only keys in that state; states 1 and 5 hold none', async () => {
    assert.equal((await p3.post('disable-key', { key_id: ids[1] }, p3admin)).status, 200);
    assert.equal((await p3.post('schedule-key-deletion', { key_id: ids[2], pending_days: '7' }, p3admin)).status, 200);
    const of = async (state: string) => (await p3.post('list-keys', { key_state: state }, p3admin)).body;
    assert.deepEqual((await of('2')).keys, [ids[0], ids[3], ids[4]]);
    assert.deepEqual((await of('3')).keys, [ids[1]]);
    const pending = await of('4');
    assert.deepEqual(pending.keys, [ids[2]]);
    assert.equal(pending.key_details[0].key_state, '4');
    assert.equal(pending.total, 1);
    for (const none of ['1', '5']) assert.deepEqual([(await of(none)).keys, (await of(none)).total], [[], 0]);
  });

  it('when limit, marker or key_state is invalid, then KMS.1601, KMS.1602 or KMS.0308', async () => {
    for (const limit of ['0', '1001', 'abc', '-1', 2, '']) assertError(await p3.post('list-keys', { limit }, p3admin), 400, 'KMS.1601');
    for (const marker of ['-1', 'x', 3, '']) assertError(await p3.post('list-keys', { marker }, p3admin), 400, 'KMS.1602');
    for (const key_state of ['0', '6', 2, '22']) assertError(await p3.post('list-keys', { key_state }, p3admin), 400, 'KMS.0308');
  });

  it('when a project lists, then it sees none of another project\'s keys', async () => {
    const r = await hw.post('list-keys', {}, f.user);
    assert.equal(r.status, 200);
    for (const id of ids) assert.ok(!r.body.keys.includes(id));
    assert.ok(!r.body.keys.includes(f.foreign.key_id));
  });
});

describe('Huawei enable-key and disable-key', () => {
  it('when a key is disabled, then key_state "3", crypto is refused with KMS.0209, and enabling restores it', async () => {
    const keyId = await hw.create('toggle');
    const cipher = await hw.encrypt(keyId, 'toggle secret text');
    const off = await hw.post('disable-key', { key_id: keyId });
    assert.equal(off.status, 200, off.text);
    assert.deepEqual(off.body, { key_info: { key_id: keyId, key_state: '3' } });
    assert.equal((await hw.describe(keyId))['key_state'], '3');
    assertError(await hw.post('encrypt-data', { key_id: keyId, plain_text: 'x' }, f.user), 400, 'KMS.0209');
    assertError(await hw.post('decrypt-data', { cipher_text: cipher }, f.user), 400, 'KMS.0209');
    const on = await hw.post('enable-key', { key_id: 'alias/toggle' });
    assert.deepEqual(on.body, { key_info: { key_id: keyId, key_state: '2' } });
    assert.equal(await hw.decrypt(cipher), 'toggle secret text');
  });

  it('when the key is already in that state, then KMS.1301 (disable) or KMS.1201 (enable), and the state stays', async () => {
    const keyId = await hw.create('twice');
    assertError(await hw.post('enable-key', { key_id: keyId }), 400, 'KMS.1201');
    assert.equal((await hw.describe(keyId))['key_state'], '2');
    assert.equal((await hw.post('disable-key', { key_id: keyId })).status, 200);
    assertError(await hw.post('disable-key', { key_id: keyId }), 400, 'KMS.1301');
    assert.equal((await hw.describe(keyId))['key_state'], '3');
  });

  it('when the key is unknown or another project\'s, then 404 KMS.0207 and the other key is untouched', async () => {
    for (const action of ['enable-key', 'disable-key']) {
      assertError(await hw.post(action, { key_id: f.foreign.key_id }), 404, 'KMS.0207');
      assertError(await hw.post(action, { key_id: '00000000-0000-4000-8000-000000000000' }), 404, 'KMS.0207');
    }
    const other = new Huawei(f, 'p2');
    const info = await other.post('describe-key', { key_id: f.foreign.key_id }, f.other);
    assert.equal(info.body.key_info.key_state, '2');
  });
});

describe('Huawei schedule-key-deletion and cancel-key-deletion', () => {
  it('when deletion is scheduled, then key_state "4" with its date, crypto is refused with KMS.0210; cancelling leaves it disabled and enabling restores use', async () => {
    const keyId = await hw.create('doomed');
    const cipher = await hw.encrypt(keyId, 'doomed secret text');
    const before = Date.now();
    const r = await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '7', sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { key_id: keyId, key_state: '4' });
    const info = await hw.describe(keyId);
    assert.equal(info['key_state'], '4');
    const when = Number(info['scheduled_deletion_date']);
    assert.ok(Math.abs(when - (before + 7 * DAY_MS)) < 60_000, String(info['scheduled_deletion_date']));
    assertError(await hw.post('encrypt-data', { key_id: keyId, plain_text: 'x' }, f.user), 400, 'KMS.0210');
    assertError(await hw.post('decrypt-data', { cipher_text: cipher }, f.user), 400, 'KMS.0210');
    assertError(await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '30' }), 400, 'KMS.1402');
    assertError(await hw.post('enable-key', { key_id: keyId }), 400, 'KMS.0210');
    assertError(await hw.post('disable-key', { key_id: keyId }), 400, 'KMS.0210');
    assert.equal((await hw.describe(keyId))['scheduled_deletion_date'], info['scheduled_deletion_date']);

    const c = await hw.post('cancel-key-deletion', { key_id: keyId });
    assert.equal(c.status, 200, c.text);
    assert.deepEqual(c.body, { key_id: keyId, key_state: '3' });
    const after = await hw.describe(keyId);
    assert.deepEqual([after['key_state'], after['scheduled_deletion_date']], ['3', '']);
    assertError(await hw.post('cancel-key-deletion', { key_id: keyId }), 400, 'KMS.1501');
    assert.equal((await hw.post('enable-key', { key_id: keyId })).status, 200);
    assert.equal(await hw.decrypt(cipher), 'doomed secret text');
  });

  it('when pending_days is 1096, then the date is 1096 days ahead; a disabled key may be scheduled too', async () => {
    const keyId = await hw.create('doomed-long');
    assert.equal((await hw.post('disable-key', { key_id: keyId })).status, 200);
    const before = Date.now();
    assert.equal((await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '1096' })).status, 200);
    assert.ok(Math.abs(Number((await hw.describe(keyId))['scheduled_deletion_date']) - (before + 1096 * DAY_MS)) < 60_000);
  });

  it('when pending_days is outside 7 to 1096 or not a decimal string, then KMS.1401 and the key stays enabled', async () => {
    const keyId = await hw.create('kept');
    for (const pending_days of ['6', '0', '1097', '99999', 'seven', 7, '7.5', '']) {
      assertError(await hw.post('schedule-key-deletion', { key_id: keyId, pending_days }), 400, 'KMS.1401');
    }
    assertError(await hw.post('schedule-key-deletion', { key_id: keyId }), 400, 'KMS.0204');
    const info = await hw.describe(keyId);
    assert.deepEqual([info['key_state'], info['scheduled_deletion_date']], ['2', '']);
  });

  it('when cancel-key-deletion is asked of a key not pending deletion, then KMS.1501', async () => {
    assertError(await hw.post('cancel-key-deletion', { key_id: f.aes.key_id }), 400, 'KMS.1501');
    assert.equal((await hw.describe(f.aes.key_id))['key_state'], '2');
  });
});

describe('Huawei update-key-alias and update-key-description', () => {
  it('when the alias changes, then key_info names it, the new alias finds the key and the old one no longer does', async () => {
    const keyId = await hw.create('old-name');
    const r = await hw.post('update-key-alias', { key_id: keyId, key_alias: 'new-name' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { key_info: { key_id: keyId, key_alias: 'new-name' } });
    assert.equal((await hw.describe('alias/new-name'))['key_id'], keyId);
    assertError(await hw.post('describe-key', { key_id: 'alias/old-name' }), 404, 'KMS.0207');
    // The old alias is free again.
    assert.ok(UUID.test(await hw.create('old-name')));
  });

  it('when the alias is invalid or taken, then KMS.1101 or KMS.1104 and the key keeps its alias', async () => {
    const keyId = await hw.create('keeps-alias');
    const before = await hw.describe(keyId);
    for (const key_alias of ['', 'has space', 'a'.repeat(256), 'x/default', 5]) {
      assertError(await hw.post('update-key-alias', { key_id: keyId, key_alias }), 400, 'KMS.1101');
    }
    assertError(await hw.post('update-key-alias', { key_id: keyId, key_alias: 'aes-1' }), 400, 'KMS.1104');
    assertError(await hw.post('update-key-alias', { key_id: keyId }), 400, 'KMS.0204');
    assert.deepEqual(await hw.describe(keyId), before);
  });

  it('when the description changes, then key_info names it; an empty one is allowed', async () => {
    const keyId = await hw.create('described');
    for (const text of ['first words', '']) {
      const r = await hw.post('update-key-description', { key_id: keyId, key_description: text });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { key_info: { key_id: keyId, key_description: text } });
      assert.equal((await hw.describe(keyId))['key_description'], text);
    }
  });

  it('when the description is too long or not a string, then KMS.1103 and it stays', async () => {
    const keyId = await hw.create('described-2', { key_description: 'kept' });
    for (const key_description of ['d'.repeat(256), 5, null]) {
      assertError(await hw.post('update-key-description', { key_id: keyId, key_description }), 400, 'KMS.1103');
    }
    assert.equal((await hw.describe(keyId))['key_description'], 'kept');
  });

  it('when the key is pending deletion, then alias and description changes are refused with KMS.0210', async () => {
    const keyId = await hw.create('pending-names');
    assert.equal((await hw.post('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status, 200);
    assertError(await hw.post('update-key-alias', { key_id: keyId, key_alias: 'renamed' }), 400, 'KMS.0210');
    assertError(await hw.post('update-key-description', { key_id: keyId, key_description: 'x' }), 400, 'KMS.0210');
    assert.equal((await hw.describe(keyId))['key_alias'], 'pending-names');
  });

  it('when another project\'s key is named, then 404 KMS.0207', async () => {
    assertError(await hw.post('update-key-alias', { key_id: f.foreign.key_id, key_alias: 'mine' }), 404, 'KMS.0207');
    assertError(await hw.post('update-key-description', { key_id: f.foreign.key_id, key_description: 'mine' }), 404, 'KMS.0207');
  });
});

describe('Huawei management permissions', () => {
  it('when a token without admin scope calls a management action, then 403 KMS.0306 and nothing changes; reads and crypto work', async () => {
    const keyId = await hw.create('guarded');
    assert.equal((await hw.post('disable-key', { key_id: keyId })).status, 200);
    const before = await hw.describe(keyId);
    const calls: Array<[string, Record<string, unknown>]> = [
      ['create-key', { key_alias: 'by-user' }],
      ['enable-key', { key_id: keyId }],
      ['disable-key', { key_id: keyId }],
      ['schedule-key-deletion', { key_id: keyId, pending_days: '7' }],
      ['cancel-key-deletion', { key_id: keyId }],
      ['update-key-alias', { key_id: keyId, key_alias: 'by-user' }],
      ['update-key-description', { key_id: keyId, key_description: 'by user' }],
      ['enable-key-rotation', { key_id: keyId }],
      ['disable-key-rotation', { key_id: keyId }],
      ['update-key-rotation-interval', { key_id: keyId, rotation_interval: 30 }],
    ];
    for (const [action, body] of calls) assertError(await hw.post(action, body, f.user), 403, 'KMS.0306');
    assert.deepEqual(await hw.describe(keyId), before);
    assertError(await hw.post('describe-key', { key_id: 'alias/by-user' }), 404, 'KMS.0207');
    for (const action of ['describe-key', 'get-key-rotation-status']) {
      assert.equal((await hw.post(action, { key_id: keyId }, f.user)).status, 200);
    }
    assert.equal((await hw.post('list-keys', {}, f.user)).status, 200);
  });

  it('when a management action is sent with GET, then 405 KMS.0215', async () => {
    const r = await hw.call('GET', '/describe-key');
    assertError(r, 405, 'KMS.0215');
  });
});

describe('Huawei lifecycle logs', () => {
  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
