/**
 * Huawei rotation settings through HTTP: enable/disable-key-rotation, update-key-rotation-interval,
 * get-key-rotation-status, and an automatic rotation they cause (the service's sweep runs every
 * 200 ms here; "time passing" is the key's creation date moved into the past in the store).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { fixture, type Fixture } from '../../helpers/fixture';
import { until } from '../../helpers/wait';
import { assertError, Huawei } from './client';

let f: Fixture;
let hw: Huawei;
before(async () => {
  f = await fixture({ KMS_SWEEP_INTERVAL_MS: '200' });
  hw = new Huawei(f);
});
after(async () => {
  await f?.server.stop();
});

const DAY_MS = 86_400_000;

async function status(keyId: string): Promise<Record<string, unknown>> {
  return hw.ok('get-key-rotation-status', { key_id: keyId }, f.user);
}

function ageKey(keyId: string, days: number): void {
  const db = new Database(path.join(f.server.dataDir, 'p11kms.db'));
  try {
    const changed = db.prepare('UPDATE keys SET created_at = ? WHERE key_id = ?').run(Date.now() - days * DAY_MS, keyId).changes;
    assert.equal(changed, 1);
  } finally {
    db.close();
  }
}

/** The CMK version a format 2 envelope names (bytes 19-22, big-endian). */
const versionOf = (cipherText: string): number => Buffer.from(cipherText, 'base64').readUInt32BE(19);

