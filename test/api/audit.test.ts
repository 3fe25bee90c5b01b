/** The audit trail: one chained record per key operation, group commit, `audit verify`, fail-closed writes, no secrets. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { fixture, type Fixture } from '../helpers/fixture';
import { ROOT, TestServer } from '../helpers/server';
import { until } from '../helpers/wait';

let f: Fixture;
let auditPath = '';

const hw = (token: string, action: string, body: unknown, requestId: string) =>
  f.server.request('POST', `/v1.0/p1/kms/${action}`, { headers: { 'X-Auth-Token': token, 'X-Request-Id': requestId }, body });

interface Rec {
  seq: number;
  time: string;
  pid: number;
  project: string;
  tokenId: string | null;
  operation: string;
  keyId: string | null;
  keyVersion: number | null;
  source: string;
  requestId: string;
  status: number;
  outcome: string;
  errorCode: string | null;
  count?: number;
  hash: string;
}

/** The records on disk: complete lines only (the server may be appending one as the file is read). */
const records = (): Rec[] => {
  const text = readFileSync(auditPath, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec);
};
const byRequest = (id: string): Rec[] => records().filter((r) => r.requestId === id);
const tokenId = (token: string): string => token.split('_')[1]!;

/** `p11kms audit verify <file>` with the fixture's token (MACs): exit code and stdout. */
function verify(file: string, env: NodeJS.ProcessEnv = f.server.env): { code: number; out: string } {
  try {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'audit', 'verify', file], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, out: err.stdout };
  }
}

before(async () => {
  f = await fixture();
  auditPath = path.join(f.server.dataDir, 'audit.log');
});
after(async () => {
  await f?.server.stop();
});

