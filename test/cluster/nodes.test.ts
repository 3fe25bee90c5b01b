/**
 * Two real nodes (server processes with their own ports and KMS_NODE_ID) on one SoftHSM token, one
 * data dir and one PostgreSQL database: what one node does, the other sees.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { decodeEnvelope } from '../../src/kms/envelope/format';
import { PgStore } from '../../src/store/postgres';
import { TestPostgres } from '../helpers/postgres';
import { ROOT, TestServer, type Reply } from '../helpers/server';

const run = promisify(execFile);

/**
 * The rate limit of project `rl` on each node (requests per second): low enough that a loaded
 * test machine still offers more than it, so the pair's total shows whether the count is shared.
 */
const LIMIT = 10;

let db: TestPostgres;
let url: string;
let a: TestServer;
let b: TestServer;
let admin: string;
let store: PgStore;

/** The CLI of node `n`, run without blocking this process (its HTTP connections stay serviced). */
async function cli(n: TestServer, args: readonly string[]): Promise<string> {
  return (await run(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), ...args], { env: n.env, encoding: 'utf8' })).stdout;
}

function hw(n: TestServer, action: string, body: unknown, token = admin, project = 'p1'): Promise<Reply> {
  return n.request('POST', `/v1.0/${project}/kms/${action}`, { headers: { 'X-Auth-Token': token }, body });
}

async function ok(n: TestServer, action: string, body: unknown, token = admin): Promise<Reply['body']> {
  const r = await hw(n, action, body, token);
  assert.equal(r.status, 200, `${action}: ${r.text}`);
  return r.body;
}

/**
 * Sends `request` to a node until `seen` holds; returns how long after `since` the first request
 * that saw it was sent (the propagation delay, not the request's own time on a busy machine).
 */
async function seenAfter(since: number, request: () => Promise<Reply>, seen: (r: Reply) => boolean, giveUpMs = 10_000): Promise<number> {
  for (;;) {
    const sent = Date.now();
    if (seen(await request())) return sent - since;
    assert.ok(Date.now() - since < giveUpMs, 'never seen');
    await sleep(20);
  }
}

/** NCP's manual rotation (Huawei has none), by the key's tag. */
async function rotate(n: TestServer, keyId: string): Promise<Reply> {
  const tag = (await store.keyById(keyId))!.keyTag;
  return n.request('POST', `/kms/v1/keys/${tag}/rotate`, { headers: { 'x-ncp-ocapi-token': admin }, body: {} });
}

async function newKey(n: TestServer, alias: string): Promise<string> {
  return (await ok(n, 'create-key', { key_alias: alias })).key_info.key_id;
}

before(async () => {
  db = TestPostgres.start();
  url = await db.createDatabase('nodes');
  const env = { KMS_DB: url, KMS_SWEEP_INTERVAL_MS: '500', KMS_RATE_LIMITS: `rl=${LIMIT}` };
  a = await TestServer.start({ ...env, KMS_NODE_ID: 'node-a' });
  // Same data dir (token, PIN, SoftHSM config), another node id: SoftHSM on one machine.
  b = await TestServer.start({ ...env, KMS_NODE_ID: 'node-b' }, a.dataDir, { makeToken: false });
  admin = (await cli(a, ['token', 'create', '--project', 'p1', '--admin'])).trim();
  store = new PgStore(url);
});

after(async () => {
  await b?.stop({ keepData: true });
  await a?.stop();
  await store?.close();
  db?.destroy();
});

