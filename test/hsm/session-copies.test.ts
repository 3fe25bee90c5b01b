/**
 * Session copies of CMKs (src/hsm/hsm.ts): made once per version and process, used instead of the
 * token object, as protected as it, bounded, destroyed with their version, re-made after the
 * keeper session dies, and never attempted when KMS_SESSION_KEY_COPIES=0. In process on a real
 * SoftHSM token, the module wrapped in the fault-injecting proxy only to count calls.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { loadConfig } from '../../src/config/load';
import { C, HsmError, type ObjectHandle, type SessionHandle } from '../../src/hsm/binding';
import { objectId, type VersionRef } from '../../src/hsm/hsm';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { FaultInjector } from '../helpers/fault-binding';
import { inlinePool } from '../helpers/inline-pool';
import { ROOT } from '../helpers/server';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime | undefined;
let faults: FaultInjector;
const keys: Record<'a' | 'b' | 'c' | 'legacy', VersionRef> = {} as Record<'a' | 'b' | 'c' | 'legacy', VersionRef>;

const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): string =>
  execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), ...args], { env: { ...env, ...extra }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function newKey(alias: string, extra: NodeJS.ProcessEnv = {}): VersionRef {
  const out = JSON.parse(cli(['key', 'create', '--project', 'p1', '--alias', alias, '--spec', 'AES_256'], extra)) as { key_id: string };
  return { keyId: out.key_id, version: 1 };
}

function open(copies: number): Runtime {
  runtime?.close();
  faults = new FaultInjector(loadConfig(env).tokenLabel);
  runtime = openRuntime(loadConfig({ ...env, KMS_SESSION_KEY_COPIES: String(copies) }), createLogger('warn', new PassThrough()), { wrapModule: faults.wrap });
  return runtime;
}

const rt = (): Runtime => runtime!;
const attempts = (m: string) => faults.attempts.get(m) ?? 0;

async function seal(ref: VersionRef, plaintext: Buffer) {
  const iv = randomBytes(12);
  const aad = Buffer.from(`aad:${ref.keyId}`);
  return { iv, aad, sealed: await rt().hsm.gcmEncrypt(ref, iv, aad, plaintext) };
}

/** In the runtime's own application (session objects are per application): objects with this version's CKA_ID. */
function objects(ref: VersionRef, token: boolean): Promise<ObjectHandle[]> {
  return inlinePool(rt()).use((s) =>
    inlinePool(rt()).module.findObjects(s, [
      { type: C.CKA_ID, value: objectId(ref, 'cmk') },
      { type: C.CKA_TOKEN, value: token },
    ]),
  );
}

function flag(s: SessionHandle, h: ObjectHandle, type: number): boolean {
  return inlinePool(rt()).module.getAttributes(s, h, [type]).get(type)?.[0] === 1;
}

function ckrOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof HsmError ? e.ckrName : String(e);
  }
  return 'CKR_OK';
}

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-copies-'));
  env = { ...process.env, KMS_DATA_DIR: dataDir, KMS_POOL_SIZE: '2', KMS_SWEEP_INTERVAL_MS: '86400000' };
  delete env['SOFTHSM2_CONF'];
  // Copies are opt-in: the keys of these tests are made by a service that makes them.
  env['KMS_SESSION_KEY_COPIES'] = '2';
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  keys.a = newKey('a');
  keys.b = newKey('b');
  keys.c = newKey('c');
  // Made by a service with copies off: non-modifiable, so SoftHSM refuses to copy it.
  keys.legacy = newKey('legacy', { KMS_SESSION_KEY_COPIES: '0' });
});

