/** The audit writer and verifier without a server: chaining, resuming a file, group commit, failed writes and syncs, per-worker files. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { AuditFileTransport, AuditLog, fileIo, GENESIS, MAX_BATCH, verifyAuditFile, type AuditEntry } from '../../src/log/audit';
import { auditFile } from '../../src/transport';

const dir = mkdtempSync(path.join(tmpdir(), 'p11kms-audit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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

describe('audit chain', () => {
  it('when records are appended by two successive writers, then the file verifies as one chain', async () => {
    const file = path.join(dir, 'a.log');
    const a = new AuditLog(file, true, false);
    await a.write(entry(1));
    await a.write(entry(2));
    await a.close();
    const b = new AuditLog(file, true, false);
    await b.write(entry(3));
    await b.close();
    assert.deepEqual(await verifyAuditFile(file), { ok: true, records: 3, macs: 0 });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal((JSON.parse(lines[2]!) as { seq: number }).seq, 3);
    assert.notEqual((JSON.parse(lines[0]!) as { hash: string }).hash, GENESIS);
  });

  it('when a line gets an extra field or the last line is cut, then verification fails at that line', async () => {
    const file = path.join(dir, 'a.log');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const copy = path.join(dir, 'b.log');
    writeFileSync(copy, `${lines[0]}\n${lines[1]!.replace('{', '{"x":1,')}\n${lines[2]}\n`);
    const r = await verifyAuditFile(copy);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.line, 2);
    writeFileSync(copy, `${lines.join('\n')}\n`);
    appendFileSync(copy, lines[2]!.slice(0, 20));
    const cut = await verifyAuditFile(copy);
    assert.equal(!cut.ok && cut.line, 4);
  });

  it('when the last line of an existing file is not a record, then the writer refuses to start', () => {
    const file = path.join(dir, 'c.log');
    writeFileSync(file, 'not json\n');
    assert.throws(() => new AuditLog(file, true, false), /unreadable/);
  });

  it('when many records are written at once, then they share a few writes and fsyncs and verify as one chain in call order', async () => {
    const file = path.join(dir, 'many.log');
    const log = new AuditLog(file, true, true);
    const n = MAX_BATCH + 188;
    await Promise.all(Array.from({ length: n }, (_, i) => log.write(entry(i))));
    assert.deepEqual(log.stats, { records: n, batches: 2, macs: 0 }, 'one batch of MAX_BATCH, then the rest');
    // Records queued while a batch is in flight go into the next one.
    const first = log.write(entry(n));
    await new Promise((r) => setImmediate(r));
    await Promise.all([first, ...Array.from({ length: 50 }, (_, i) => log.write(entry(n + 1 + i)))]);
    assert.deepEqual(log.stats, { records: n + 51, batches: 4, macs: 0 });
    await log.close();
    assert.deepEqual(await verifyAuditFile(file), { ok: true, records: n + 51, macs: 0 });
    const ids = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { requestId: string }).requestId);
    assert.deepEqual(ids, Array.from({ length: n + 51 }, (_, i) => `r${i}`));
    await assert.rejects(log.write(entry(0)), /closed/);
  });

  it('when a batch fails half-written, then all its records fail, later writes fail until the disk recovers, and the file still verifies', async () => {
    const file = path.join(dir, 'fail.log');
    const log = new AuditLog(file, true, true);
    await log.write(entry(1));
    assert.equal(log.healthy, true);
    // RLIMIT_FSIZE of this process: room for a third of a record, so the next write is cut short
    // (a partial line) and then fails with EFBIG. Node ignores SIGXFSZ.
    const size = statSync(file).size;
    execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${size + 100}:`]);
    try {
      const batch = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.write(entry(100 + i))));
      assert.ok(batch.every((r) => r.status === 'rejected'), 'every record of the failed batch fails');
      assert.equal(log.healthy, false);
      await assert.rejects(log.write(entry(200)));
      assert.equal(log.healthy, false);
    } finally {
      execFileSync('prlimit', ['--pid', String(process.pid), '--fsize=unlimited:']);
    }
    await log.write(entry(2));
    await log.write(entry(3));
    assert.equal(log.healthy, true);
    await log.close();
    assert.deepEqual(await verifyAuditFile(file), { ok: true, records: 3, macs: 0 });
    const ids = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { requestId: string }).requestId);
    assert.deepEqual(ids, ['r1', 'r2', 'r3']);
  });

  it('when a batch is written but its fdatasync fails, then its records fail, its lines are cut off and the chain goes on from the last durable record', async () => {
    const file = path.join(dir, 'sync-fail.log');
    let failNext = false;
    const io = {
      ...fileIo,
      fdatasync: (fd: number) => {
        if (!failNext) return fileIo.fdatasync(fd);
        failNext = false;
        return Promise.reject(new Error('EIO: i/o error, fdatasync'));
      },
    };
    const t = new AuditFileTransport(file, true, io);
    await t.append(entry(1));
    const size = statSync(file).size;
    failNext = true;
    const batch = await Promise.allSettled([t.append(entry(2)), t.append(entry(3))]);
    assert.ok(batch.every((r) => r.status === 'rejected'), 'every record of the batch fails');
    assert.ok(statSync(file).size > size, 'its lines were written before the sync failed');
    assert.equal(t.healthy, false);
    await t.append(entry(4));
    assert.equal(t.healthy, true);
    await t.close();
    assert.deepEqual(await verifyAuditFile(file), { ok: true, records: 2, macs: 0 });
    const ids = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { requestId: string }).requestId);
    assert.deepEqual(ids, ['r1', 'r4']);
  });

  it('when the service runs as several workers, then each writes its own file', () => {
    const config = loadConfig({ KMS_DATA_DIR: dir, KMS_PIN: '1234' });
    assert.equal(auditFile(config, undefined), path.join(dir, 'audit.log'));
    assert.equal(auditFile(config, '3'), path.join(dir, 'audit-3.log'));
  });
});
