/**
 * Object searches on the binding's worker thread (binding-worker.ts, Hsm.withObject, listObjects),
 * on a real SoftHSM token holding 600 other objects, so that a search takes milliseconds: the
 * event loop turns meanwhile, concurrent first uses share one search, a listing teaches every
 * handle and the next listing reads only new objects, and the module is never re-initialised or finalized while a search is inside it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import type { ObjectHandle, Pkcs11Api, SessionHandle } from '../../src/hsm/binding';
import type { TokenObject, VersionRef } from '../../src/hsm/hsm';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { turnsDuring } from '../helpers/event-loop';
import { FaultInjector } from '../helpers/fault-binding';
import { inlinePool } from '../helpers/inline-pool';
import { ROOT } from '../helpers/server';

const FILLER = 600;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime | undefined;
let faults: FaultInjector;

/** Handles whose attributes the worker thread was asked to read since the last `open`. */
const read = { handles: 0 };

function open(extraEnv: NodeJS.ProcessEnv = {}, keygenInProcess = false): Runtime {
  runtime?.close();
  faults = new FaultInjector(loadConfig(env).tokenLabel);
  read.handles = 0;
  const counting = (m: Pkcs11Api): Pkcs11Api =>
    new Proxy(m, {
      get: (target, prop, receiver) => {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'readAttributesOffThread' || typeof v !== 'function') return v;
        return (s: SessionHandle, handles: readonly ObjectHandle[], attrs: readonly number[]) => {
          read.handles += handles.length;
          return (v as Pkcs11Api['readAttributesOffThread']).call(target, s, handles, attrs);
        };
      },
    });
  runtime = openRuntime(loadConfig({ ...env, ...extraEnv }), createLogger('warn', new PassThrough()), { wrapModule: (m) => faults.wrap(counting(m)), keygenInProcess });
  return runtime;
}

const sorted = (objects: readonly TokenObject[]): string[] => objects.map((o) => `${o.keyId}/${o.version}/${o.role}`).sort();

/** Versions made so far: the p11kms objects on the token. */
const made: VersionRef[] = [];

/** A new AES version, made by the key-generation helper: this process has never seen its handle. */
async function newVersion(rt: Runtime): Promise<VersionRef> {
  const ref = { keyId: randomUUID(), version: 1 };
  await rt.hsm.createAesVersion(ref, false);
  made.push(ref);
  return ref;
}

async function sealsAndOpens(rt: Runtime, ref: VersionRef): Promise<void> {
  const iv = randomBytes(12);
  const aad = Buffer.from('aad');
  const plaintext = randomBytes(32);
  const sealed = await rt.hsm.gcmEncrypt(ref, iv, aad, plaintext);
  assert.deepEqual(await rt.hsm.gcmDecrypt(ref, iv, aad, sealed), plaintext);
}

