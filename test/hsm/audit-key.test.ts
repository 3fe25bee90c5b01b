/**
 * The audit writer with the token's HMAC key (src/hsm/audit-key.ts), in process on a real SoftHSM
 * token: one MAC per batch, MACs checked by the token, a batch the token can't MAC written without
 * one and covered by the next, a MAC made by a second audit key (two processes that raced to make
 * it) accepted, the head.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { AUDIT_KEY_ID, AUDIT_KEY_LABEL, AuditKey } from '../../src/hsm/audit-key';
import { C } from '../../src/hsm/binding';
import { auditHmacTemplate } from '../../src/hsm/templates';
import { AuditLog, macInput, readHead, verifyAuditFile, type AuditEntry } from '../../src/log/audit';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import { FaultInjector } from '../helpers/fault-binding';
import { inlinePool } from '../helpers/inline-pool';
import { ROOT } from '../helpers/server';

let dataDir: string;
let runtime: Runtime;
let faults: FaultInjector;
let logs = '';

const entry = (n: number): AuditEntry => ({
  time: new Date(0).toISOString(),
  project: 'p1',
  tokenId: '0123456789abcdef',
  operation: 'huawei:describe-key',
  keyId: null,
  keyVersion: null,
  source: '127.0.0.1',
  requestId: `r${n}`,
  status: 200,
  outcome: 'success',
  errorCode: null,
});

const open = (name: string): AuditLog => {
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  return new AuditLog(path.join(dataDir, name), true, false, { key: runtime.auditKey, log: createLogger('info', sink) });
};

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-audit-key-'));
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const config = loadConfig(env);
  faults = new FaultInjector(config.tokenLabel);
  runtime = openRuntime(config, createLogger('warn', new PassThrough()), { wrapModule: faults.wrap, keygenInProcess: true });
});
after(async () => {
  await runtime?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('audit records MACed by the token', () => {
  it('when many records are written at once, then each batch gets one MAC from the token, and the file verifies with it', async () => {
    const log = open('many.log');
    const signsBefore = faults.count('sign');
    await Promise.all(Array.from({ length: 700 }, (_, i) => log.write(entry(i))));
    await log.write(entry(700));
    await log.close();
    const { records, batches, macs } = log.stats;
    assert.equal(records, 701);
    assert.ok(batches >= 3 && batches < 10, `${batches} batches`);
    assert.equal(macs, batches, 'one MAC per batch');
    assert.equal(faults.count('sign') - signsBefore, batches, 'one token call per batch');
    const lines = readFileSync(path.join(dataDir, 'many.log'), 'utf8').trim().split('\n');
    assert.equal(lines.filter((l) => l.includes('"mac":')).length, batches);
    assert.ok(lines[lines.length - 1]!.includes('"mac":'), 'a batch ends with its MAC');
    assert.deepEqual(await verifyAuditFile(path.join(dataDir, 'many.log'), { key: runtime.auditKey }), { ok: true, records: 701, macs: batches });
  });

  it('when a MAC is changed, then verification fails at the first record of its batch', async () => {
    const file = path.join(dataDir, 'many.log');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const at = lines.findIndex((l) => l.includes('"mac":'));
    const batchStart = 1;
    const copy = path.join(dataDir, 'changed.log');
    lines[at] = lines[at]!.replace(/"mac":"(.)/, (_, c: string) => `"mac":"${c === '0' ? '1' : '0'}`);
    writeFileSync(copy, `${lines.join('\n')}\n`);
    const r = await verifyAuditFile(copy, { key: runtime.auditKey });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.line, batchStart);
    assert.match(!r.ok ? r.reason : '', new RegExp(`the MAC at line ${at + 1} is not the token's`));
  });

  it('when the token cannot make a MAC, then the batch is written without one (reported once), verification says so, and the next MAC covers it', async () => {
    const file = path.join(dataDir, 'outage.log');
    const log = open('outage.log');
    await log.write(entry(1));
    faults.fail('sign', 'CKR_FUNCTION_FAILED', 2);
    await log.write(entry(2));
    await log.write(entry(3));
    assert.equal(log.stats.macs, 1);
    assert.equal(logs.split('\n').filter((l) => l.includes('audit batch written without a MAC')).length, 1, 'reported once per outage');
    const r = await verifyAuditFile(file, { key: runtime.auditKey });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.line, 2);
    assert.match(!r.ok ? r.reason : '', /no MAC after line 1: the last 2 records are not vouched for/);
    await log.write(entry(4));
    await log.close();
    assert.match(logs, /audit records are MACed by the token again/);
    assert.deepEqual(await verifyAuditFile(file, { key: runtime.auditKey }), { ok: true, records: 4, macs: 2 });
    assert.ok(!logs.includes(readFileSync(path.join(dataDir, 'token.pin'), 'utf8').trim()), 'no PIN in the warnings');
  });

  it('when two processes raced and the token holds two audit keys, then a MAC made with either verifies, and one made with no audit key does not', async () => {
    const file = path.join(dataDir, 'many.log');
    const last = readFileSync(file, 'utf8').trim().split('\n').pop()!;
    const { seq, hash } = JSON.parse(last) as { seq: number; hash: string };
    const data = macInput(seq, hash);
    const second = await inlinePool(runtime).use((s) => {
      const m = inlinePool(runtime).module;
      const key = m.generateKey(s, { kind: 'generic-secret-key-gen' }, auditHmacTemplate(AUDIT_KEY_ID, AUDIT_KEY_LABEL));
      return m.sign(s, { kind: 'sha256-hmac' }, key, data, 32);
    });
    const stranger = await inlinePool(runtime).use((s) => {
      const m = inlinePool(runtime).module;
      const key = m.generateKey(s, { kind: 'generic-secret-key-gen' }, auditHmacTemplate(Buffer.from('someone-else'), 'someone-else'));
      return m.sign(s, { kind: 'sha256-hmac' }, key, data, 32);
    });
    const found = await inlinePool(runtime).use((s) => inlinePool(runtime).module.findObjects(s, [{ type: C.CKA_ID, value: AUDIT_KEY_ID }]));
    assert.equal(found.length, 2);
    const fresh = new AuditKey(inlinePool(runtime));
    assert.equal(await fresh.verify(data, second), true);
    assert.equal(await fresh.verify(data, await fresh.mac(data)), true);
    assert.equal(await fresh.verify(data, stranger), false);
  });

  it('when the head is read, then it is the last MACed record, checked by the token', async () => {
    const file = path.join(dataDir, 'outage.log');
    const head = await readHead(file, runtime.auditKey);
    const last = JSON.parse(readFileSync(file, 'utf8').trim().split('\n').pop()!) as { seq: number; hash: string; mac: string };
    assert.deepEqual(head, { file: 'outage.log', seq: last.seq, hash: last.hash, mac: last.mac });
    // A file of several 64 KiB chunks, read from the end.
    assert.equal((await readHead(path.join(dataDir, 'many.log'), runtime.auditKey))?.seq, 701);
    // A writer that reopens the file goes on from its last (MAC'd) record.
    const again = open('many.log');
    await again.write(entry(701));
    await again.close();
    const v = await verifyAuditFile(path.join(dataDir, 'many.log'), { key: runtime.auditKey });
    assert.equal(v.ok && v.records, 702);
    const forged = path.join(dataDir, 'forged.log');
    writeFileSync(forged, readFileSync(file, 'utf8').replace(last.mac, last.mac.replace(/^./, (c) => (c === '0' ? '1' : '0'))));
    await assert.rejects(readHead(forged, runtime.auditKey), /is not the token's/);
  });
});
