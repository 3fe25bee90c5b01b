import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../../helpers/fixture';
import { b64, badRequest, forbidden, Ncp, notFound, versionOf, wrongState } from './client';

const DAY_MS = 86_400_000;

let f: Fixture;
let ncp: Ncp;
before(async () => {
  f = await fixture();
  ncp = new Ncp(f);
});
after(async () => {
  await f?.server.stop();
});

async function unchanged(tag: string, refused: () => Promise<void>): Promise<void> {
  const before = await ncp.info(tag);
  const versionsBefore = await ncp.versions(tag);
  await refused();
  assert.deepEqual(await ncp.info(tag), before);
  assert.deepEqual(await ncp.versions(tag), versionsBefore);
}

const rotate = async (tag: string) => {
  const r = await ncp.action(tag, 'rotate');
  assert.equal(r.status, 200, r.text);
  return r.body.data as { keyTag: string; version: number; rotatedDate: number };
};
const setVersion = (tag: string, version: number | string, action: 'enable' | 'disable', token = f.admin) =>
  ncp.action(tag, `versions/${version}/${action}`, undefined, token);

describe('NCP rotate and version list', () => {
  it('when a key is rotated, then the answer names the new version and the info and version list follow', async () => {
    const key = await ncp.create({ keyName: 'rot-1', keyType: 'AES256' });
    const v1 = await ncp.versions(key.keyTag);
    assert.deepEqual(Object.keys(v1).sort(), ['currentVersion', 'keyTag', 'versionList']);
    assert.equal(v1['currentVersion'], 1);
    assert.deepEqual((v1['versionList'] as Array<Record<string, unknown>>).map((v) => [v['version'], v['status']]), [[1, 'ENABLE']]);

    const r = await rotate(key.keyTag);
    assert.deepEqual(Object.keys(r).sort(), ['keyTag', 'rotatedDate', 'version']);
    assert.equal(r.keyTag, key.keyTag);
    assert.equal(r.version, 2);
    assert.ok(Math.abs(r.rotatedDate - Date.now()) < 60_000);
    assert.equal((await rotate(key.keyTag)).version, 3);
    assert.equal((await ncp.info(key.keyTag))['currentVersion'], 3);

    const list = await ncp.versions(key.keyTag);
    assert.equal(list['currentVersion'], 3);
    const items = list['versionList'] as Array<Record<string, unknown>>;
    assert.deepEqual(items.map((v) => v['version']), [1, 2, 3]);
    for (const v of items) {
      assert.deepEqual(Object.keys(v).sort(), ['registerDate', 'status', 'version']);
      assert.equal(v['status'], 'ENABLE');
    }
    assert.equal(items[0]!['registerDate'], key['registerDate']);
    const dates = items.map((v) => v['registerDate'] as number);
    assert.deepEqual(dates, [...dates].sort((a, b) => a - b));
    assert.ok(dates[1]! <= r.rotatedDate);
    // Read calls take any token of the project.
    assert.equal((await ncp.call('GET', `/keys/${key.keyTag}/versions`, undefined, f.user)).status, 200);
    notFound(await ncp.call('GET', `/keys/${key.keyTag}/versions`, undefined, f.other));
  });

  it('when a key is disabled, or the caller is not admin, then rotate is refused and nothing changes', async () => {
    const key = await ncp.create({ keyName: 'rot-2', keyType: 'AES256' });
    await unchanged(key.keyTag, async () => forbidden(await ncp.action(key.keyTag, 'rotate', {}, f.user)));
    await unchanged(key.keyTag, async () => badRequest(await ncp.action(key.keyTag, 'rotate', { version: 2 })));
    assert.equal((await ncp.action(key.keyTag, 'disable')).status, 200);
    await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, 'rotate')));
  });

  it('when an RSA2048 key is rotated, then it gets a new key pair', async () => {
    const key = await ncp.create({ keyName: 'rot-rsa', keyType: 'RSA2048' });
    const pem1 = (await ncp.action(key.keyTag, 'get-pub-key', {}, f.user)).body.data.publicKey;
    assert.equal((await rotate(key.keyTag)).version, 2);
    const pem2 = (await ncp.action(key.keyTag, 'get-pub-key', {}, f.user)).body.data.publicKey;
    assert.notEqual(pem1, pem2);
    assert.equal((await ncp.action(key.keyTag, 'get-pub-key', { keyVersion: 1 }, f.user)).body.data.publicKey, pem1);
  });
});