describe('audit trail', () => {
  it('when a data key is created, then one success record names project, token id, operation, key and version', async () => {
    const r = await hw(f.user, 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' }, 'audit-ok-1');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-request-id'), 'audit-ok-1');
    f.secrets.addHex(r.body.plain_text);
    const [rec, ...more] = byRequest('audit-ok-1');
    assert.ok(rec);
    assert.equal(more.length, 0);
    assert.equal(rec.project, 'p1');
    assert.equal(rec.tokenId, tokenId(f.user));
    assert.equal(rec.operation, 'huawei:create-datakey');
    assert.equal(rec.keyId, f.aes.key_id);
    assert.equal(rec.keyVersion, 1);
    assert.equal(rec.outcome, 'success');
    assert.equal(rec.status, 200);
    assert.equal(rec.errorCode, null);
    assert.match(rec.source, /127\.0\.0\.1/);
    assert.ok(!Number.isNaN(Date.parse(rec.time)));
  });

  it('when operations fail, then failure records carry the vendor error code', async () => {
    const bad = await hw(f.user, 'decrypt-datakey', { key_id: f.aes.key_id, cipher_text: 'AB'.repeat(80), datakey_cipher_length: '32' }, 'audit-fail-1');
    assert.equal(bad.status, 400);
    const [rec] = byRequest('audit-fail-1');
    assert.equal(rec?.outcome, 'failure');
    assert.equal(rec?.errorCode, bad.body.error.error_code);
    assert.equal(rec?.keyId, f.aes.key_id);

    const foreign = await f.server.request('POST', '/v1.0/p2/kms/encrypt-data', {
      headers: { 'X-Auth-Token': f.other, 'X-Request-Id': 'audit-fail-2' },
      body: { key_id: f.aes.key_id, plain_text: 'audit foreign plaintext' },
    });
    f.secrets.add('audit foreign plaintext');
    assert.equal(foreign.status, 404);
    const [rec2] = byRequest('audit-fail-2');
    assert.equal(rec2?.project, 'p2');
    assert.equal(rec2?.errorCode, 'KMS.0207');
    assert.equal(rec2?.keyId, null, 'a key of another project is not named in the caller\'s record');

    const anon = await f.server.request('GET', `/kms/v1/keys/${f.aes.keyTag}`, { headers: { 'x-ncp-ocapi-token': 'nope', 'X-Request-Id': 'audit-fail-3' } });
    assert.equal(anon.status, 401);
    // Failed authentications are counted per address and written as one record per interval
    // (src/api/middleware/failed-auth.ts, test/api/auth-flood.test.ts), not one per request.
    assert.deepEqual(byRequest('audit-fail-3'), []);
    await until('the failed authentication is counted in the trail', () => records().some((r) => r.operation === 'ncp:failed-authentication'));
    const counted = records().filter((r) => r.operation === 'ncp:failed-authentication');
    assert.deepEqual(
      counted.map((r) => [r.tokenId, r.project, r.count, r.errorCode]),
      [[null, '', 1, 'Unauthenticated']],
    );

    const scope = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/disable`, { headers: { 'x-ncp-ocapi-token': f.user, 'X-Request-Id': 'audit-fail-4' }, body: {} });
    assert.equal(scope.status, 403);
    assert.equal(byRequest('audit-fail-4')[0]?.operation, 'ncp:disable-key');
  });

  it('when NCP encrypts after a rotation, then the record names the version used', async () => {
    const rot = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/rotate`, { headers: { 'x-ncp-ocapi-token': f.admin }, body: {} });
    assert.equal(rot.status, 200, rot.text);
    const plaintext = Buffer.from('audit ncp plaintext 123');
    f.secrets.add(plaintext, plaintext.toString('base64'));
    const r = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/encrypt`, {
      headers: { 'x-ncp-ocapi-token': f.user, 'X-Request-Id': 'audit-ncp-1' },
      body: { plaintext: plaintext.toString('base64') },
    });
    assert.equal(r.status, 200, r.text);
    const [rec] = byRequest('audit-ncp-1');
    assert.equal(rec?.operation, 'ncp:encrypt');
    assert.equal(rec?.keyId, f.aes.key_id);
    assert.equal(rec?.keyVersion, 2);
  });

  it('when many requests arrive at once, then each is answered after its own record and the records form one chain', async () => {
    const n = 200;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) => hw(f.user, 'create-datakey', { key_id: f.aes.key_id, datakey_length: '256' }, `audit-many-${i}`)),
    );
    for (const r of replies) {
      assert.equal(r.status, 200, r.text);
      f.secrets.addHex(r.body.plain_text);
    }
    const all = records();
    for (let i = 0; i < n; i++) {
      const mine = all.filter((r) => r.requestId === `audit-many-${i}`);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.outcome, 'success');
    }
    assert.ok(all.every((r, i) => r.seq === i + 1));
    const { code, out } = verify(auditPath);
    assert.equal(code, 0, out);
  });

  it('when the file is verified, then OK with the record count', () => {
    const n = records().length;
    const { code, out } = verify(auditPath);
    assert.equal(code, 0, out);
    assert.match(out.trim(), new RegExp(`^OK audit\\.log: ${n} records, \\d+ MACs$`));
    assert.ok(records().every((r, i) => r.seq === i + 1));
  });

  it('when a line is edited, removed or reordered, then audit verify names the first bad line and exits 1', () => {
    const lines = readFileSync(auditPath, 'utf8').trim().split('\n');
    assert.ok(lines.length >= 5);
    const copy = path.join(f.server.dataDir, 'audit-copy.log');

    const edited = [...lines];
    edited[2] = edited[2]!.replace('"outcome":"failure"', '"outcome":"success"').replace('"status":', '"status":2');
    writeFileSync(copy, `${edited.join('\n')}\n`);
    let v = verify(copy);
    assert.equal(v.code, 1);
    assert.match(v.out, /line 3\b/);

    const removed = lines.filter((_, i) => i !== 1);
    writeFileSync(copy, `${removed.join('\n')}\n`);
    v = verify(copy);
    assert.equal(v.code, 1);
    assert.match(v.out, /line 2\b/);

    const lastGone = lines.slice(1);
    writeFileSync(copy, `${lastGone.join('\n')}\n`);
    assert.match(verify(copy).out, /line 1\b/);

    // A re-hashed forgery of one record still breaks the chain at the next line.
    const forged = [...lines];
    const rec = JSON.parse(forged[3]!) as Record<string, unknown>;
    rec['project'] = 'p9';
    forged[3] = JSON.stringify(rec);
    writeFileSync(copy, `${forged.join('\n')}\n`);
    assert.match(verify(copy).out, /line 4\b/);
  });

  it('when the audit log and the app log of this run are searched, then no plaintext, data key, token or PIN is in either', () => {
    const audit = readFileSync(auditPath, 'utf8');
    f.secrets.assertNotLogged(f.server, audit);
  });
});

/**
 * An audit log whose writes fail (ENOSPC): a link to /dev/full in a directory of this test's own,
 * so that the files made beside it (the CLI's audit-cli.log) are private temp files, not a path in
 * /dev that every suite on the machine would share.
 */
function fullDisk(): { readonly file: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'p11kms-full-'));
  const file = path.join(dir, 'audit.log');
  symlinkSync('/dev/full', file);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('audit write failures', () => {
  it('when the audit record cannot be written, then the operation fails and nothing is returned', async () => {
    const full = fullDisk();
    const s = await TestServer.start({ KMS_AUDIT_LOG: full.file });
    try {
      const admin = s.token('p1', true);
      const key = s.key('p1', 'k', 'AES_256');
      const hwr = await s.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': admin }, body: { key_id: key.key_id, datakey_length: '256' } });
      assert.equal(hwr.status, 500);
      assert.equal(hwr.body.error.error_code, 'KMS.0103');
      assert.equal(hwr.body.plain_text, undefined);
      const n = await s.request('POST', `/kms/v1/keys/${key.keyTag}/create-custom-key`, { headers: { 'x-ncp-ocapi-token': admin }, body: { requestPlainKey: true } });
      assert.equal(n.status, 500);
      assert.equal(n.body.code, 'INTERNAL_SERVER_ERROR');
      assert.equal(n.body.data, undefined);
      assert.match(s.logs(), /audit record could not be written/);
      // While writes fail, a management call is refused before it runs: no key k2 is made.
      const c = await s.request('POST', '/v1.0/p1/kms/create-key', { headers: { 'X-Auth-Token': admin }, body: { key_alias: 'k2' } });
      assert.equal(c.status, 500);
      const db = new Database(path.join(s.dataDir, 'p11kms.db'), { readonly: true });
      try {
        const row = db.prepare(`SELECT count(*) AS n FROM keys WHERE alias = 'k2'`).get() as { n: number };
        assert.equal(row.n, 0);
      } finally {
        db.close();
      }
    } finally {
      await s.stop();
      full.remove();
    }
  });

  it('when a batch of records fails mid-write, then every request of it fails, later ones are refused until the disk recovers, and the chain stays valid', async () => {
    const s = await TestServer.start();
    try {
      const admin = s.token('p1', true);
      const key = s.key('p1', 'k', 'AES_256');
      const dk = (id: string) => s.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': admin, 'X-Request-Id': id }, body: { key_id: key.key_id, datakey_length: '256' } });
      const first = await dk('mid-ok-0');
      assert.equal(first.status, 200);
      const file = path.join(s.dataDir, 'audit.log');
      const pid = (JSON.parse(readFileSync(file, 'utf8').trim().split('\n')[0]!) as Rec).pid;
      // The server's RLIMIT_FSIZE: room for a third of a record, so the next batch is written in
      // part (a partial line) and then fails with EFBIG; nothing else the server writes grows then.
      execFileSync('prlimit', ['--pid', String(pid), `--fsize=${statSync(file).size + 100}:`]);
      let held: Awaited<ReturnType<typeof dk>>[];
      let refused: Awaited<ReturnType<typeof s.request>>;
      try {
        held = await Promise.all(Array.from({ length: 20 }, (_, i) => dk(`mid-fail-${i}`)));
        refused = await s.request('POST', '/v1.0/p1/kms/create-key', { headers: { 'X-Auth-Token': admin, 'X-Request-Id': 'mid-fail-k' }, body: { key_alias: 'mid-k' } });
      } finally {
        execFileSync('prlimit', ['--pid', String(pid), '--fsize=unlimited:']);
      }
      for (const r of held) {
        assert.equal(r.status, 500);
        assert.equal(r.body.error.error_code, 'KMS.0103');
        assert.equal(r.body.plain_text, undefined);
      }
      assert.equal(refused.status, 500);
      // The first request after recovery is still refused (its record is the probe); then service resumes.
      let ok = await dk('mid-ok-1');
      if (ok.status === 500) ok = await dk('mid-ok-2');
      assert.equal(ok.status, 200, ok.text);
      const db = new Database(path.join(s.dataDir, 'p11kms.db'), { readonly: true });
      try {
        const row = db.prepare(`SELECT count(*) AS n FROM keys WHERE alias = 'mid-k'`).get() as { n: number };
        assert.equal(row.n, 0, 'a request refused while audit fails does not run');
      } finally {
        db.close();
      }
      const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
      assert.equal(recs.filter((r) => r.requestId.startsWith('mid-fail-')).length, 0, 'no record of a failed batch is in the file');
      assert.equal(recs[0]?.requestId, 'mid-ok-0');
      assert.equal(recs[recs.length - 1]?.requestId, ok.headers.get('x-request-id'));
      const v = verify(file, s.env);
      assert.equal(v.code, 0, v.out);
      assert.match(s.logs(), /audit record could not be written/);
    } finally {
      await s.stop();
    }
  });

  it('when audit is not required and cannot be written, then the operation succeeds and the failure is logged', async () => {
    const full = fullDisk();
    const s = await TestServer.start({ KMS_AUDIT_LOG: full.file, KMS_AUDIT_REQUIRED: 'false' });
    try {
      const admin = s.token('p1', true);
      const key = s.key('p1', 'k', 'AES_256');
      const r = await s.request('POST', '/v1.0/p1/kms/create-datakey-without-plaintext', { headers: { 'X-Auth-Token': admin }, body: { key_id: key.key_id, datakey_length: '256' } });
      assert.equal(r.status, 200);
      assert.match(s.logs(), /audit record could not be written/);
    } finally {
      await s.stop();
      full.remove();
    }
  });
});

describe('audit of the command line', () => {
  it('when the CLI creates tokens and keys (and fails to), then its own chain records each, with no token in it', () => {
    // The fixture made 3 tokens and 4 keys through the CLI; one more refused creation:
    assert.throws(() => f.server.key('p1', 'aes-1', 'AES_256'));
    const file = path.join(f.server.dataDir, 'audit-cli.log');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
    assert.equal(lines.filter((r) => r.operation === 'cli:token-create' && r.outcome === 'success').length, 3);
    const keys = lines.filter((r) => r.operation === 'cli:key-create');
    assert.deepEqual(
      keys.filter((r) => r.outcome === 'success').map((r) => r.keyId).sort(),
      [f.aes.key_id, f.rsa.key_id, f.convergent.key_id, f.foreign.key_id].sort(),
    );
    assert.equal(keys.filter((r) => r.outcome === 'failure' && r.errorCode === 'AlreadyExists').length, 1);
    const text = readFileSync(file, 'utf8');
    // The secret part may itself contain '_': take everything after `p11kms_<id>_`.
    for (const t of [f.admin, f.user, f.other]) assert.ok(!text.includes(t) && !text.includes(t.slice('p11kms_0123456789abcdef_'.length)));
    assert.equal(verify(file).code, 0);
  });
});
