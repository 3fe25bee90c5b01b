/**
 * Data keys sealed ahead of demand (src/kms/datakey-stock.ts, Hsm.gcmEncryptRandomMany), on a real
 * SoftHSM token with the key-generation helper, so that the binding's threads are allowed: only
 * busy combinations get a shelf, every key on it was sealed by the token and opens to its
 * plaintext, each is handed out once, a quiet shelf is wiped, a key that may not be used gets
 * nothing from a shelf, and a token fault during a refill costs no request.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { KmsError } from '../../src/errors/kms-error';
import { Crypto } from '../../src/kms/crypto';
import { DataKeyStock } from '../../src/kms/datakey-stock';
import { contextFromObject, NO_CONTEXT } from '../../src/kms/envelope/context';
import { randomIv } from '../../src/kms/envelope/iv';
import { createLogger } from '../../src/log/logger';
import { openRuntime, openStore, type Runtime } from '../../src/runtime';
import type { KeyRecord, MetadataStore } from '../../src/store/store';
import { FaultInjector } from '../helpers/fault-binding';
import { ManualClock } from '../helpers/manual-clock';
import { ROOT } from '../helpers/server';
import { until } from '../helpers/wait';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let runtime: Runtime;
let store: MetadataStore;
let faults: FaultInjector;

const WINDOW_MS = 150;
/** The key's own project opens what it sealed. */
const OWNER = { projectId: 'p1' } as const;
const HOT = 6;
const SIZE = 8;

/**
 * A stock of its own, with a short window and a low threshold, and a Crypto that uses it. Its
 * windows end only when the test moves `clock` on: on a loaded machine a wall-clock window can
 * end between any two steps of a test (a shelf dropped while the token still fills it).
 */
function stocked(): { stock: DataKeyStock; crypto: Crypto; made: Buffer[]; clock: ManualClock; refills: () => number } {
  const made: Buffer[] = [];
  let refills = 0;
  // Every plaintext the token sealed ahead, to check later that the wiped ones are zeros.
  const hsm = Object.create(runtime.hsm) as typeof runtime.hsm;
  hsm.gcmEncryptRandomMany = async (...args) => {
    refills++;
    const out = await runtime.hsm.gcmEncryptRandomMany(...args);
    made.push(...out.map((k) => k.plaintext));
    return out;
  };
  const clock = new ManualClock();
  const stock = new DataKeyStock(hsm, { size: SIZE, windowMs: WINDOW_MS, hotPerWindow: HOT, clock });
  return { stock, crypto: new Crypto(runtime.hsm, store, stock), made, clock, refills: () => refills };
}

async function newKey(alias: string): Promise<KeyRecord> {
  return runtime.services.keys.create({ projectId: 'p1', alias, description: '', spec: 'AES_256', usage: 'ENCRYPT_DECRYPT', convergent: false });
}

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-stock-'));
  env = { ...process.env, KMS_DATA_DIR: dataDir, KMS_SWEEP_INTERVAL_MS: '86400000', KMS_DATAKEY_STOCK: '0' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const config = loadConfig(env);
  faults = new FaultInjector(config.tokenLabel);
  runtime = openRuntime(config, createLogger('warn', new PassThrough()), { wrapModule: faults.wrap });
  store = openStore(config);
});