describe('NCP ciphertexts across rotation', () => {
  it('when a key is rotated, then new ciphertexts name the new version and old ones still decrypt', async () => {
    for (const keyType of ['AES256', 'RSA2048']) {
      const key = await ncp.create({ keyName: `old-${keyType}`, keyType });
      const old = (await ncp.encrypt(key.keyTag, Buffer.from('written before rotation'))) as string;
      const oldCk = await ncp.action(key.keyTag, 'create-custom-key', { requestPlainKey: true }, f.user);
      f.secrets.addBase64(oldCk.body.data.plaintext);
      assert.equal(oldCk.body.data.key_version, 1);
      assert.equal(versionOf(old), 1);
      await rotate(key.keyTag);

      const fresh = (await ncp.encrypt(key.keyTag, Buffer.from('written after rotation'))) as string;
      assert.equal(versionOf(fresh), 2);
      const ck = await ncp.action(key.keyTag, 'create-custom-key', { requestPlainKey: true }, f.user);
      f.secrets.addBase64(ck.body.data.plaintext);
      assert.equal(ck.body.data.key_version, 2);
      assert.equal(versionOf(ck.body.data.ciphertext), 2);

      assert.deepEqual(await ncp.decrypt(key.keyTag, [old, fresh, oldCk.body.data.ciphertext, ck.body.data.ciphertext]), [
        b64('written before rotation'),
        b64('written after rotation'),
        oldCk.body.data.plaintext,
        ck.body.data.plaintext,
      ]);

      const re = await ncp.action(key.keyTag, 're-encrypt', { ciphertext: old }, f.user);
      assert.equal(re.status, 200, re.text);
      assert.equal(versionOf(re.body.data.ciphertext), 2);
      assert.equal(await ncp.decrypt(key.keyTag, re.body.data.ciphertext), b64('written before rotation'));
    }
  });

  it('when the prefix names a version other than the one inside, then the ciphertext is refused', async () => {
    const key = await ncp.create({ keyName: 'prefix-1', keyType: 'AES256' });
    const old = (await ncp.encrypt(key.keyTag, Buffer.from('v1 data'))) as string;
    await rotate(key.keyTag);
    badRequest(await ncp.action(key.keyTag, 'decrypt', { ciphertext: old.replace('ncpkms:v1:', 'ncpkms:v2:') }, f.user));
    badRequest(await ncp.action(key.keyTag, 'decrypt', { ciphertext: old.replace('ncpkms:v1:', 'ncpkms:v3:') }, f.user));
  });
});

describe('NCP version enable and disable', () => {
  it('when an old version is disabled, then its ciphertexts are refused with 422 until it is enabled again', async () => {
    const key = await ncp.create({ keyName: 'ver-1', keyType: 'AES256' });
    const old = (await ncp.encrypt(key.keyTag, Buffer.from('made by version one'))) as string;
    await rotate(key.keyTag);
    const fresh = (await ncp.encrypt(key.keyTag, Buffer.from('made by version two'))) as string;

    const d = await setVersion(key.keyTag, 1, 'disable');
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(Object.keys(d.body.data).sort(), ['status', 'statusDate', 'version']);
    assert.equal(d.body.data.version, 1);
    assert.equal(d.body.data.status, 'DISABLE');
    assert.ok(Math.abs(d.body.data.statusDate - Date.now()) < 60_000);
    const list = (await ncp.versions(key.keyTag))['versionList'] as Array<Record<string, unknown>>;
    assert.deepEqual(list.map((v) => v['status']), ['DISABLE', 'ENABLE']);

    await unchanged(key.keyTag, async () => {
      wrongState(await ncp.action(key.keyTag, 'decrypt', { ciphertext: old }, f.user));
      wrongState(await ncp.action(key.keyTag, 'decrypt', { ciphertext: [fresh, old] }, f.user));
      wrongState(await ncp.action(key.keyTag, 're-encrypt', { ciphertext: old }, f.user));
    });
    assert.equal(await ncp.decrypt(key.keyTag, fresh), b64('made by version two'));

    const e = await setVersion(key.keyTag, 1, 'enable');
    assert.equal(e.status, 200, e.text);
    assert.equal(e.body.data.status, 'ENABLE');
    assert.equal(await ncp.decrypt(key.keyTag, old), b64('made by version one'));
  });

  it('when the newest version is disabled, then 422 and nothing changes', async () => {
    const key = await ncp.create({ keyName: 'ver-2', keyType: 'AES256' });
    await unchanged(key.keyTag, async () => wrongState(await setVersion(key.keyTag, 1, 'disable')));
    await rotate(key.keyTag);
    await unchanged(key.keyTag, async () => wrongState(await setVersion(key.keyTag, 2, 'disable')));
  });

  it('when the key is disabled or pending deletion, then version changes are refused with 422', async () => {
    const key = await ncp.create({ keyName: 'ver-3', keyType: 'AES256' });
    await rotate(key.keyTag);
    for (const step of ['disable', 'request-deletion']) {
      assert.equal((await ncp.action(key.keyTag, step)).status, 200);
      await unchanged(key.keyTag, async () => {
        wrongState(await setVersion(key.keyTag, 1, 'disable'));
        wrongState(await setVersion(key.keyTag, 1, 'enable'));
      });
      if (step === 'request-deletion') assert.equal((await ncp.action(key.keyTag, 'cancel-deletion')).status, 200);
      assert.equal((await ncp.action(key.keyTag, 'enable')).status, 200);
    }
  });

  it('when the version is out of range, unknown, or the caller is not admin or of another project, then refused', async () => {
    const key = await ncp.create({ keyName: 'ver-4', keyType: 'AES256' });
    await rotate(key.keyTag);
    await unchanged(key.keyTag, async () => {
      for (const v of ['0', '101', '-1', 'abc', '01', '1.0', '1000']) badRequest(await setVersion(key.keyTag, v, 'disable'));
      notFound(await setVersion(key.keyTag, 5, 'disable'));
      notFound(await setVersion(key.keyTag, 100, 'enable'));
      forbidden(await setVersion(key.keyTag, 1, 'disable', f.user));
      notFound(await setVersion(key.keyTag, 1, 'disable', f.other));
      badRequest(await ncp.action(key.keyTag, 'versions/1/disable', { reason: 'x' }));
    });
  });
});