describe('two nodes on one PostgreSQL database', () => {
  it('when a key is created on node A, then node B uses it on its first request, and each opens the other\'s ciphertexts', async () => {
    const keyId = await newKey(a, 'made-on-a');
    const dk = await ok(b, 'create-datakey', { key_id: keyId, datakey_length: '256' });
    const back = await ok(a, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.cipher_text, datakey_cipher_length: '32' });
    assert.equal(back.data_key, dk.plain_text);
    const dk2 = await ok(a, 'create-datakey', { key_id: keyId, datakey_length: '256' });
    assert.equal((await ok(b, 'decrypt-datakey', { key_id: keyId, cipher_text: dk2.cipher_text, datakey_cipher_length: '32' })).data_key, dk2.plain_text);
  });

  it('when a key is disabled or scheduled for deletion on A, then B refuses it within 1 s', async () => {
    const keyId = await newKey(a, 'disable-me');
    const use = () => hw(b, 'create-datakey', { key_id: keyId, datakey_length: '256' });
    assert.equal((await use()).status, 200, 'B has it cached');
    await ok(a, 'disable-key', { key_id: keyId });
    const delay = await seenAfter(Date.now(), use, (r) => r.body?.error?.error_code === 'KMS.0209');
    assert.ok(delay < 1_000, `disabled seen on B after ${delay} ms`);

    await ok(a, 'enable-key', { key_id: keyId });
    await seenAfter(Date.now(), use, (r) => r.status === 200);
    await ok(a, 'schedule-key-deletion', { key_id: keyId, pending_days: '7' });
    const delay2 = await seenAfter(Date.now(), use, (r) => r.body?.error?.error_code === 'KMS.0210');
    assert.ok(delay2 < 1_000, `pending deletion seen on B after ${delay2} ms`);
  });

  it('when a key is rotated on A, then B seals under the new version within 1 s', async () => {
    const keyId = await newKey(a, 'rotate-me');
    const version = async () => {
      const r = await hw(b, 'create-datakey', { key_id: keyId, datakey_length: '256' });
      return { r, v: r.status === 200 ? envelopeVersion(r.body.cipher_text) : -1 };
    };
    assert.equal((await version()).v, 1);
    const rotated = await rotate(a, keyId);
    assert.equal(rotated.status, 200, rotated.text);
    let latest = 0;
    const delay = await seenAfter(
      Date.now(),
      async () => {
        const { r, v } = await version();
        latest = v;
        return r;
      },
      () => latest === 2,
    );
    assert.ok(delay < 1_000, `new version used on B after ${delay} ms`);
  });

  it('when rotations race on both nodes, then the versions are whole and contiguous', async (t) => {
    const keyId = await newKey(a, 'race-me');
    const tries = [a, b, a, b, a, b, a, b].map((n) => rotate(n, keyId));
    const answers = await Promise.all(tries);
    for (const r of answers) assert.ok(r.status === 200 || r.status === 429, `a rotation answers 200 or is throttled, got ${r.status} ${r.text}`);
    const won = answers.filter((r) => r.status === 200).length;
    t.diagnostic(`${won} of ${answers.length} racing rotations won`);
    assert.ok(won >= 1);
    const versions = await store.versions(keyId);
    assert.deepEqual(versions.map((v) => v.version), Array.from({ length: won + 1 }, (_, i) => i + 1), 'one version per successful rotation, no gaps');
    assert.ok(versions.every((v) => v.state === 'Enabled'), 'no claim left half-made');
    const key = (await store.keyById(keyId))!;
    assert.equal(key.currentVersion, won + 1);
    // Whole: every version's objects exist on the token, so a ciphertext under the newest opens on both nodes.
    const dk = await ok(a, 'create-datakey', { key_id: keyId, datakey_length: '256' });
    assert.equal(envelopeVersion(dk.cipher_text), won + 1);
    assert.equal((await ok(b, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.cipher_text, datakey_cipher_length: '32' })).data_key, dk.plain_text);
  });

  it('when a token is revoked on A, then B refuses it within 1 s', async () => {
    const token = (await cli(a, ['token', 'create', '--project', 'p1'])).trim();
    const keyId = await newKey(a, 'for-revoked');
    const use = () => hw(b, 'create-datakey', { key_id: keyId, datakey_length: '256' }, token);
    assert.equal((await use()).status, 200, 'B has the token cached');
    const id = /^p11kms_([0-9a-f]{16})_/.exec(token)![1]!;
    await cli(a, ['token', 'revoke', id]);
    const delay = await seenAfter(Date.now(), use, (r) => r.status === 401);
    assert.ok(delay < 1_000, `revocation seen on B after ${delay} ms`);
  });

  it('when each node writes audit records, then each has its own chain, named by node id, and audit verify checks them all', async () => {
    const files = readdirSync(a.dataDir).filter((f) => f.startsWith('audit-') && f.endsWith('.log'));
    assert.ok(files.includes('audit-node-a.log'), files.join(','));
    assert.ok(files.includes('audit-node-b.log'), files.join(','));
    // `audit verify` on either node checks every node's chain.
    const out = await cli(b, ['audit', 'verify']);
    assert.match(out, /^OK audit-node-a\.log: [1-9]/m);
    assert.match(out, /^OK audit-node-b\.log: [1-9]/m);
  });
});

/** The key version a Huawei data-key ciphertext (hex envelope) names. */
function envelopeVersion(hexCipher: string): number {
  return decodeEnvelope(Buffer.from(hexCipher, 'hex')).keyVersion;
}

