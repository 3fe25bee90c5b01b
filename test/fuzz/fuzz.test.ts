/**
 * Hostile input, property-based (fast-check): random and mutated bodies, headers, paths, methods,
 * encodings and sizes against every route of both dialects (read from the routers themselves, so a
 * new route is fuzzed without touching this file). For every case:
 *  - the status is below 500 and the server still answers /healthz;
 *  - a refused request (4xx) changed nothing in the store, nor on the token;
 *  - no error body carries a sentinel plaintext or data key.
 * The seed is printed; reproduce a failure with P11KMS_FUZZ_SEED=<seed> (and the path fast-check prints).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { huaweiRoutes } from '../../src/api/huawei/routes';
import { ncpRoutes } from '../../src/api/ncp/routes';
import type { Services } from '../../src/api/services';
import { fixture, type Fixture } from '../helpers/fixture';
import { TokenView } from '../helpers/token';

const seed = Number(process.env['P11KMS_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env['P11KMS_FUZZ_RUNS'] ?? 2000);
const BUDGET_MS = 75_000;

interface Route {
  readonly dialect: 'ncp' | 'huawei';
  readonly method: string;
  readonly path: string;
}

/** Every route both routers answer (their own dispatch tables and routes), with its method. */
function routes(): Route[] {
  const silent = { error() {}, warn() {}, info() {}, debug() {}, enabled: () => false };
  const stub = new Proxy({ log: silent } as Record<string, unknown>, { get: (t, p: string) => t[p] ?? {} }) as unknown as Services;
  const out: Route[] = [];
  for (const [dialect, list] of [
    ['ncp', ncpRoutes(stub)],
    ['huawei', huaweiRoutes(stub)],
  ] as const) {
    for (const r of list) out.push({ dialect, method: r.method === 'ALL' ? 'PATCH' : r.method, path: r.path });
  }
  return out;
}

let f: Fixture;
let view: TokenView;
let dbPath: string;
const sentinel = { plaintexts: [] as Buffer[], ncpCiphertext: '', huaweiCiphertext: '', datakeyCipher: '' };
const stats = { cases: 0, byStatus: new Map<number, number>(), skipped: 0 };

interface Raw {
  status: number;
  text: string;
}

/** node:http, not fetch: the path goes out as given (no normalisation), and bodies can be any bytes. */
function send(method: string, p: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Raw | 'client-refused'> {
  const { port } = new URL(f.server.url);
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest;
    try {
      req = http.request({ host: '127.0.0.1', port, method, path: p, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } });
    } catch {
      resolve('client-refused'); // a path or header node:http itself won't send
      return;
    }
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The stored state a request could change: every table (minus append-only logs), and the token's objects. */
function snapshot(): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as Array<{ name: string }>)
      .map((t) => t.name)
      .filter((n) => !/audit|usage|rate/i.test(n))
      .sort();
    const dump = tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all()]);
    const token = view.allObjects().map((o) => `${o.keyId}/${o.version}`).sort();
    return JSON.stringify([dump, token], (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? 'buf' : v));
  } finally {
    db.close();
  }
}