after(() => {
  runtime?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('session copies of CMKs (KMS_SESSION_KEY_COPIES=2)', () => {
  before(() => open(2));

  it('when a version is used many times, then one copy is made, and what it seals the token object opens', async () => {
    const p = randomBytes(64);
    let last = await seal(keys.a, p);
    for (let i = 0; i < 20; i++) last = await seal(keys.a, p);
    assert.equal(attempts('copyObject'), 1);
    assert.equal(rt().hsm.sessionCopies, 1);
    assert.equal((await objects(keys.a, false)).length, 1, 'one session object with the version CKA_ID');
    // Decrypt with the TOKEN object itself, not through Hsm: the copy is the same key.
    const [token] = await objects(keys.a, true);
    const opened = await inlinePool(rt()).use((s) =>
      inlinePool(rt()).module.decrypt(s, { kind: 'aes-gcm', iv: last.iv, aad: last.aad }, token!, last.sealed, last.sealed.length),
    );
    assert.deepEqual(opened, p);
    assert.deepEqual(await rt().hsm.gcmDecrypt(keys.a, last.iv, last.aad, last.sealed), p);
  });

  it('when the copy is examined, then it is a private, sensitive, non-extractable session object whose protection cannot be undone', async () => {
    const [copy] = await objects(keys.a, false);
    const [token] = await objects(keys.a, true);
    await inlinePool(rt()).use((s) => {
      const m = inlinePool(rt()).module;
      assert.equal(flag(s, copy!, C.CKA_TOKEN), false);
      assert.equal(flag(s, copy!, C.CKA_PRIVATE), true);
      assert.equal(flag(s, copy!, C.CKA_SENSITIVE), true);
      assert.equal(flag(s, copy!, C.CKA_EXTRACTABLE), false);
      assert.equal(flag(s, copy!, pkcs11js.CKA_NEVER_EXTRACTABLE), true);
      assert.equal(flag(s, copy!, C.CKA_WRAP), false);
      assert.equal(ckrOf(() => m.getAttributes(s, copy!, [C.CKA_VALUE])), 'CKR_ATTRIBUTE_SENSITIVE');
      assert.equal(flag(s, token!, C.CKA_MODIFIABLE), true, 'copyable versions are modifiable (templates.ts says why)');
      // The one-way attributes stay one-way on the modifiable token object and on the copy, also through a copy.
      for (const h of [copy!, token!]) {
        assert.equal(ckrOf(() => m.copyObject(s, h, [{ type: C.CKA_EXTRACTABLE, value: true }])), 'CKR_ATTRIBUTE_READ_ONLY');
        assert.equal(ckrOf(() => m.copyObject(s, h, [{ type: C.CKA_SENSITIVE, value: false }])), 'CKR_ATTRIBUTE_READ_ONLY');
      }
    });
  });

  it('when a version was made non-modifiable, then the copy is tried once, refused, and the token object serves it', async () => {
    const before = attempts('copyObject');
    const p = randomBytes(32);
    for (let i = 0; i < 5; i++) {
      const x = await seal(keys.legacy, p);
      assert.deepEqual(await rt().hsm.gcmDecrypt(keys.legacy, x.iv, x.aad, x.sealed), p);
    }
    assert.equal(attempts('copyObject') - before, 1);
    assert.equal(rt().hsm.sessionCopies, 1);
    assert.equal((await objects(keys.legacy, false)).length, 0);
  });

  it('when more versions are used than the bound, then the extra ones use their token object', async () => {
    await seal(keys.b, randomBytes(16));
    await seal(keys.c, randomBytes(16));
    await seal(keys.c, randomBytes(16));
    assert.equal(rt().hsm.sessionCopies, 2);
    assert.equal((await objects(keys.b, false)).length, 1);
    assert.equal((await objects(keys.c, false)).length, 0, 'no copy beyond the bound');
  });

  it('when a version is deleted by another process, then pruning destroys its copy, and the freed place goes to another version', async () => {
    const n = await rt().hsm.pruneCopies(async (ref) => ref.keyId !== keys.a.keyId);
    assert.equal(n, 1);
    assert.equal(rt().hsm.sessionCopies, 1);
    assert.equal((await objects(keys.a, false)).length, 0, 'the copy is gone from the token');
    assert.equal((await objects(keys.a, true)).length, 1, 'pruning never touches the token object');
    await seal(keys.c, randomBytes(16));
    assert.equal((await objects(keys.c, false)).length, 1);
  });

  it('when this process destroys a version, then its copy goes with the token object', async () => {
    const destroyed = await rt().hsm.destroyVersion(keys.b);
    assert.equal(destroyed, 1, 'one token object');
    assert.equal((await objects(keys.b, false)).length, 0);
    assert.equal((await objects(keys.b, true)).length, 0);
    assert.equal(rt().hsm.sessionCopies, 1);
  });

  it('when every session dies under the service (C_CloseAllSessions), then copies are re-made and requests go on', async () => {
    const p = randomBytes(48);
    const x = await seal(keys.c, p);
    const before = attempts('copyObject');
    await faults.closeAllSessions();
    assert.deepEqual(await rt().hsm.gcmDecrypt(keys.c, x.iv, x.aad, x.sealed), p);
    // Logout forgot the token object's handle too: the first copy attempt names the stale handle,
    // then the object is found again and copied.
    assert.ok(attempts('copyObject') - before >= 1);
    assert.equal(rt().hsm.sessionCopies, 1);
    assert.equal((await objects(keys.c, false)).length, 1, 'one live copy, in the new keeper session');
    const s = inlinePool(rt()).stats;
    assert.equal(s.opened - s.closed - s.dropped, s.open, JSON.stringify(s));
  });
});

describe('session copies off (KMS_SESSION_KEY_COPIES=0)', () => {
  before(() => open(0));

  it('when keys are created and used, then nothing is copied and new versions are non-modifiable', async () => {
    const ref = newKey('off', { KMS_SESSION_KEY_COPIES: '0' });
    const p = randomBytes(32);
    for (const k of [ref, keys.c]) {
      const x = await seal(k, p);
      assert.deepEqual(await rt().hsm.gcmDecrypt(k, x.iv, x.aad, x.sealed), p);
    }
    assert.equal(attempts('copyObject'), 0);
    assert.equal(rt().hsm.sessionCopies, 0);
    const [token] = await objects(ref, true);
    await inlinePool(rt()).use((s) => assert.equal(flag(s, token!, C.CKA_MODIFIABLE), false));
  });
});
