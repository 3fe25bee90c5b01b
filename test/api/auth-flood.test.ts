/**
 * Unauthenticated floods (issue 19): failed authentications are throttled per client address (the
 * dialect's Throttled answer with Retry-After) and audited as one record per dialect and address
 * per interval with a count, so that 10 000 bad-credential requests grow the audit trail by well
 * under 100 KB; valid credentials from the same address are not held up, and the keyed trail still
 * verifies.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FAILURES_PER_WINDOW } from '../../src/api/middleware/failed-auth';
import { ROOT, TestServer } from '../helpers/server';

const FLOOD = 10_000;
const AT_ONCE = 16;
type Dialect = 'huawei' | 'ncp' | 'aws';
const DIALECTS: readonly Dialect[] = ['huawei', 'ncp', 'aws'];

let server: TestServer;
let admin: string;
let auditFile: string;

before(async () => {
  server = await TestServer.start();
  admin = server.token('p1', true);
  auditFile = path.join(server.dataDir, 'audit.log');
});
after(async () => {
  await server?.stop();
});

/** A request of `dialect` whose credentials are wrong (or, for some, absent). */
function bogus(dialect: Dialect, i: number) {
  if (dialect === 'huawei') return server.request('POST', '/v1.0/p1/kms/gen-random', { headers: { 'X-Auth-Token': `p11kms_bogus_${i}` }, body: { random_data_length: '256' } });
  if (dialect === 'ncp') return server.request('GET', '/kms/v1/keys', i % 2 ? {} : { headers: { 'x-ncp-ocapi-token': `p11kms_bogus_${i}` } });
  const auth = `AWS4-HMAC-SHA256 Credential=AKIAAAAAAAAAAAAAAAAA/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
  return server.request('POST', '/', { headers: { 'X-Amz-Target': 'TrentService.ListKeys', 'Content-Type': 'application/x-amz-json-1.1', ...(i % 2 ? {} : { Authorization: auth }) }, body: {} });
}

/** The throttled answer's code in the dialect's shape. */
function throttledCode(dialect: Dialect, body: { error?: { error_code?: string }; code?: string; __type?: string }): string | undefined {
  return dialect === 'huawei' ? body.error?.error_code : dialect === 'ncp' ? body.code : body.__type;
}

describe('failed authentications', () => {
  it('when 10 000 requests carry bad credentials, then they are throttled with Retry-After in each dialect, valid tokens still work, and the audit trail grows by well under 100 KB with their count', async (t) => {
    const ok = await server.request('POST', '/v1.0/p1/kms/gen-random', { headers: { 'X-Auth-Token': admin }, body: { random_data_length: '256' } });
    assert.equal(ok.status, 200, ok.text);
    const sizeBefore = statSync(auditFile).size;
    const statuses = new Map<string, number>();
    const codes = new Map<Dialect, Set<string | undefined>>(DIALECTS.map((d) => [d, new Set()]));
    let retryAfterMissing = 0;
    let sent = 0;
    const started = Date.now();
    const worker = async () => {
      while (sent < FLOOD) {
        const i = sent++;
        const dialect = DIALECTS[i % DIALECTS.length]!;
        const r = await bogus(dialect, Math.floor(i / DIALECTS.length));
        // AWS answers throttling with 400 ThrottlingException, as it answers a bad signature with 400.
        const throttled = dialect === 'aws' ? r.body?.__type === 'ThrottlingException' : r.status === 429;
        const seen = `${dialect} ${r.status}${throttled ? ' throttled' : ''}`;
        statuses.set(seen, (statuses.get(seen) ?? 0) + 1);
        if (throttled) {
          if (!/^[1-9][0-9]*$/.test(r.headers.get('retry-after') ?? '')) retryAfterMissing++;
          codes.get(dialect)!.add(throttledCode(dialect, r.body));
        }
      }
    };
    await Promise.all(Array.from({ length: AT_ONCE }, worker));
    const elapsedMs = Date.now() - started;
    const seen = JSON.stringify([...statuses]);
    // Refused (Huawei and NCP 401, AWS 400) until the allowance is used, then throttled (Huawei and NCP 429, AWS 400 as AWS answers it).
    assert.deepEqual([...statuses.keys()].sort(), ['aws 400', 'aws 400 throttled', 'huawei 401', 'huawei 429 throttled', 'ncp 401', 'ncp 429 throttled'], seen);
    const throttled = [...statuses].filter(([k]) => k.endsWith('throttled')).reduce((n, [, v]) => n + v, 0);
    // The address's allowance, however long a loaded machine took for the flood: one per 10 s window begun.
    const allowance = FAILURES_PER_WINDOW * (Math.ceil(elapsedMs / 10_000) + 1);
    assert.ok(FLOOD - throttled <= allowance, `at most ${allowance} refused without throttling in ${elapsedMs} ms: ${seen}`);
    assert.equal(retryAfterMissing, 0);
    assert.deepEqual([...codes.get('huawei')!], ['APIGW.0308']);
    assert.deepEqual([...codes.get('ncp')!], ['TOO_MANY_REQUESTS']);
    assert.deepEqual([...codes.get('aws')!], ['ThrottlingException']);

    // The address is throttled for bad credentials, not for good ones.
    const still = await server.request('POST', '/v1.0/p1/kms/gen-random', { headers: { 'X-Auth-Token': admin }, body: { random_data_length: '256' } });
    assert.equal(still.status, 200, still.text);
    const ncpOk = await server.request('GET', '/kms/v1/keys', { headers: { 'x-ncp-ocapi-token': admin } });
    assert.equal(ncpOk.status, 200, ncpOk.text);

    // Stopping writes what is still counted.
    await server.stop({ keepData: true });
    const grown = statSync(auditFile).size - sizeBefore;
    t.diagnostic(`the audit trail grew by ${grown} bytes`);
    assert.ok(grown < 20_000, `the audit trail grew by ${grown} bytes`);
    const records = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const aggregated = records.filter((r) => String(r['operation']).endsWith(':failed-authentication'));
    assert.deepEqual([...new Set(aggregated.map((r) => r['operation']))].sort(), DIALECTS.map((d) => `${d}:failed-authentication`).sort());
    assert.equal(aggregated.reduce((n, r) => n + (r['count'] as number), 0), FLOOD);
    for (const r of aggregated) {
      assert.equal(r['project'], '');
      assert.equal(r['tokenId'], null);
      assert.match(String(r['source']), /127\.0\.0\.1/);
    }
    assert.equal(records.filter((r) => r['count'] !== undefined).length, aggregated.length, 'only aggregated records carry a count');
    const out = execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), 'audit', 'verify', auditFile], { encoding: 'utf8', env: server.env });
    assert.match(out, /OK/);
  });
});