before(async () => {
  f = await fixture();
  dbPath = path.join(f.server.dataDir, 'p11kms.db');
  const p1 = randomBytes(32);
  const p2 = randomBytes(24).toString('hex');
  sentinel.plaintexts.push(p1, Buffer.from(p2));
  const e = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/encrypt`, { headers: { 'x-ncp-ocapi-token': f.user }, body: { plaintext: p1.toString('base64') } });
  assert.equal(e.status, 200, e.text);
  sentinel.ncpCiphertext = e.body.data.ciphertext;
  const h = await f.server.request('POST', '/v1.0/p1/kms/encrypt-data', { headers: { 'X-Auth-Token': f.user }, body: { key_id: f.aes.key_id, plain_text: p2 } });
  assert.equal(h.status, 200, h.text);
  sentinel.huaweiCiphertext = h.body.cipher_text;
  const d = await f.server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': f.user }, body: { key_id: f.aes.key_id, datakey_length: '256' } });
  assert.equal(d.status, 200, d.text);
  sentinel.plaintexts.push(Buffer.from(d.body.plain_text, 'hex'));
  sentinel.datakeyCipher = d.body.cipher_text;
  f.secrets.add(...sentinel.plaintexts);
  view = new TokenView(f.server);
});
after(async () => {
  view?.close();
  await f?.server.stop();
});

/** A ciphertext made wrong in one of the ways a client or attacker would. */
const mutatedCiphertext = (): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.constantFrom(sentinel.ncpCiphertext, sentinel.huaweiCiphertext, sentinel.datakeyCipher),
      fc.constantFrom('truncate', 'extend', 'flip', 'reversion', 'rebase', 'empty'),
      fc.nat(),
      fc.string({ maxLength: 12 }),
    )
    .map(([ct, how, n, extra]) => {
      switch (how) {
        case 'truncate':
          return ct.slice(0, n % Math.max(1, ct.length));
        case 'extend':
          return ct + extra;
        case 'flip': {
          const i = n % ct.length;
          return ct.slice(0, i) + (ct[i] === 'A' ? 'B' : 'A') + ct.slice(i + 1);
        }
        case 'reversion':
          return ct.startsWith('ncpkms:v') ? ct.replace(/^ncpkms:v\d+:/, `ncpkms:v${n % 100000}:`) : ct.replace(/^[0-9a-f]{2}/i, (n % 256).toString(16).padStart(2, '0'));
        case 'rebase': {
          const raw = Buffer.from(ct.replace(/^ncpkms:v\d+:/, ''), 'base64');
          const at = n % Math.max(1, raw.length);
          raw[at] = (raw[at] ?? 0) ^ (1 << n % 8);
          return ct.startsWith('ncpkms:') ? `ncpkms:v1:${raw.toString('base64')}` : raw.toString('base64');
        }
        default:
          return '';
      }
    });

const FIELDS = [
  'key_id', 'key_alias', 'key_description', 'key_spec', 'key_usage', 'plain_text', 'cipher_text', 'encryption_context',
  'datakey_length', 'datakey_plain_length', 'datakey_cipher_length', 'pending_days', 'random_data_length', 'signing_algorithm',
  'message', 'message_type', 'signature', 'limit', 'marker', 'key_state', 'sequence', 'grantee_principal', 'operations', 'grant_id',
  'name', 'tags', 'tag', 'action', 'rotation_interval', 'origin', 'plaintext', 'ciphertext', 'context', 'data', 'keyName', 'keyType',
  'keyDescription', 'period', 'algorithm', 'messageType', 'pageNo', 'pageSize', '__proto__', 'constructor',
];

function value(): fc.Arbitrary<unknown> {
  const scalar = fc.oneof(
    fc.constantFrom(f.aes.key_id, f.rsa.key_id, f.foreign.key_id, f.aes.keyTag, f.foreign.keyTag, 'p1', 'p2', '256', '7', 'AES_256', 'RSA_2048', 'RSASSA_PSS_SHA_256', 'DIGEST', 'RAW'),
    mutatedCiphertext(),
    fc.string({ maxLength: 64 }),
    fc.string({ unit: 'grapheme', maxLength: 32 }),
    fc.base64String({ maxLength: 128 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant('x'.repeat(5000)),
  );
  return fc.oneof({ weight: 6, arbitrary: scalar }, fc.array(scalar, { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }));
}

/** A body: a plausible object with wrong parts, random JSON, or bytes that aren't JSON at all. */
function body(): fc.Arbitrary<Buffer | undefined> {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'null');
  return fc.oneof(
    { weight: 8, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), value(), { maxKeys: 6 }).map(json) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(json) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, Buffer.alloc(0), Buffer.from('{'), Buffer.from('[]'), Buffer.from('"x"'), Buffer.from('1e999')) },
    { weight: 1, arbitrary: fc.nat({ max: 3 }).map((i) => Buffer.from(['{"a":' + '"x"'.padEnd(70_000, 'x') + '}', '['.repeat(3000) + ']'.repeat(3000), '{"plain_text":"\ud800"}', '\xff\xfe{\x00"\x00'][i]!, 'utf8')) },
  );
}

function pathParam(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(f.aes.keyTag, f.rsa.keyTag, f.foreign.keyTag, f.aes.key_id, f.foreign.key_id, '1', '0', '-1', '99999999999') },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '..', '%2e%2e%2f', 'a'.repeat(3000), '%00', '%F0%9F%92%A9', ';x=1') },
  );
}

function request(all: Route[]): fc.Arbitrary<{ method: string; path: string; headers: Record<string, string>; body: Buffer | undefined }> {
  return fc
    .record({
      route: fc.constantFrom(...all),
      otherMethod: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), { freq: 6 }),
      params: fc.array(pathParam(), { minLength: 3, maxLength: 3 }),
      project: fc.oneof({ weight: 6, arbitrary: fc.constant('p1') }, fc.constantFrom('p2', '', '%', 'P1', 'p1%2F..')),
      auth: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(f.admin, f.user) }, fc.constantFrom(f.other, '', 'x', 'Bearer ' + f.admin, f.admin + 'x', 'a'.repeat(9000))),
      contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', ''),
      encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'), { freq: 8 }),
      query: fc.option(fc.constantFrom('?limit=-1', '?a=%', '?__proto__[x]=1', '?offset=1e9&limit=99999', '?x=' + 'y'.repeat(3000)), { freq: 5 }),
      body: body(),
    })
    .chain((r) =>
      // Half the cases are plausible everywhere but the body (right method, project, token, content
      // type, a real key in the path), so they get past the edge and into the handlers and the domain.
      fc.boolean().map((plausible) =>
        plausible
          ? { ...r, otherMethod: null, params: [f.aes.keyTag, '1', f.aes.keyTag], project: 'p1', auth: f.admin, contentType: 'application/json', encoding: null, query: null }
          : r,
      ),
    )
    .map((r) => {
      let i = 0;
      const p = r.route.path.replace(/:[A-Za-z_]+/g, () => r.params[i++] ?? 'x');
      const prefix = r.route.dialect === 'ncp' ? '/kms/v1' : `/v1.0/${r.project}/kms`;
      const headers: Record<string, string> = {};
      headers[r.route.dialect === 'ncp' ? 'x-ncp-ocapi-token' : 'X-Auth-Token'] = r.auth;
      if (r.contentType) headers['content-type'] = r.contentType;
      if (r.encoding) headers['content-encoding'] = r.encoding;
      return { method: r.otherMethod ?? r.route.method, path: prefix + p + (r.query ?? ''), headers, body: r.body };
    });
}

describe('hostile input', () => {
  it(`when random and mutated requests hit every route of both dialects, then never a 5xx or a crash, refused requests change nothing, and no error carries a plaintext (seed ${seed})`, async () => {
    const all = routes();
    assert.ok(all.filter((r) => r.dialect === 'ncp').length >= 20, 'NCP routes found');
    assert.ok(all.filter((r) => r.dialect === 'huawei').length >= 25, 'Huawei routes found');
    const secretForms = sentinel.plaintexts.flatMap((p) => [p.toString('base64'), p.toString('hex'), p.toString('hex').toUpperCase(), p.toString('utf8')]).filter((s) => s.length >= 8);
    const started = Date.now();
    let baseline = snapshot();
    await fc.assert(
      fc.asyncProperty(request(all), async (req) => {
        if (Date.now() - started > BUDGET_MS) return; // the time budget is spent: the remaining cases pass untried
        const r = await send(req.method, req.path, req.headers, req.body);
        if (r === 'client-refused') {
          stats.skipped++;
          return;
        }
        stats.cases++;
        stats.byStatus.set(r.status, (stats.byStatus.get(r.status) ?? 0) + 1);
        assert.ok(r.status < 500, `${req.method} ${req.path.slice(0, 120)} → ${r.status} ${r.text.slice(0, 200)}`);
        const now = snapshot();
        if (r.status >= 400) {
          for (const s of secretForms) assert.ok(!r.text.includes(s), `an error body carries a sentinel secret: ${req.method} ${req.path}`);
          assert.equal(now, baseline, `refused ${req.method} ${req.path.slice(0, 120)} (${r.status}) changed stored state`);
        }
        baseline = now;
        if (stats.cases % 50 === 0) assert.equal((await f.server.request('GET', '/healthz')).status, 200);
      }),
      { seed, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
    );
    assert.equal((await f.server.request('GET', '/healthz')).status, 200, 'the server still answers');
    console.log(`# fuzz seed ${seed}: ${stats.cases} requests sent (${stats.skipped} refused by the client library) in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(stats.byStatus))}`);
    assert.ok(stats.cases >= Math.min(RUNS, 100) * 0.8, 'most cases really reached the server');
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
