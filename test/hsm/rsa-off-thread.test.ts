/**
 * RSA private-key operations off the event loop (Pkcs11Module.signOffThread, Hsm.rsaSign), on a
 * real SoftHSM token: the loop turns while they run, concurrent results are right, and the module
 * is never re-initialised or finalized while one of them is still inside it.
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
import type { SignMechanism } from '../../src/hsm';
import type { VersionRef } from '../../src/hsm/hsm';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { turnsDuring } from '../helpers/event-loop';
import { FaultInjector } from '../helpers/fault-binding';
import { inlinePool } from '../helpers/inline-pool';
import { ROOT } from '../helpers/server';

const PSS: SignMechanism = { kind: 'rsa-pss', hash: 'sha256' };
let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime | undefined;
let faults: FaultInjector;
let logs = '';
let pair: VersionRef;

function open(extraEnv: NodeJS.ProcessEnv = {}): Runtime {
  runtime?.close();
  faults = new FaultInjector(loadConfig(env).tokenLabel);
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  runtime = openRuntime(loadConfig({ ...env, ...extraEnv }), createLogger('info', sink), { wrapModule: faults.wrap });
  return runtime;
}

/** Starts `n` signatures of distinct digests. */
function signs(rt: Runtime, n: number): Array<Promise<{ digest: Buffer; sig: Buffer }>> {
  return Array.from({ length: n }, () => {
    const digest = randomBytes(32);
    return rt.hsm.rsaSign(pair, PSS, digest).then((sig) => ({ digest, sig }));
  });
}

/** Checks each signature against the public key. */
async function verify(rt: Runtime, made: Array<Promise<{ digest: Buffer; sig: Buffer }>>): Promise<void> {
  for (const { digest, sig } of await Promise.all(made)) {
    assert.equal(sig.length, 256);
    assert.equal(await rt.hsm.rsaVerify(pair, PSS, digest, sig), true, 'a signature that does not verify');
  }
}

before(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-rsa-'));
  env = { ...process.env, KMS_DATA_DIR: dataDir };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  pair = { keyId: randomUUID(), version: 1 };
  await open().hsm.createRsaVersion(pair);
});
after(() => {
  runtime?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('RSA private-key operations off the event loop', () => {
  it('when 16 signatures and 16 decryptions run at once, then the event loop keeps turning and every result is right', async () => {
    const rt = open();
    const secrets = Array.from({ length: 16 }, () => randomBytes(32));
    const turns = await turnsDuring(() =>
      Promise.all([
        verify(rt, signs(rt, 16)),
        ...secrets.map(async (s) => {
          const wrapped = await rt.hsm.rsaEncrypt(pair, s);
          assert.ok((await rt.hsm.rsaDecrypt(pair, wrapped)).equals(s), 'a decryption gave another plaintext');
        }),
      ]),
    );
    // On the event loop, 32 private-key operations would leave it a handful of turns.
    assert.ok(turns > 100, `only ${turns} event-loop turns during 32 RSA private-key operations`);
    assert.equal(faults.calls.get('signOffThread'), 16);
    assert.equal(faults.calls.get('decryptOffThread'), 16);
    assert.equal(faults.attempts.get('sign') ?? 0, 0, 'no signature on the event loop');
    assert.equal(inlinePool(rt).module.callsOffThread, 0);
  });

  it('when a token fault strikes while signatures are inside the module, then it is re-initialised only after they left, and they succeed', async () => {
    const rt = open();
    await verify(rt, signs(rt, 1)); // the key's handle is known: the next signatures go straight in
    const inFlight = signs(rt, 2);
    assert.equal(inlinePool(rt).module.callsOffThread, 2, 'the signatures were expected inside the module by now');
    const inside: number[] = [];
    faults.watch('reinitialize', () => inside.push(inlinePool(rt).module.callsOffThread));
    faults.fail('generateRandom', 'CKR_DEVICE_ERROR');
    const random = await rt.hsm.random(8); // faults, recovers (after the signatures), retried
    assert.equal(random.length, 8);
    await verify(rt, inFlight);
    assert.deepEqual(inside, [0], 'calls inside the module when it was re-initialised');
    assert.equal(inlinePool(rt).stats.recoveries, 1);
    assert.equal(faults.calls.get('reinitialize'), 1);
    assert.equal(inlinePool(rt).status.up, true);
    await verify(rt, signs(rt, 4)); // and the re-initialised module signs
  });

  it('when the runtime closes while a signature is inside the module, then the signature is delivered and the module finalized after it', async () => {
    const rt = open();
    await verify(rt, signs(rt, 1));
    const inFlight = signs(rt, 2);
    const mod = inlinePool(rt).module;
    const inside: number[] = [];
    faults.watch('finalize', () => inside.push(mod.callsOffThread));
    rt.close();
    runtime = undefined;
    for (const { sig } of await Promise.all(inFlight)) assert.equal(sig.length, 256);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(inside, [0], 'calls inside the module when it was finalized');
  });

  it('when KMS_RSA_OFF_THREAD=false, then signatures and decryptions are made on the event loop, and are right', async () => {
    const rt = open({ KMS_RSA_OFF_THREAD: 'false' });
    const secret = randomBytes(32);
    await verify(rt, signs(rt, 1)); // the key's handle is known: its search ran on the worker thread
    const turns = await turnsDuring(() => verify(rt, signs(rt, 8)));
    assert.ok((await rt.hsm.rsaDecrypt(pair, await rt.hsm.rsaEncrypt(pair, secret))).equals(secret));
    assert.equal(faults.calls.get('sign'), 9);
    assert.equal(faults.calls.get('decrypt'), 1);
    assert.equal(faults.attempts.get('signOffThread') ?? 0, 0);
    assert.equal(faults.attempts.get('decryptOffThread') ?? 0, 0);
    assert.ok(turns < 100, `${turns} turns: the signatures were expected to hold the event loop`);
  });

  it('when it all ran, then no log line carries a key, a signature input or the PIN', () => {
    assert.doesNotMatch(logs, new RegExp(loadConfig(env).pin));
  });
});