const searches = (method: 'findObjects' | 'findObjectsOffThread') => faults.attempts.get(method) ?? 0;

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-find-'));
  // The search counts below are those of a service using session copies (opt-in), as when written.
  env = { ...process.env, KMS_DATA_DIR: dataDir, KMS_SESSION_KEY_COPIES: '4096' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  // Other applications' objects, made by another process: every search has to look at them all.
  const config = loadConfig(env);
  const filler = `
    const P = require('pkcs11js');
    const p = new P.PKCS11(); p.load(process.env.MODULE); p.C_Initialize();
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === process.env.LABEL);
    const s = p.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    p.C_Login(s, P.CKU_USER, process.env.PIN);
    for (let i = 0; i < ${FILLER}; i++) p.C_CreateObject(s, [
      { type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_LABEL, value: 'other-application/' + i }, { type: P.CKA_VALUE, value: Buffer.alloc(16) }]);
    p.C_Finalize();`;
  execFileSync(process.execPath, ['-e', filler], {
    cwd: ROOT,
    env: { ...env, SOFTHSM2_CONF: config.softhsmConf ?? '', MODULE: config.pkcs11Module, LABEL: config.tokenLabel, PIN: config.pin },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
});
after(() => {
  runtime?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('object searches on the worker thread (KMS_FIND_OFF_THREAD, with the key-generation helper)', () => {
  it('when a version is first used in a process, then its search runs on the worker thread while the event loop turns, and the handle found seals and opens', async () => {
    const rt = open();
    assert.equal(rt.hsm.findsOffThread, true);
    const ref = await newVersion(rt);
    const turns = await turnsDuring(() => sealsAndOpens(rt, ref));
    assert.equal(searches('findObjectsOffThread'), 1);
    assert.equal(searches('findObjects'), 0, 'no search on the event loop');
    // On the event loop, a search of 600 objects would leave it a turn or two.
    assert.ok(turns > 5, `only ${turns} event-loop turns during a search of ${FILLER} objects`);
    assert.equal(inlinePool(rt).module.callsOffThread, 0);
  });

  it('when KMS_FIND_OFF_THREAD=false, then the same first use searches on the event loop', async () => {
    const rt = open({ KMS_FIND_OFF_THREAD: 'false' });
    assert.equal(rt.hsm.findsOffThread, false);
    const ref = await newVersion(rt);
    const turns = await turnsDuring(() => sealsAndOpens(rt, ref));
    assert.equal(searches('findObjects'), 1);
    assert.equal(searches('findObjectsOffThread'), 0);
    assert.ok(turns <= 3, `${turns} turns: the search was expected to hold the event loop`);
  });

  it('when key objects are made in this process, then searches stay on the event loop (SoftHSM would read a file another thread is writing)', () => {
    assert.equal(open({}, true).hsm.findsOffThread, false);
    assert.equal(open({ KMS_KEYGEN_PROCESS: 'false' }).hsm.findsOffThread, false);
  });

  it('when 32 requests first use the same version at once, then one search serves them all', async () => {
    const rt = open();
    const ref = await newVersion(rt);
    await Promise.all(Array.from({ length: 32 }, () => sealsAndOpens(rt, ref)));
    assert.equal(searches('findObjectsOffThread'), 1);
  });

  it('when many versions are first used at once, then one listing teaches their handles instead of a search each', async () => {
    const maker = open();
    const refs: VersionRef[] = [];
    for (let i = 0; i < 12; i++) refs.push(await newVersion(maker));
    const rt = open();
    await Promise.all(refs.flatMap((ref) => [sealsAndOpens(rt, ref), sealsAndOpens(rt, ref)]));
    // The first version's own search, then the listing that the others waited for (its search and
    // its attribute reads); a version made after the listing began would be searched for alone.
    assert.ok(searches('findObjectsOffThread') <= 3, `${searches('findObjectsOffThread')} searches for ${refs.length} versions`);
    assert.equal(faults.attempts.get('readAttributesOffThread'), 1);
    assert.equal(searches('findObjects'), 0);
    for (const ref of refs) await sealsAndOpens(rt, ref);
    assert.ok(searches('findObjectsOffThread') <= 3, 'and each is known from then on');
  });

  it('when versions are first used one after another, then the second lists the token and the rest search nothing', async () => {
    const maker = open();
    const refs: VersionRef[] = [];
    for (let i = 0; i < 8; i++) refs.push(await newVersion(maker));
    const rt = open();
    for (const ref of refs) await sealsAndOpens(rt, ref);
    assert.equal(searches('findObjectsOffThread'), 2, "the first version's search, then the listing's");
    assert.equal(faults.attempts.get('readAttributesOffThread'), 1);
  });

  it('when the token is listed, then every p11kms object is in the list, its handle is learned, and its first use searches nothing', async () => {
    const rt = open();
    const refs = [await newVersion(rt), await newVersion(rt)];
    const listed = await rt.hsm.listObjects();
    assert.equal(listed.length, made.length, `the other application's ${FILLER} objects are left out`);
    for (const ref of made) assert.ok(listed.some((o) => o.keyId === ref.keyId && o.version === 1 && o.role === 'cmk'));
    const before = searches('findObjectsOffThread');
    for (const ref of refs) await sealsAndOpens(rt, ref);
    assert.equal(searches('findObjectsOffThread') - before, 0);
    assert.equal(searches('findObjects'), 0);
    // A destroy searches on the worker thread too, and the version is gone.
    assert.equal(await rt.hsm.destroyVersion(refs[0]!), 1);
    assert.equal((await rt.hsm.listObjects()).length, made.length - 1);
    assert.equal(searches('findObjects'), 0);
  });

  it('when the token is listed again, then only the objects new since the last listing are read, and the listing is the same as a fresh one', async () => {
    const rt = open();
    const first = await rt.hsm.listObjects();
    assert.equal(read.handles, first.length + FILLER, 'the first listing reads every object, the other application\'s too');
    read.handles = 0;
    const again = await rt.hsm.listObjects();
    assert.equal(read.handles, 0);
    assert.deepEqual(sorted(again), sorted(first));
    const ref = await newVersion(rt);
    const withNew = await rt.hsm.listObjects();
    assert.equal(read.handles, 1, 'the new version\'s object only');
    assert.ok(withNew.some((o) => o.keyId === ref.keyId));
    assert.equal(await rt.hsm.destroyVersion(ref), 1);
    read.handles = 0;
    const after = await rt.hsm.listObjects();
    assert.equal(read.handles, 0);
    assert.ok(!after.some((o) => o.keyId === ref.keyId), 'a destroyed object is not listed from memory');
    assert.deepEqual(sorted(after), sorted(await open().hsm.listObjects()), 'the same as the listing of a process that remembers nothing');
  });

  it('when listings run on the event loop (KMS_FIND_OFF_THREAD=false), then they too read only new objects', async () => {
    const rt = open({ KMS_FIND_OFF_THREAD: 'false' });
    const first = await rt.hsm.listObjects();
    assert.equal(faults.attempts.get('getAttributes'), first.length + FILLER);
    const ref = await newVersion(rt);
    const second = await rt.hsm.listObjects();
    assert.equal(faults.attempts.get('getAttributes'), first.length + FILLER + 1);
    assert.equal(second.length, first.length + 1);
    assert.equal(await rt.hsm.destroyVersion(ref), 1);
  });

  it('when a token fault strikes while a search is on the worker thread, then the module is re-initialised only after it returned, and the use succeeds', async () => {
    const rt = open();
    await rt.hsm.random(8);
    const ref = await newVersion(rt);
    const use = sealsAndOpens(rt, ref);
    await new Promise((r) => setImmediate(r)); // the search has started
    assert.equal(inlinePool(rt).module.callsOffThread, 1, 'the search was expected on the worker thread by now');
    const inside: number[] = [];
    faults.watch('reinitialize', () => inside.push(inlinePool(rt).module.callsOffThread));
    faults.fail('generateRandom', 'CKR_DEVICE_ERROR');
    assert.equal((await rt.hsm.random(8)).length, 8); // faults, recovers (after the search), retried
    await use;
    assert.deepEqual(inside, [0], 'calls inside the module when it was re-initialised');
    assert.equal(inlinePool(rt).stats.recoveries, 1);
    await sealsAndOpens(rt, ref); // and the re-initialised module finds it again
  });

  it('when the runtime closes while a search is on the worker thread, then the module is finalized after it', async () => {
    const rt = open();
    await rt.hsm.random(8);
    const ref = await newVersion(rt);
    const use = rt.hsm.gcmEncrypt(ref, randomBytes(12), Buffer.alloc(0), randomBytes(16)).catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    assert.equal(inlinePool(rt).module.callsOffThread, 1);
    const mod = inlinePool(rt).module;
    const inside: number[] = [];
    faults.watch('finalize', () => inside.push(mod.callsOffThread));
    rt.close();
    runtime = undefined;
    await use; // sealed, or refused because the pool closed: either way it returned
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(inside, [0], 'calls inside the module when it was finalized');
  });
});
