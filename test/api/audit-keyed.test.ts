/**
 * The keyed audit trail against a real server and token: a chain rebuilt without the token fails
 * `audit verify` at the first rewritten record, a head kept aside catches records removed from the
 * end, `audit verify` with no file checks every audit file of the data dir, and the key is a
 * token object nobody can read.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { AUDIT_KEY_ID } from '../../src/hsm/audit-key';
import { fixture, type Fixture } from '../helpers/fixture';
import { ROOT } from '../helpers/server';
import { TokenView } from '../helpers/token';

let f: Fixture;
let auditPath = '';

/** `p11kms audit <args>` against the fixture's data dir: exit code, stdout and stderr. */
function audit(...args: string[]): { code: number; out: string; err: string } {
  try {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'audit', ...args], { env: f.server.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out, err: '' };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: err.stdout, err: err.stderr };
  }
}

type Line = Record<string, unknown>;
const lines = (file: string): Line[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);

/**
 * What anyone who can write the file can do, from the format's documentation alone: drop records,
 * renumber and re-hash the chain. MACs stay where they were, or (`macsFrom`) are left out of the
 * records from that index on.
 */
function rebuild(records: readonly Line[], macsFrom = Infinity): string {
  let prev = '0'.repeat(64);
  return records
    .map((r, i) => {
      const { hash: _hash, mac, ...rest } = r;
      const body = JSON.stringify({ ...rest, seq: i + 1 });
      prev = createHash('sha256').update(prev + body, 'utf8').digest('hex');
      const macPart = i < macsFrom && typeof mac === 'string' ? `,"mac":"${mac}"` : '';
      return `${body.slice(0, -1)},"hash":"${prev}"${macPart}}\n`;
    })
    .join('');
}

