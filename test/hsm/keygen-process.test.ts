/**
 * Key generation in the helper process (src/hsm/keygen-process.ts), on a real SoftHSM token: the
 * event loop keeps turning while a key pair is made, the objects are the service's at once, a
 * helper that dies fails only its own job, the PIN is not where other tools can read it, and the
 * helper does not outlive the service.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { HsmError } from '../../src/hsm/binding';
import { classify } from '../../src/hsm/ckr';
import { objectId, objectLabel, type VersionRef } from '../../src/hsm/hsm';
import { helperEnv, KeygenProcess } from '../../src/hsm/keygen-process';
import { aesCmkTemplate } from '../../src/hsm/templates';
import { isKmsError } from '../../src/errors/kms-error';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { turnsDuring } from '../helpers/event-loop';
import { FaultInjector } from '../helpers/fault-binding';
import { keygenHelpers, ROOT, TestServer } from '../helpers/server';
import { until } from '../helpers/wait';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime | undefined;
let logs = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const newRef = (): VersionRef => ({ keyId: randomUUID(), version: 1 });

function open(keygenInProcess: boolean): Runtime {
  runtime?.close();
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  runtime = openRuntime(loadConfig(env), createLogger('info', sink), { keygenInProcess });
  return runtime;
}

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-keygen-'));
  // Session copies are opt-in; one test checks that the service destroys its copy itself.
  env = { ...process.env, KMS_DATA_DIR: dataDir, KMS_SESSION_KEY_COPIES: '2' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
});
after(() => {
  runtime?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('key generation in a helper process (KMS_KEYGEN_PROCESS)', () => {
  it('when an RSA key pair is made by the helper, then the event loop keeps turning meanwhile; made in process, it stands still', async () => {
    const rt = open(false);
    const ref = newRef();
    const turns = await turnsDuring(() => rt.hsm.createRsaVersion(ref));
    assert.ok(turns > 10, `only ${turns} event-loop turns during key-pair generation in the helper`);
    // The service uses the new pair at once: sign with the private key, read the public one.
    const sig = await rt.hsm.rsaSign(ref, { kind: 'rsa-pss', hash: 'sha256' }, Buffer.alloc(32, 7));
    assert.equal(sig.length, 256);
    assert.equal(await rt.hsm.rsaVerify(ref, { kind: 'rsa-pss', hash: 'sha256' }, Buffer.alloc(32, 7), sig), true);

    const inProcess = open(true);
    const turnsHere = await turnsDuring(() => inProcess.hsm.createRsaVersion(newRef()));
    assert.ok(turnsHere <= 2, `${turnsHere} turns: the in-process path was expected to block`);
  });

  it('when an AES version with its SIV key is made by the helper, then the service encrypts, decrypts and MACs with it at once', async () => {
    const rt = open(false);
    const ref = newRef();
    await rt.hsm.createAesVersion(ref, true);
    const iv = Buffer.alloc(12, 1);
    const aad = Buffer.from('context');
    const sealed = await rt.hsm.gcmEncrypt(ref, iv, aad, Buffer.from('plaintext'));
    assert.equal((await rt.hsm.gcmDecrypt(ref, iv, aad, sealed)).toString(), 'plaintext');
    assert.equal((await rt.hsm.cmac(ref, Buffer.from('x'))).length, 16);
  });

  it('when versions are made and destroyed, then the service process itself writes no token object, and what was destroyed is gone from its view', async () => {
    runtime?.close();
    const faults = new FaultInjector(loadConfig(env).tokenLabel);
    runtime = openRuntime(loadConfig(env), createLogger('warn', new PassThrough()), { wrapModule: faults.wrap });
    const rt = runtime;
    const aes = newRef();
    const rsa = newRef();
    await rt.hsm.createAesVersion(aes, true);
    await rt.hsm.createRsaVersion(rsa);
    // A use makes a session copy of the CMK: a session object, which this process does destroy.
    await rt.hsm.gcmEncrypt(aes, Buffer.alloc(12), Buffer.alloc(0), Buffer.from('x'));
    assert.equal(rt.hsm.sessionCopies, 1);
    assert.equal(await rt.hsm.destroyVersion(aes), 2, 'the CMK and its SIV key');
    assert.equal(await rt.hsm.destroyVersion(rsa), 2, 'both halves of the pair');
    assert.equal(rt.hsm.sessionCopies, 0);
    for (const m of ['generateKey', 'generateKeyPair'] as const) assert.equal(faults.attempts.get(m) ?? 0, 0, `${m} in the service process`);
    assert.equal(faults.attempts.get('destroyObject'), 1, 'the session copy only: no token object');
    // The façade hands out KmsErrors (the PKCS#11 detail goes to the log).
    await assert.rejects(rt.hsm.gcmEncrypt(aes, Buffer.alloc(12), Buffer.alloc(0), Buffer.from('x')), (e: unknown) => isKmsError(e) && e.code === 'Internal');
    assert.equal(await rt.hsm.destroyVersion(aes), 0, 'nothing left to destroy');
  });

  it("when the helper's view of the token missed another process's new object, then destroying it still works: the helper looks again from a fresh initialisation", async () => {
    const rt = open(false);
    await rt.hsm.createAesVersion(newRef(), false);
    // Another PKCS#11 application (the CLI) makes a key; then the helper writes before it reads
    // the token again, which makes SoftHSM take the CLI's change in without indexing it.
    const made = JSON.parse(execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'key', 'create', '--project', 'p1', '--alias', `other-${Date.now()}`, '--spec', 'AES_256'], { env, encoding: 'utf8' })) as { key_id: string };
    await rt.hsm.createAesVersion(newRef(), false);
    const ref = { keyId: made.key_id, version: 1 };
    assert.equal(await rt.hsm.destroyVersion(ref), 1);
    assert.equal(await rt.hsm.destroyVersion(ref), 0, 'gone for the service too');
  });

  it('when the helper dies with a job out, then that job fails as a token fault, and the next one starts a new helper and works', async () => {
    const rt = open(false);
    await rt.hsm.createAesVersion(newRef(), false);
    const [first] = keygenHelpers({ parent: process.pid });
    assert.ok(first, 'a helper runs after the first creation');
    // Stopped, it cannot answer: the job is surely out when it is killed.
    process.kill(first, 'SIGSTOP');
    const lost = newRef();
    const pending = rt.hsm.createAesVersion(lost, false);
    await sleep(50);
    process.kill(first, 'SIGKILL');
    await assert.rejects(pending, (e: unknown) => isKmsError(e) && e.code === 'HsmUnavailable');
    assert.match(logs, /"message":"key generation process ended"/);

    const next = newRef();
    await rt.hsm.createAesVersion(next, false);
    const [second] = keygenHelpers({ parent: process.pid });
    assert.ok(second && second !== first, 'a new helper');
    const sealed = await rt.hsm.gcmEncrypt(next, Buffer.alloc(12), Buffer.alloc(0), Buffer.from('ok'));
    assert.equal((await rt.hsm.gcmDecrypt(next, Buffer.alloc(12), Buffer.alloc(0), sealed)).toString(), 'ok');
  });

  it('then the PIN is in neither the helper\'s command line nor its environment', () => {
    const [pid] = keygenHelpers({ parent: process.pid });
    assert.ok(pid);
    const pin = readFileSync(path.join(dataDir, 'token.pin'), 'utf8').trim();
    assert.ok(pin.length >= 4);
    assert.ok(!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(pin));
    assert.ok(!readFileSync(`/proc/${pid}/environ`, 'utf8').includes(pin));
  });

  it('when the service has its PIN in KMS_PIN, then the helper is started without it', () => {
    const env = helperEnv({ KMS_PIN: 'secret-pin', KMS_DATA_DIR: '/d', PATH: '/bin' });
    assert.deepEqual(env, { KMS_DATA_DIR: '/d', PATH: '/bin' });
  });

  it('when the runtime closes, then its helper exits', async () => {
    const [pid] = keygenHelpers({ parent: process.pid });
    assert.ok(pid);
    runtime?.close();
    runtime = undefined;
    await until('the helper to exit', () => keygenHelpers({ parent: process.pid }).length === 0);
  });

  it('when the helper stops answering, then after the stall limit its jobs fail as a token fault and the next job gets a new helper', async () => {
    const config = loadConfig(env);
    if (config.softhsmConf) process.env['SOFTHSM2_CONF'] = config.softhsmConf;
    const sink = new PassThrough();
    let said = '';
    sink.on('data', (c: Buffer) => (said += c.toString('utf8')));
    const keygen = new KeygenProcess({ modulePath: config.pkcs11Module, label: config.tokenLabel, pin: config.pin }, createLogger('info', sink), 400);
    const template = (ref: VersionRef) => aesCmkTemplate(objectId(ref, 'cmk'), objectLabel(ref, 'cmk'), true);
    try {
      await keygen.aes([template(newRef())]);
      const [hung] = keygenHelpers({ parent: process.pid });
      assert.ok(hung);
      process.kill(hung, 'SIGSTOP');
      const started = Date.now();
      await assert.rejects(keygen.aes([template(newRef())]), (e: unknown) => e instanceof HsmError && classify(e.ckrName) === 'token-gone');
      assert.ok(Date.now() - started >= 350, 'not before the stall limit');
      assert.match(said, /"message":"key generation process gave no answer; replacing it"/);
      await until('the hung helper to be gone', () => !keygenHelpers({ parent: process.pid }).includes(hung));
      await keygen.aes([template(newRef())]);
      assert.equal(keygenHelpers({ parent: process.pid }).length, 1);
    } finally {
      keygen.close();
    }
    await until('the helper to exit', () => keygenHelpers({ parent: process.pid }).length === 0);
  });

  it('when the service is killed -9, then its helper exits too', async () => {
    const server = await TestServer.start();
    try {
      const admin = server.token('p1', true);
      const created = await server.request('POST', '/v1.0/p1/kms/create-key', { headers: { 'X-Auth-Token': admin }, body: { key_alias: 'k' } });
      assert.equal(created.status, 200, created.text);
      assert.equal(keygenHelpers({ dataDir: server.dataDir }).length, 1);
      await server.kill('SIGKILL');
      await until('the orphaned helper to exit', () => keygenHelpers({ dataDir: server.dataDir }).length === 0);
    } finally {
      await server.stop();
    }
  });
});
