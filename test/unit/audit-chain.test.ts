/** The audit writer and verifier without a server: chaining, resuming a file, per-worker files. */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { AuditLog, GENESIS, verifyAuditFile, type AuditEntry } from '../../src/log/audit';
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
  it('when records are appended by two successive writers, then the file verifies as one chain', () => {
    const file = path.join(dir, 'a.log');
    const a = new AuditLog(file, true, false);
    a.write(entry(1));
    a.write(entry(2));
    a.close();
    const b = new AuditLog(file, true, false);
    b.write(entry(3));
    b.close();
    assert.deepEqual(verifyAuditFile(file), { ok: true, records: 3 });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal((JSON.parse(lines[2]!) as { seq: number }).seq, 3);
    assert.notEqual((JSON.parse(lines[0]!) as { hash: string }).hash, GENESIS);
  });

  it('when a line gets an extra field or the last line is cut, then verification fails at that line', () => {
    const file = path.join(dir, 'a.log');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const copy = path.join(dir, 'b.log');
    writeFileSync(copy, `${lines[0]}\n${lines[1]!.replace('{', '{"x":1,')}\n${lines[2]}\n`);
    const r = verifyAuditFile(copy);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.line, 2);
    writeFileSync(copy, `${lines.join('\n')}\n`);
    appendFileSync(copy, lines[2]!.slice(0, 20));
    const cut = verifyAuditFile(copy);
    assert.equal(!cut.ok && cut.line, 4);
  });

  it('when the last line of an existing file is not a record, then the writer refuses to start', () => {
    const file = path.join(dir, 'c.log');
    writeFileSync(file, 'not json\n');
    assert.throws(() => new AuditLog(file, true, false), /unreadable/);
  });

  it('when the service runs as several workers, then each writes its own file', () => {
    const config = loadConfig({ KMS_DATA_DIR: dir, KMS_PIN: '1234' });
    assert.equal(auditFile(config, undefined), path.join(dir, 'audit.log'));
    assert.equal(auditFile(config, '3'), path.join(dir, 'audit-3.log'));
  });
});