describe('a project rate limit across nodes', () => {
  it(`when both nodes are sent more than ${LIMIT}/s of one project, then the pair answers at most ${LIMIT * 1.2}/s`, async (t) => {
    const token = (await cli(a, ['token', 'create', '--project', 'rl'])).trim();
    const counts = { ok: 0, throttled: 0, other: 0 };
    const t0 = Date.now();
    // 8 one-second windows (plus the one a late request may open): at most 9 x LIMIT answered.
    const until = t0 + 8_000;
    const worker = async (n: TestServer) => {
      while (Date.now() < until) {
        const r = await hw(n, 'list-keys', {}, token, 'rl');
        if (r.status === 200) counts.ok++;
        else if (r.status === 429) counts.throttled++;
        else counts.other++;
      }
    };
    await Promise.all([a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b].map(worker));
    const seconds = (Date.now() - t0) / 1000;
    const rate = counts.ok / seconds;
    const offered = (counts.ok + counts.throttled) / seconds;
    t.diagnostic(`answered ${rate.toFixed(1)}/s, offered ${offered.toFixed(1)}/s, throttled ${counts.throttled}`);
    assert.equal(counts.other, 0);
    assert.ok(rate <= LIMIT * 1.2, `answered ${rate.toFixed(1)}/s of ${offered.toFixed(1)}/s offered`);
    // Only meaningful when more was asked for than the limit: then some must have been refused.
    if (offered > LIMIT * 1.3) assert.ok(counts.throttled > 0, 'some requests throttled');
  });
});

describe('faults', () => {
  /** Keeps `n` busy with create-datakey until stopped; records every answer. */
  function load(nodes: TestServer[], keyId: string) {
    const answered: Array<{ cipher: string; plain: string }> = [];
    const statuses = new Map<number, number>();
    const byNode = new Map<TestServer, number[]>();
    let stop = false;
    const one = async (n: TestServer) => {
      while (!stop) {
        let status: number;
        try {
          const r = await hw(n, 'create-datakey', { key_id: keyId, datakey_length: '256' });
          status = r.status;
          if (r.status === 200) answered.push({ cipher: r.body.cipher_text, plain: r.body.plain_text });
        } catch {
          status = 0; // the connection failed (a killed node)
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        byNode.set(n, [...(byNode.get(n) ?? []), status]);
        await sleep(5);
      }
    };
    const running = Promise.all(nodes.flatMap((n) => [one(n), one(n)]));
    return {
      answered,
      statuses,
      byNode,
      async stop() {
        stop = true;
        await running;
      },
    };
  }

  async function until(what: string, ok: () => boolean | Promise<boolean>, withinMs = 60_000): Promise<void> {
    const deadline = Date.now() + withinMs;
    while (!(await ok())) {
      assert.ok(Date.now() < deadline, what);
      await sleep(50);
    }
  }

  it('when PostgreSQL restarts under load, then both nodes answer 503 while it is down and recover without a restart', async () => {
    const keyId = await newKey(a, 'db-restart');
    const l = load([a, b], keyId);
    // Stopped however the test ends: a load left running would hold the file until its timeout.
    try {
      await until('load running', () => l.answered.length >= 10);
      const since = new Map([a, b].map((n) => [n, l.byNode.get(n)?.length ?? 0]));
      await db.stopServer();
      try {
        await until('both nodes answer 503 while the database is down', () =>
          [a, b].every((n) => (l.byNode.get(n) ?? []).slice(since.get(n)).includes(503)),
        );
      } finally {
        await db.startServer();
      }
      const back = new Map([a, b].map((n) => [n, l.byNode.get(n)?.length ?? 0]));
      await until('both nodes answer 200 again', () => [a, b].every((n) => (l.byNode.get(n) ?? []).slice(back.get(n)).includes(200)));
    } finally {
      await l.stop();
    }
    assert.deepEqual([...l.statuses.keys()].filter((s) => s !== 200 && s !== 503), [], `only 200 and 503: ${JSON.stringify([...l.statuses])}`);
  });

  it('when one node is killed -9 under load, then the other keeps serving, and every answered ciphertext opens on either node', async () => {
    const keyId = await newKey(a, 'kill-a');
    const l = load([a, b], keyId);
    await until('load running', () => l.answered.length >= 20);
    await a.kill('SIGKILL');
    const afterKill = l.byNode.get(b)?.length ?? 0;
    await until('B answers more after the kill', () => (l.byNode.get(b)?.length ?? 0) >= afterKill + 20);
    await l.stop();
    assert.deepEqual((l.byNode.get(b) ?? []).filter((s) => s !== 200), [], 'B answered everything');
    // A comes back on the same data dir and node id; every ciphertext answered by either opens on both.
    a = await TestServer.start({ KMS_DB: url, KMS_NODE_ID: 'node-a', KMS_RATE_LIMITS: `rl=${LIMIT}` }, a.dataDir, { makeToken: false });
    for (const n of [a, b]) {
      for (const { cipher, plain } of l.answered) {
        const r = await ok(n, 'decrypt-datakey', { key_id: keyId, cipher_text: cipher, datakey_cipher_length: '32' });
        assert.equal(r.data_key, plain);
      }
    }
  });
});