describe('Huawei key rotation settings', () => {
  it('when a new key is asked about, then rotation is off, every 365 days, never rotated', async () => {
    const r = await hw.post('get-key-rotation-status', { key_id: f.aes.key_id }, f.user);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { key_rotation_enabled: false, rotation_interval: 365, last_rotation_time: '', number_of_rotations: 0 });
  });

  it('when rotation is enabled, its interval changed and disabled again, then status and describe-key follow each step', async () => {
    const keyId = await hw.create('rotating');
    const on = await hw.post('enable-key-rotation', { key_id: keyId, sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
    assert.equal(on.status, 200, on.text);
    assert.deepEqual(on.body, {});
    assert.equal((await status(keyId))['key_rotation_enabled'], true);
    assert.equal((await hw.describe(keyId))['key_rotation_enabled'], 'true');

    const every = await hw.post('update-key-rotation-interval', { key_id: 'alias/rotating', rotation_interval: 30 });
    assert.equal(every.status, 200, every.text);
    assert.deepEqual(every.body, {});
    assert.equal((await status(keyId))['rotation_interval'], 30);
    assert.equal((await hw.post('update-key-rotation-interval', { key_id: keyId, rotation_interval: 365 })).status, 200);
    assert.equal((await status(keyId))['rotation_interval'], 365);

    const off = await hw.post('disable-key-rotation', { key_id: keyId });
    assert.equal(off.status, 200, off.text);
    assert.deepEqual(off.body, {});
    assert.deepEqual(await status(keyId), { key_rotation_enabled: false, rotation_interval: 365, last_rotation_time: '', number_of_rotations: 0 });
  });

  it('when rotation is enabled twice or disabled when off, then KMS.2901 or KMS.0313', async () => {
    const keyId = await hw.create('rotating-twice');
    assertError(await hw.post('disable-key-rotation', { key_id: keyId }), 400, 'KMS.0313');
    assert.equal((await hw.post('enable-key-rotation', { key_id: keyId })).status, 200);
    assertError(await hw.post('enable-key-rotation', { key_id: keyId }), 400, 'KMS.2901');
    assert.equal((await status(keyId))['key_rotation_enabled'], true);
  });

  it('when the interval is changed while rotation is off, then KMS.0313 and it stays', async () => {
    const keyId = await hw.create('rotation-off');
    assertError(await hw.post('update-key-rotation-interval', { key_id: keyId, rotation_interval: 90 }), 400, 'KMS.0313');
    assert.equal((await status(keyId))['rotation_interval'], 365);
  });

  it('when the interval is outside 30 to 365 days or not an integer, then KMS.3001 and it stays', async () => {
    const keyId = await hw.create('rotation-bounds');
    assert.equal((await hw.post('enable-key-rotation', { key_id: keyId })).status, 200);
    for (const rotation_interval of [29, 366, 0, -30, 30.5, '30', null]) {
      assertError(await hw.post('update-key-rotation-interval', { key_id: keyId, rotation_interval }), 400, 'KMS.3001');
    }
    assertError(await hw.post('update-key-rotation-interval', { key_id: keyId }), 400, 'KMS.0204');
    assert.equal((await status(keyId))['rotation_interval'], 365);
  });

  it('when the key is RSA, then rotation changes are KMS.0324; its status still reads', async () => {
    for (const [action, extra] of [['enable-key-rotation', {}], ['disable-key-rotation', {}], ['update-key-rotation-interval', { rotation_interval: 30 }]] as const) {
      assertError(await hw.post(action, { key_id: f.rsa.key_id, ...extra }), 400, 'KMS.0324');
    }
    assert.equal((await status(f.rsa.key_id))['key_rotation_enabled'], false);
  });

  it('when the key is disabled or pending deletion, then rotation changes are KMS.0209 or KMS.0210', async () => {
    const off = await hw.create('rotation-disabled');
    assert.equal((await hw.post('disable-key', { key_id: off })).status, 200);
    assertError(await hw.post('enable-key-rotation', { key_id: off }), 400, 'KMS.0209');
    const doomed = await hw.create('rotation-doomed');
    assert.equal((await hw.post('enable-key-rotation', { key_id: doomed })).status, 200);
    assert.equal((await hw.post('schedule-key-deletion', { key_id: doomed, pending_days: '7' })).status, 200);
    assertError(await hw.post('disable-key-rotation', { key_id: doomed }), 400, 'KMS.0210');
    assertError(await hw.post('update-key-rotation-interval', { key_id: doomed, rotation_interval: 30 }), 400, 'KMS.0210');
    assert.equal((await status(doomed))['key_rotation_enabled'], true);
    assert.equal((await status(off))['key_rotation_enabled'], false);
  });

  it('when the key is unknown or another project\'s, then 404 KMS.0207', async () => {
    for (const action of ['enable-key-rotation', 'disable-key-rotation', 'get-key-rotation-status']) {
      assertError(await hw.post(action, { key_id: f.foreign.key_id }), 404, 'KMS.0207');
    }
    assertError(await hw.post('update-key-rotation-interval', { key_id: f.foreign.key_id, rotation_interval: 30 }), 404, 'KMS.0207');
    assertError(await hw.post('get-key-rotation-status', { key_id: 'x' }), 400, 'KMS.0205');
  });
});

describe('Huawei automatic rotation', () => {
  it('when rotation is on and the interval has passed, then the key rotates: the count and time are reported, new ciphertexts use the new version, old ones still open', async () => {
    const keyId = await hw.create('auto-rotating');
    const old = await hw.encrypt(keyId, 'made before rotation');
    assert.equal(versionOf(old), 1);
    assert.equal((await hw.post('enable-key-rotation', { key_id: keyId })).status, 200);
    assert.equal((await hw.post('update-key-rotation-interval', { key_id: keyId, rotation_interval: 30 })).status, 200);
    const before = Date.now();
    ageKey(keyId, 31);
    // The sweep's next pass rotates it: waited for, not timed (a loaded machine runs it late).
    let s = await status(keyId);
    await until('the sweep to rotate the key', async () => (s = await status(keyId))['number_of_rotations'] !== 0, { everyMs: 100 });
    assert.equal(s['number_of_rotations'], 1);
    assert.equal(s['key_rotation_enabled'], true);
    assert.equal(s['rotation_interval'], 30);
    assert.match(String(s['last_rotation_time']), /^\d{13}$/);
    assert.ok(Number(s['last_rotation_time']) >= before - 1000);
    const fresh = await hw.encrypt(keyId, 'made after rotation');
    assert.equal(versionOf(fresh), 2);
    assert.equal(await hw.decrypt(old), 'made before rotation');
    assert.equal(await hw.decrypt(fresh), 'made after rotation');
    // Not due again for 30 days.
    await sleep(600);
    assert.equal((await status(keyId))['number_of_rotations'], 1);
  });
});

describe('Huawei rotation logs', () => {
  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