after(async () => {
  await runtime?.close();
  await store?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('data keys sealed ahead (KMS_DATAKEY_STOCK)', () => {
  it('when a combination is asked for often, then keys sealed ahead by the token are handed out, each once, and each opens to its plaintext', async () => {
    const key = await newKey('hot');
    const { stock, crypto } = stocked();
    const first = [];
    for (let i = 0; i < HOT; i++) first.push(await crypto.sealRandom(key, 32, NO_CONTEXT));
    await until('a shelf was filled', () => stock.stats().ready === SIZE);
    const sealsBefore = faults.attempts.get('encrypt') ?? 0;
    const dks = [...first];
    for (let i = 0; i < SIZE / 2; i++) dks.push(await crypto.sealRandom(key, 32, NO_CONTEXT));
    assert.equal(faults.attempts.get('encrypt') ?? 0, sealsBefore, 'no token call on the event loop for a stocked key');
    assert.equal(stock.stats().taken, SIZE / 2);
    assert.equal(new Set(dks.map((d) => d.plaintext.toString('hex'))).size, dks.length, 'every key is a fresh one');
    assert.equal(new Set(dks.map((d) => d.ciphertext.toString('hex'))).size, dks.length);
    for (const dk of dks) {
      const opened = await crypto.open(key, dk.ciphertext, NO_CONTEXT, OWNER);
      assert.deepEqual(opened.plaintext, dk.plaintext);
      assert.equal(opened.keyVersion, 1);
    }
    stock.clear();
  });

  it('when the context differs, then a key from another context\'s shelf is never handed out', async () => {
    const key = await newKey('contexts');
    const { stock, crypto } = stocked();
    const a = contextFromObject({ app: 'a' });
    const b = contextFromObject({ app: 'b' });
    for (let i = 0; i < HOT; i++) await crypto.sealRandom(key, 32, a);
    await until('a shelf was filled', () => stock.stats().ready === SIZE);
    const other = await crypto.sealRandom(key, 32, b);
    assert.equal(stock.stats().taken, 0);
    assert.deepEqual((await crypto.open(key, other.ciphertext, b, OWNER)).plaintext, other.plaintext);
    const same = await crypto.sealRandom(key, 32, a);
    assert.equal(stock.stats().taken, 1);
    await assert.rejects(crypto.open(key, same.ciphertext, b, OWNER), (e: unknown) => e instanceof KmsError);
    assert.deepEqual((await crypto.open(key, same.ciphertext, a, OWNER)).plaintext, same.plaintext);
    stock.clear();
  });

  it('when a combination is asked for rarely, then nothing is sealed ahead', async () => {
    const key = await newKey('cold');
    const { stock, crypto, clock, refills } = stocked();
    for (let i = 0; i < HOT - 1; i++) await crypto.sealRandom(key, 32, NO_CONTEXT);
    clock.advance(WINDOW_MS * 3);
    await crypto.sealRandom(key, 32, NO_CONTEXT);
    assert.equal(refills(), 0);
    assert.equal(stock.stats().sealed, 0);
    stock.clear();
  });

  it('when a busy combination goes quiet for a window, then its shelf is dropped and every plaintext on it zeroed', async () => {
    const key = await newKey('quiet');
    const { stock, crypto, made, clock } = stocked();
    const handedOut = new Set<string>();
    for (let i = 0; i < HOT; i++) handedOut.add((await crypto.sealRandom(key, 32, NO_CONTEXT)).plaintext.toString('hex'));
    await until('a shelf was filled', () => stock.stats().ready === SIZE);
    const taken = await crypto.sealRandom(key, 32, NO_CONTEXT);
    clock.advance(WINDOW_MS);
    assert.equal(stock.stats().shelves, 1, 'asked for in the window that ended');
    clock.advance(WINDOW_MS);
    assert.equal(stock.stats().shelves, 0, 'a whole window without a request');
    assert.equal(stock.stats().wiped, SIZE - 1);
    const zero = Buffer.alloc(32);
    assert.equal(made.length, SIZE);
    // The one handed out is the caller's own buffer (its fill(0) wipes the only copy); the rest are zeros.
    assert.ok(made.includes(taken.plaintext));
    assert.ok(!taken.plaintext.equals(zero));
    assert.equal(made.filter((p) => p.equals(zero)).length, SIZE - 1);
    assert.ok(!handedOut.has(taken.plaintext.toString('hex')));
  });

  it('when a busy combination slows down but doesn\'t stop, then keys older than a window are wiped all the same', async () => {
    const key = await newKey('slow');
    const { stock, crypto, made, clock, refills } = stocked();
    // The shelf's windows start with its first request; its keys are sealed a little later.
    await crypto.sealRandom(key, 32, NO_CONTEXT);
    clock.advance(WINDOW_MS / 15);
    for (let i = 1; i < HOT; i++) await crypto.sealRandom(key, 32, NO_CONTEXT);
    await until('a shelf was filled', () => stock.stats().ready === SIZE);
    // One request every two-thirds of a window: too few for a refill, enough to keep the shelf.
    const handedOut: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance((WINDOW_MS * 2) / 3);
      const dk = await crypto.sealRandom(key, 32, NO_CONTEXT);
      if (made.includes(dk.plaintext)) handedOut.push(dk.plaintext);
    }
    assert.equal(stock.stats().shelves, 1, 'the shelf is still there');
    assert.equal(stock.stats().ready, 0, 'but holds no key sealed long ago');
    assert.equal(refills(), 1, 'and was not refilled');
    assert.equal(stock.stats().sealed, SIZE);
    const zero = Buffer.alloc(32);
    assert.equal(made.filter((p) => p.equals(zero)).length, SIZE - handedOut.length);
    stock.clear();
  });

  it('when the key is disabled or rotated, then no key sealed for its old state is handed out', async () => {
    let key = await newKey('lifecycle');
    const { stock, crypto } = stocked();
    for (let i = 0; i < HOT; i++) await crypto.sealRandom(key, 32, NO_CONTEXT);
    await until('a shelf was filled', () => stock.stats().ready === SIZE);
    key = await runtime.services.keys.disable(key);
    await assert.rejects(crypto.sealRandom(key, 32, NO_CONTEXT), (e: unknown) => e instanceof KmsError && e.code === 'KeyDisabled');
    key = await runtime.services.keys.enable(key);
    key = await runtime.services.keys.rotate(key);
    const after = await crypto.sealRandom(key, 32, NO_CONTEXT);
    assert.equal(after.keyVersion, 2);
    assert.equal(stock.stats().taken, 0);
    assert.deepEqual((await crypto.open(key, after.ciphertext, NO_CONTEXT, OWNER)).plaintext, after.plaintext);
    stock.clear();
  });

  it('when the token fails during a refill, then the pool recovers, requests are answered meanwhile, and the shelf fills later', async () => {
    const key = await newKey('fault');
    const { stock, crypto } = stocked();
    faults.fail('sealRandomOffThread', 'CKR_DEVICE_ERROR', 3);
    const dks = [];
    for (let i = 0; i < HOT * 3; i++) dks.push(await crypto.sealRandom(key, 32, NO_CONTEXT));
    await until('a shelf was filled', () => stock.stats().ready > 0);
    assert.equal(faults.injected.get('sealRandomOffThread'), 3);
    for (const dk of dks) assert.deepEqual((await crypto.open(key, dk.ciphertext, NO_CONTEXT, OWNER)).plaintext, dk.plaintext);
    stock.clear();
  });

  it('when keys are sealed ahead, then the thread that seals them runs in the SCHED_IDLE class, and no other thread does', async () => {
    const key = await newKey('idle-class');
    assert.equal((await runtime.hsm.gcmEncryptRandomMany({ keyId: key.keyId, version: key.currentVersion }, 32, [randomIv()], Buffer.alloc(0))).length, 1);
    const idle = threadPolicies().filter((p) => p.policy === SCHED_IDLE);
    assert.equal(idle.length, 1, JSON.stringify(threadPolicies()));
    assert.notEqual(idle[0]!.tid, process.pid, 'not the event loop');
  });
});

const SCHED_IDLE = 5;

/** Each thread of this process with its scheduling policy (field 41 of /proc/<pid>/task/<tid>/stat). */
function threadPolicies(): { tid: number; policy: number }[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // After "pid (comm) " the fields start at the 3rd.
    return { tid: Number(tid), policy: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]) };
  });
}