describe('NCP automatic rotation settings', () => {
  it('when auto rotation is enabled, its period changed and disabled, then each answer and the info agree', async () => {
    const key = await ncp.create({ keyName: 'auto-1', keyType: 'AES256' });
    const base = key['registerDate'] as number;

    const on = await ncp.action(key.keyTag, 'enable-auto-rotation');
    assert.equal(on.status, 200, on.text);
    assert.deepEqual(on.body.data, { keyTag: key.keyTag, isAutoRotation: true, rotationPeriod: 90, nextRotationDate: base + 90 * DAY_MS });

    const p = await ncp.call('PUT', `/keys/${key.keyTag}/rotation-period`, { rotationPeriod: 30 });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.body.data, { keyTag: key.keyTag, rotationPeriod: 30, nextRotationDate: base + 30 * DAY_MS });
    let info = await ncp.info(key.keyTag);
    assert.equal(info['isAutoRotation'], true);
    assert.equal(info['rotationPeriod'], 30);
    assert.equal(info['nextRotationDate'], base + 30 * DAY_MS);

    // A manual rotation restarts the schedule.
    const r = await rotate(key.keyTag);
    assert.equal((await ncp.info(key.keyTag))['nextRotationDate'], r.rotatedDate + 30 * DAY_MS);

    const off = await ncp.action(key.keyTag, 'disable-auto-rotation', {});
    assert.equal(off.status, 200, off.text);
    assert.deepEqual(off.body.data, { keyTag: key.keyTag, isAutoRotation: false, rotationPeriod: 30, nextRotationDate: null });
    info = await ncp.info(key.keyTag);
    assert.equal(info['isAutoRotation'], false);
    assert.equal(info['nextRotationDate'], null);
  });

  it('when auto rotation is already in the asked state, or off while the period is changed, then 422 and nothing changes', async () => {
    const key = await ncp.create({ keyName: 'auto-2', keyType: 'RSA2048' });
    await unchanged(key.keyTag, async () => {
      wrongState(await ncp.action(key.keyTag, 'disable-auto-rotation'));
      wrongState(await ncp.call('PUT', `/keys/${key.keyTag}/rotation-period`, { rotationPeriod: 10 }));
    });
    assert.equal((await ncp.action(key.keyTag, 'enable-auto-rotation')).status, 200);
    await unchanged(key.keyTag, async () => wrongState(await ncp.action(key.keyTag, 'enable-auto-rotation')));
  });

  it('when the key is pending deletion, then the settings are refused with 422', async () => {
    const key = await ncp.create({ keyName: 'auto-3', keyType: 'AES256', isAutoRotation: true });
    assert.equal((await ncp.action(key.keyTag, 'request-deletion')).status, 200);
    await unchanged(key.keyTag, async () => {
      wrongState(await ncp.action(key.keyTag, 'disable-auto-rotation'));
      wrongState(await ncp.call('PUT', `/keys/${key.keyTag}/rotation-period`, { rotationPeriod: 10 }));
    });
  });

  it('when the period is malformed, or the caller is not admin or of another project, then refused and nothing changes', async () => {
    const key = await ncp.create({ keyName: 'auto-4', keyType: 'AES256', isAutoRotation: true, rotationPeriod: 60 });
    const put = (body: unknown, token = f.admin) => ncp.call('PUT', `/keys/${key.keyTag}/rotation-period`, body, token);
    await unchanged(key.keyTag, async () => {
      for (const body of [{}, { rotationPeriod: 0 }, { rotationPeriod: 731 }, { rotationPeriod: 2.5 }, { rotationPeriod: '30' }, { rotationPeriod: null },
        { rotationPeriod: 30, extra: 1 }, [30], 30]) {
        badRequest(await put(body));
      }
      forbidden(await put({ rotationPeriod: 30 }, f.user));
      notFound(await put({ rotationPeriod: 30 }, f.other));
      for (const action of ['enable-auto-rotation', 'disable-auto-rotation']) {
        forbidden(await ncp.action(key.keyTag, action, {}, f.user));
        notFound(await ncp.action(key.keyTag, action, {}, f.other));
        badRequest(await ncp.action(key.keyTag, action, { rotationPeriod: 5 }));
      }
    });
    for (const days of [1, 730]) assert.equal((await put({ rotationPeriod: days })).body.data.rotationPeriod, days);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