before(async () => {
  f = await fixture();
  auditPath = path.join(f.server.dataDir, 'audit.log');
  // One request at a time: each record is a batch of its own, MAC'd by the token.
  for (let i = 0; i < 8; i++) {
    const [token, project] = i % 3 === 1 ? [f.other, 'p2'] : [f.admin, 'p1'];
    const r = await f.server.request('POST', `/v1.0/${project}/kms/list-keys`, { headers: { 'X-Auth-Token': token, 'X-Request-Id': `keyed-${i}` }, body: {} });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await f?.server.stop();
});

describe('a keyed audit trail', () => {
  it('when the server and the CLI write records, then each batch carries the token\'s MAC and every file of the data dir verifies', () => {
    const recs = lines(auditPath);
    assert.ok(recs.length >= 8);
    assert.ok(recs.every((r) => typeof r['mac'] === 'string' && /^[0-9a-f]{64}$/.test(r['mac'] as string)), 'sequential requests: one batch, one MAC each');
    assert.ok(lines(path.join(f.server.dataDir, 'audit-cli.log')).every((r) => typeof r['mac'] === 'string'));
    const v = audit('verify');
    assert.equal(v.code, 0, v.out + v.err);
    assert.match(v.out, new RegExp(`^OK audit-cli\\.log: \\d+ records, \\d+ MACs\nOK audit\\.log: ${recs.length} records, ${recs.length} MACs\n$`));
  });

  it('when a script drops every record of one project and rebuilds the SHA-256 chain, then audit verify fails at the first rewritten record', () => {
    const recs = lines(auditPath);
    const firstDropped = recs.findIndex((r) => r['project'] === 'p2');
    assert.ok(firstDropped > 0, 'p2 has records after p1 ones');
    const kept = recs.filter((r) => r['project'] !== 'p2');
    const copy = path.join(f.server.dataDir, 'rewritten.log');
    for (const macsFrom of [Infinity, firstDropped]) {
      writeFileSync(copy, rebuild(kept, macsFrom));
      const v = audit('verify', copy);
      assert.equal(v.code, 1, v.out);
      assert.match(v.out, new RegExp(`^BAD rewritten\\.log line ${firstDropped + 1}: `), v.out);
      assert.match(v.out, new RegExp(`\\(${firstDropped} records verified before it\\)`));
    }
    // The same script without dropping anything reproduces the file: the rebuild itself is faithful.
    writeFileSync(copy, rebuild(recs));
    assert.equal(readFileSync(copy, 'utf8'), readFileSync(auditPath, 'utf8'));
    assert.equal(audit('verify', copy).code, 0);
  });

  it('when records are removed from the end, then audit verify passes alone but fails with the head taken before', () => {
    const head = audit('head', auditPath);
    assert.equal(head.code, 0, head.err);
    const recs = lines(auditPath);
    const last = recs[recs.length - 1]!;
    assert.equal(head.out, `audit.log:${String(last['seq'])}:${String(last['hash'])}:${String(last['mac'])}\n`);
    const copy = path.join(f.server.dataDir, 'truncated.log');
    const text = readFileSync(auditPath, 'utf8').trim().split('\n');
    writeFileSync(copy, `${text.slice(0, -2).join('\n')}\n`);
    assert.equal(audit('verify', copy).code, 0, 'a shorter chain is still a valid chain');
    const v = audit('verify', copy, '--head', head.out.trim());
    assert.equal(v.code, 1, v.out);
    assert.match(v.out, new RegExp(`line ${recs.length - 1}: the head names record ${recs.length} but the file ends at record ${recs.length - 2}`));
    // The untouched file passes with the same head; a head whose MAC was not made by the token does not.
    assert.equal(audit('verify', auditPath, '--head', head.out.trim()).code, 0);
    const forged = head.out.trim().replace(/[0-9a-f]$/, (c) => (c === '0' ? '1' : '0'));
    assert.match(audit('verify', auditPath, '--head', forged).out, /the head's MAC is not the token's/);
  });

  it('when the data dir holds several audit files, then audit verify with no file checks each, with the heads of all of them', () => {
    // A third file, as another node's (issue 23) or a worker's would be.
    const third = path.join(f.server.dataDir, 'audit-node2.log');
    copyFileSync(auditPath, third);
    const heads = audit('head');
    assert.equal(heads.code, 0, heads.err);
    assert.deepEqual(heads.out.trim().split('\n').map((h) => h.split(':')[0]), ['audit-cli.log', 'audit-node2.log', 'audit.log']);
    const all = audit('verify', '--head', heads.out);
    assert.equal(all.code, 0, all.out);
    assert.equal(all.out.trim().split('\n').length, 3);

    // Rewrite one of them: the others still pass, the command fails and names it.
    const recs = lines(third);
    writeFileSync(third, rebuild(recs.slice(1)));
    const v = audit('verify', '--head', heads.out);
    assert.equal(v.code, 1);
    assert.match(v.out, /^OK audit-cli\.log: /m);
    assert.match(v.out, /^BAD audit-node2\.log line 1: /m);
    assert.match(v.out, /^OK audit\.log: /m);

    // A file a head names is gone.
    rmSync(third);
    const gone = audit('verify', '--head', heads.out);
    assert.equal(gone.code, 1);
    assert.match(gone.out, /^BAD audit-node2\.log: a head names it but the data dir has no such audit file$/m);
  });

  it('then the token holds exactly one audit key: a generic secret, sensitive, never extractable, not modifiable, MAC only, whose value no one can read', () => {
    const view = new TokenView(f.server);
    try {
      view.lib.C_FindObjectsInit(view.session, [{ type: pkcs11js.CKA_ID, value: AUDIT_KEY_ID }]);
      const found = view.lib.C_FindObjects(view.session, 10);
      view.lib.C_FindObjectsFinal(view.session);
      assert.equal(found.length, 1);
      const h = found[0]!;
      const attr = (type: number) => view.lib.C_GetAttributeValue(view.session, h, [{ type }])[0]!.value as Buffer;
      const flag = (type: number) => attr(type)[0] === 1;
      assert.equal(attr(pkcs11js.CKA_KEY_TYPE).readUInt32LE(), pkcs11js.CKK_GENERIC_SECRET);
      assert.equal(flag(pkcs11js.CKA_TOKEN), true);
      assert.equal(flag(pkcs11js.CKA_SENSITIVE), true);
      assert.equal(flag(pkcs11js.CKA_EXTRACTABLE), false);
      assert.equal(flag(pkcs11js.CKA_MODIFIABLE), false);
      assert.equal(flag(pkcs11js.CKA_SIGN), true);
      for (const usage of [pkcs11js.CKA_ENCRYPT, pkcs11js.CKA_DECRYPT, pkcs11js.CKA_WRAP, pkcs11js.CKA_UNWRAP, pkcs11js.CKA_DERIVE]) assert.equal(flag(usage), false);
      assert.throws(() => view.lib.C_GetAttributeValue(view.session, h, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
      // Not a CMK version's CKA_ID (21 bytes) or label (`p11kms/…`): the service's listing leaves it out.
      assert.notEqual(AUDIT_KEY_ID.length, 21);
      assert.ok(!attr(pkcs11js.CKA_LABEL).toString('utf8').startsWith('p11kms/'));
    } finally {
      view.close();
    }
  });

  it('then no PIN, API token or MAC key material is in an audit file or the logs', () => {
    const text = readFileSync(auditPath, 'utf8') + readFileSync(path.join(f.server.dataDir, 'audit-cli.log'), 'utf8');
    for (const secret of [f.server.pin(), f.admin, f.user, f.other]) assert.ok(!text.includes(secret));
    f.secrets.assertNotLogged(f.server, text);
  });
});
