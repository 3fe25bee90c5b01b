/**
 * The token calls of one event-loop turn (src/hsm/turn-batch.ts) and a data key in one token visit
 * (Hsm.gcmEncryptRandom), in process on a real SoftHSM token; the module is wrapped in the
 * fault-injecting proxy to count calls and to break a session.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { isKmsError } from '../../src/errors/kms-error';
import type { VersionRef } from '../../src/hsm/hsm';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { FaultInjector } from '../helpers/fault-binding';
import { ROOT } from '../helpers/server';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime | undefined;
let faults: FaultInjector;
let key: VersionRef;

const tokenCalls = () => (['generateRandom', 'encrypt', 'decrypt'] as const).reduce((n, m) => n + (faults.attempts.get(m) ?? 0), 0);

/**
 * A runtime whose session pool is warm and which knows the key's handle: a version's first use in
 * a process searches the token on the binding's worker thread (hsm.ts), a turn of its own.
 */
async function open(batch: boolean): Promise<Runtime> {
  runtime?.close();
  faults = new FaultInjector(loadConfig(env).tokenLabel);
  runtime = openRuntime(loadConfig({ ...env, KMS_HSM_BATCH: batch ? 'true' : 'false' }), createLogger('warn', new PassThrough()), { wrapModule: faults.wrap });
  await runtime.hsm.gcmEncrypt(key, randomBytes(12), Buffer.alloc(0), Buffer.alloc(16));
  return runtime;
}

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-batch-'));
  // The draw counts below are those of a service using session copies (opt-in), as when written.
  env = { ...process.env, KMS_DATA_DIR: dataDir, KMS_POOL_SIZE: '2', KMS_SWEEP_INTERVAL_MS: '86400000', KMS_SESSION_KEY_COPIES: '4096' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'key', 'create', '--project', 'p1', '--alias', 'k', '--spec', 'AES_256'], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  key = { keyId: (JSON.parse(out) as { key_id: string }).key_id, version: 1 };
});

after(() => {
  runtime?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('token calls batched per event-loop turn (KMS_HSM_BATCH=true, the default)', () => {
  before(() => open(true).then(() => undefined));

  it('when data keys are asked for in one turn, then no call reaches the token in that turn, and each is a fresh key that the CMK opens', async () => {
    await runtime!.hsm.random(8); // logged in, the session pool warm
    const before = tokenCalls();
    const aad = Buffer.from('header-and-context');
    const ivs = [randomBytes(12), randomBytes(12), randomBytes(12)];
    const pending = ivs.map((iv) => runtime!.hsm.gcmEncryptRandom(key, 64, iv, aad));
    assert.equal(tokenCalls(), before, 'deferred to the check phase');
    const dks = await Promise.all(pending);
    assert.equal(tokenCalls() - before, 1 + 3, 'one C_GenerateRandom for the turn, one C_Encrypt per data key');
    assert.equal(new Set(dks.map((d) => d.plaintext.toString('hex'))).size, 3);
    for (const [i, dk] of dks.entries()) {
      assert.equal(dk.plaintext.length, 64);
      assert.equal(dk.sealed.length, 64 + 16);
      assert.deepEqual(await runtime!.hsm.gcmDecrypt(key, ivs[i]!, aad, dk.sealed), dk.plaintext);
    }
  });

  it('when many data keys are asked for in one turn, then one C_GenerateRandom serves them all, and each key is its own', async () => {
    const before = faults.attempts.get('generateRandom') ?? 0;
    const aad = Buffer.from('aad');
    const ivs = Array.from({ length: 8 }, () => randomBytes(12));
    const dks = await Promise.all(ivs.map((iv) => runtime!.hsm.gcmEncryptRandom(key, 64, iv, aad)));
    assert.equal((faults.attempts.get('generateRandom') ?? 0) - before, 1);
    assert.equal(new Set(dks.map((d) => d.plaintext.toString('hex'))).size, 8);
    for (const dk of dks) assert.ok(!dk.plaintext.equals(Buffer.alloc(64)), 'not the zeroed draw');
    for (const [i, dk] of dks.entries()) assert.deepEqual(await runtime!.hsm.gcmDecrypt(key, ivs[i]!, aad, dk.sealed), dk.plaintext);
    // One per turn: keys asked for in separate turns draw each time.
    const one = await runtime!.hsm.gcmEncryptRandom(key, 64, randomBytes(12), aad);
    const two = await runtime!.hsm.gcmEncryptRandom(key, 64, randomBytes(12), aad);
    assert.equal((faults.attempts.get('generateRandom') ?? 0) - before, 3);
    assert.notDeepEqual(one.plaintext, two.plaintext);
  });

  it('when one call of a turn is refused by the token, then only its caller gets the error', async () => {
    const iv = randomBytes(12);
    const aad = Buffer.from('aad');
    const sealed = await runtime!.hsm.gcmEncrypt(key, iv, aad, Buffer.from('secret'));
    const tampered = Buffer.from(sealed);
    tampered[0]! ^= 1;
    const [bad, good, random] = await Promise.allSettled([
      runtime!.hsm.gcmDecrypt(key, iv, aad, tampered),
      runtime!.hsm.gcmDecrypt(key, iv, aad, sealed),
      runtime!.hsm.random(16),
    ]);
    assert.equal(bad.status, 'rejected');
    // The façade's answer to a well-formed envelope the token refuses.
    assert.ok(bad.status === 'rejected' && isKmsError(bad.reason) && bad.reason.code === 'InvalidCiphertext');
    assert.deepEqual(good.status === 'fulfilled' && good.value, Buffer.from('secret'));
    assert.equal(random.status === 'fulfilled' && random.value.length, 16);
  });

  it('when the session breaks between the draw and the seal, then the data key is drawn again on a fresh session and still opens', async () => {
    const randomBefore = faults.attempts.get('generateRandom') ?? 0;
    faults.fail('encrypt', 'CKR_SESSION_HANDLE_INVALID');
    const iv = randomBytes(12);
    const aad = Buffer.from('aad');
    const dk = await runtime!.hsm.gcmEncryptRandom(key, 32, iv, aad);
    assert.equal((faults.attempts.get('generateRandom') ?? 0) - randomBefore, 2, 'the first draw was thrown away');
    assert.deepEqual(await runtime!.hsm.gcmDecrypt(key, iv, aad, dk.sealed), dk.plaintext);
  });
});

describe('token calls not batched (KMS_HSM_BATCH=false)', () => {
  before(() => open(false).then(() => undefined));

  it('when a data key is asked for, then its token calls are made in the same turn', async () => {
    await runtime!.hsm.random(8);
    const before = tokenCalls();
    const pending = runtime!.hsm.gcmEncryptRandom(key, 32, randomBytes(12), Buffer.from('aad'));
    assert.equal(tokenCalls() - before, 2);
    assert.equal((await pending).plaintext.length, 32);
  });
});
