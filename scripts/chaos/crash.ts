/**
 * The kill -9 scenario, shared by test/reliability/crash.test.ts (a few rounds) and `npm run chaos`
 * (many): a real server on one data dir, a mixed load (key creation in both dialects, AES and RSA,
 * rotation, scheduled and immediate deletion, cancellation, encrypt, decrypt), SIGKILL at a random
 * moment, restart on the same token and store, then check:
 *
 *  1. every version of every key the store lists (not Deleted, not Creating) has its token objects;
 *  2. token objects without a live row are reported in the log and gone after the grace period;
 *     Deleted keys end with no objects;
 *  3. every ciphertext a client received before any kill still decrypts to its plaintext.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { TestServer, type Reply } from '../../test/helpers/server';
import { TokenView } from '../../test/helpers/token';
import { until } from '../../test/helpers/wait';

export interface CrashOptions {
  readonly rounds: number;
  /** Load runs this long (ms, random in the range) before the kill. */
  readonly loadMs: readonly [number, number];
  readonly concurrency: number;
  readonly seed: number;
  /** Most ciphertexts re-decrypted after each restart (all of them after the last one). */
  readonly checkPerRound: number;
  readonly log: (line: string) => void;
}

export interface CrashReport {
  seed: number;
  rounds: number;
  kills: number;
  /** Rounds per load profile (the phase the kill interrupts). */
  profiles: Record<string, number>;
  requests: number;
  /** `status code` (and vendor code) → count, plus `connection-error` for requests cut by a kill. */
  byCode: Record<string, number>;
  keysCreated: number;
  keysChecked: number;
  versionsChecked: number;
  ciphertextsIssued: number;
  ciphertextsRedecrypted: number;
  /** Orphans left on the token by hand while the server was down (what a crash in key creation leaves). */
  orphansPlanted: number;
  orphansReported: number;
  orphansCleaned: number;
  deletedKeysPurged: number;
  /** Anything lost or wrong; empty on success. */
  problems: string[];
}

type Profile = 'mixed' | 'creation' | 'rotation' | 'deletion';

interface KeyEntry {
  keyId: string;
  keyTag: string;
  spec: 'AES_256' | 'RSA_2048';
  /** live: usable; doomed: deletion was requested (its ciphertexts are no longer the client's to expect). */
  state: 'live' | 'doomed' | 'deleted';
}

interface Issued {
  readonly key: KeyEntry;
  readonly dialect: 'ncp' | 'huawei';
  readonly ciphertext: string;
  readonly plaintext: string;
}

/** mulberry32: small, seedable, good enough to pick operations and kill times reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runCrashScenario(opts: CrashOptions): Promise<CrashReport> {
  const rnd = prng(opts.seed);
  const pick = <T>(xs: readonly T[]): T | undefined => (xs.length ? xs[Math.floor(rnd() * xs.length)] : undefined);
  const report: CrashReport = {
    seed: opts.seed,
    rounds: 0,
    kills: 0,
    profiles: {},
    requests: 0,
    byCode: {},
    keysCreated: 0,
    keysChecked: 0,
    versionsChecked: 0,
    ciphertextsIssued: 0,
    ciphertextsRedecrypted: 0,
    orphansPlanted: 0,
    orphansReported: 0,
    orphansCleaned: 0,
    deletedKeysPurged: 0,
    problems: [],
  };
  const env = { KMS_ORPHAN_GRACE_MS: '1000', KMS_SWEEP_INTERVAL_MS: '200', KMS_RATE_LIMIT: '1000000' };
  let server = await TestServer.start(env);
  const dataDir = server.dataDir;
  const dbPath = path.join(dataDir, 'p11kms.db');
  const token = server.token('p1', true);
  // SoftHSM caches a token's object list per process; a fresh view per check reads what is on disk.
  let view = new TokenView(server);
  const keys: KeyEntry[] = [];
  const issued: Issued[] = [];
  let seq = 0;

  /** Successful answers so far. */
  let answered = 0;
  const count = (r: Reply | undefined) => {
    report.requests++;
    if (r && r.status < 300) answered++;
    const code = r === undefined ? 'connection-error' : `${r.status} ${r.body?.code ?? r.body?.error?.error_code ?? ''}`.trim();
    report.byCode[code] = (report.byCode[code] ?? 0) + 1;
    if (r && r.status >= 500 && r.status !== 503) report.problems.push(`HTTP ${r.status} during load: ${r.text.slice(0, 200)}`);
  };
  const send = async (method: string, p: string, body?: unknown): Promise<Reply | undefined> => {
    const headers = p.startsWith('/kms/') ? { 'x-ncp-ocapi-token': token } : { 'X-Auth-Token': token };
    try {
      const r = await server.request(method, p, { headers, ...(body === undefined ? {} : { body }) });
      count(r);
      return r;
    } catch {
      count(undefined);
      return undefined;
    }
  };
  const ids = (where: string, value: string): { keyId: string; keyTag: string } | undefined => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(`SELECT key_id AS keyId, key_tag AS keyTag FROM keys WHERE ${where} = ?`).get(value) as { keyId: string; keyTag: string } | undefined;
    } finally {
      db.close();
    }
  };

  const ops: Array<[number, () => Promise<void>]> = [
    [
      12,
      async () => {
        const alias = `k${opts.seed}-${seq++}`;
        const rsa = rnd() < 0.2;
        const viaNcp = rnd() < 0.5;
        const r = viaNcp
          ? await send('POST', '/kms/v1/keys', { keyName: alias, keyType: rsa ? 'RSA2048' : 'AES256' })
          : await send('POST', '/v1.0/p1/kms/create-key', { key_alias: alias, ...(rsa ? { key_spec: 'RSA_2048' } : {}) });
        if (r?.status !== 200) return;
        const found = viaNcp ? ids('key_tag', r.body.data.keyTag) : ids('key_id', r.body.key_info.key_id);
        if (!found) return void report.problems.push(`created key ${alias} is not in the store`);
        keys.push({ ...found, spec: rsa ? 'RSA_2048' : 'AES_256', state: 'live' });
        report.keysCreated++;
      },
    ],
    [
      8,
      async () => {
        const k = pick(keys.filter((x) => x.state === 'live' && x.spec === 'AES_256'));
        if (k) await send('POST', `/kms/v1/keys/${k.keyTag}/rotate`);
      },
    ],
    [
      40,
      async () => {
        const k = pick(keys.filter((x) => x.state === 'live'));
        if (!k) return;
        const plaintext = randomBytes(1 + Math.floor(rnd() * 64)).toString('base64');
        if (rnd() < 0.5) {
          const r = await send('POST', `/kms/v1/keys/${k.keyTag}/encrypt`, { plaintext });
          if (r?.status === 200) issued.push({ key: k, dialect: 'ncp', ciphertext: r.body.data.ciphertext, plaintext });
        } else {
          const r = await send('POST', '/v1.0/p1/kms/encrypt-data', { key_id: k.keyId, plain_text: plaintext });
          if (r?.status === 200) issued.push({ key: k, dialect: 'huawei', ciphertext: r.body.cipher_text, plaintext });
        }
      },
    ],
    [
      15,
      async () => {
        const c = pick(issued.filter((i) => i.key.state === 'live'));
        if (c) await decrypt(c);
      },
    ],
    [
      5,
      async () => {
        const k = pick(keys.filter((x) => x.state === 'live'));
        if (!k) return;
        k.state = 'doomed'; // from the moment it is asked: the client no longer expects to decrypt under it
        const r = await send('POST', '/v1.0/p1/kms/schedule-key-deletion', { key_id: k.keyId, pending_days: '7' });
        if (r?.status === 200 && rnd() < 0.6) {
          const d = await send('DELETE', `/kms/v1/keys/${k.keyTag}`);
          if (d?.status === 200) k.state = 'deleted';
        }
      },
    ],
  ];
  // Each round stresses one phase, so kills land inside it: ops are [create, rotate, encrypt, decrypt, delete].
  const PROFILES: Readonly<Record<Profile, readonly number[]>> = {
    mixed: [12, 8, 40, 15, 5],
    creation: [80, 0, 15, 5, 0],
    rotation: [5, 70, 15, 10, 0],
    deletion: [25, 0, 15, 5, 55],
  };
  let weights: readonly number[] = PROFILES.mixed;
  const oneOp = async () => {
    let x = rnd() * weights.reduce((n, w) => n + w, 0);
    for (let i = 0; i < ops.length; i++) {
      if ((x -= weights[i] ?? 0) < 0) return ops[i]![1]();
    }
  };
  async function decrypt(c: Issued): Promise<Reply | undefined> {
    return c.dialect === 'ncp'
      ? send('POST', `/kms/v1/keys/${c.key.keyTag}/decrypt`, { ciphertext: c.ciphertext })
      : send('POST', '/v1.0/p1/kms/decrypt-data', { cipher_text: c.ciphertext });
  }

  const check = async (last: boolean) => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    let rows: Array<{ key_id: string; state: string; purged: number }>;
    let versions: Array<{ key_id: string; version: number; state: string }>;
    try {
      rows = db.prepare(`SELECT key_id, state, purged FROM keys`).all() as typeof rows;
      versions = db.prepare(`SELECT key_id, version, state FROM key_versions`).all() as typeof versions;
    } finally {
      db.close();
    }
    const keyState = new Map(rows.map((r) => [r.key_id, r.state]));
    const live = new Set(versions.filter((v) => keyState.get(v.key_id) !== 'Deleted').map((v) => `${v.key_id}/${v.version}`));
    const needed = versions.filter((v) => v.state !== 'Creating' && keyState.get(v.key_id) !== 'Deleted');

    view.close();
    view = new TokenView(server);
    // 1. What the store lists exists on the token, right after the restart.
    const onToken = new Set(view.allObjects().map((o) => `${o.keyId}/${o.version}`));
    report.keysChecked += new Set(needed.map((v) => v.key_id)).size;
    for (const v of needed) {
      report.versionsChecked++;
      if (!onToken.has(`${v.key_id}/${v.version}`)) report.problems.push(`LOST: key ${v.key_id} version ${v.version} is listed but has no token object`);
    }

    // 2. Orphans (no row, a Deleted key's, or a half-made rotation's) are reported, then cleaned.
    const orphanNow = () => {
      const creating = new Set(versions.filter((v) => v.state === 'Creating').map((v) => `${v.key_id}/${v.version}`));
      return [...new Set(view.allObjects().map((o) => `${o.keyId}/${o.version}`))].filter((k) => !live.has(k) || creating.has(k));
    };
    const orphans = orphanNow();
    if (orphans.length) {
      report.orphansReported += orphans.length;
      const deadline = Date.now() + 8000;
      let left = orphans;
      while (left.length && Date.now() < deadline) {
        await sleep(250);
        const still = new Set(orphanNow());
        left = orphans.filter((o) => still.has(o));
      }
      report.orphansCleaned += orphans.length - left.length;
      if (left.length) report.problems.push(`orphans not cleaned after the grace period: ${left.join(', ')}`);
      // Objects of a key the store has never heard of can only be found by reconciliation: it must say so.
      if (orphans.some((o) => !keyState.has(o.split('/')[0]!)) && !/orphan token object found/.test(server.logs())) {
        report.problems.push('orphans were not reported in the log');
      }
    }
    report.deletedKeysPurged = rows.filter((r) => r.state === 'Deleted').length;

    // 3. Every ciphertext a client got still decrypts (a key whose deletion request was cut off by the kill is restored first).
    for (const k of keys.filter((x) => x.state === 'live')) {
      const st = keyState.get(k.keyId);
      if (st === 'PendingDeletion') await send('POST', '/v1.0/p1/kms/cancel-key-deletion', { key_id: k.keyId });
      if (st === 'PendingDeletion' || st === 'Disabled') await send('POST', '/v1.0/p1/kms/enable-key', { key_id: k.keyId });
      if (st === undefined || st === 'Deleted') report.problems.push(`LOST: key ${k.keyId} was created for a client and is ${st ?? 'gone from the store'}`);
    }
    if (/has no token object/.test(server.logs())) report.problems.push('the server reports key versions without token objects');
    const candidates = issued.filter((i) => i.key.state === 'live');
    const sample = last || candidates.length <= opts.checkPerRound ? candidates : candidates.sort(() => rnd() - 0.5).slice(0, opts.checkPerRound);
    for (const c of sample) {
      const r = await decrypt(c);
      report.ciphertextsRedecrypted++;
      const got = r?.status === 200 ? (c.dialect === 'ncp' ? r.body.data.plaintext : r.body.plain_text) : undefined;
      if (got !== c.plaintext) report.problems.push(`LOST: a ${c.dialect} ciphertext under ${c.key.keyId} no longer decrypts (HTTP ${r?.status ?? 'none'})`);
    }
  };

  try {
    for (let round = 1; round <= opts.rounds; round++) {
      report.rounds = round;
      const [lo, hi] = opts.loadMs;
      const killAt = lo + rnd() * (hi - lo);
      const profile = (['mixed', 'creation', 'rotation', 'deletion'] as const)[(round - 1) % 4]!;
      weights = PROFILES[profile];
      report.profiles[profile] = (report.profiles[profile] ?? 0) + 1;
      let stop = false;
      const workers = Array.from({ length: opts.concurrency }, async () => {
        while (!stop) await oneOp();
      });
      // A random time, but never before some of the load got through: on a loaded machine a
      // whole window can pass before the first answer, and a round would then test nothing.
      const answeredBefore = answered;
      await sleep(killAt);
      await until('some answers before the kill', () => answered - answeredBefore >= opts.concurrency, { everyMs: 10 });
      await server.kill('SIGKILL');
      report.kills++;
      stop = true;
      await Promise.all(workers);
      // A kill rarely lands in the sub-millisecond gap between "objects made" and "row written";
      // every other round also leaves exactly that residue by hand: objects of an unknown key, and
      // objects of a version a live key never got.
      if (round % 2 === 0) {
        view.plantOrphan(randomUUID(), 1);
        const k = pick(keys.filter((x) => x.state === 'live'));
        if (k) view.plantOrphan(k.keyId, 1000 + round);
        report.orphansPlanted += k ? 2 : 1;
      }
      const before = report.problems.length;
      server = await TestServer.start(env, dataDir);
      await check(round === opts.rounds);
      opts.log(
        `round ${round} (${profile}): killed after ${Math.round(killAt)} ms; keys ${keys.length}, ciphertexts ${issued.length}, problems ${report.problems.length - before}`,
      );
    }
  } finally {
    report.ciphertextsIssued = issued.length;
    view.close();
    await server.stop();
  }
  return report;
}

export function formatReport(r: CrashReport): string {
  const codes = Object.entries(r.byCode)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `    ${k.padEnd(40)} ${v}`)
    .join('\n');
  return [
    `seed ${r.seed}: ${r.rounds} rounds (${Object.entries(r.profiles).map(([k, v]) => `${k} ×${v}`).join(', ')}), ${r.kills} kills (SIGKILL), ${r.requests} requests`,
    `  responses by code:\n${codes}`,
    `  keys created ${r.keysCreated}; key checks ${r.keysChecked}, version checks ${r.versionsChecked} (store row ⇒ token objects)`,
    `  ciphertexts issued ${r.ciphertextsIssued}, re-decrypted after restarts ${r.ciphertextsRedecrypted}`,
    `  orphan versions found after restarts ${r.orphansReported} (${r.orphansPlanted} of them planted), cleaned ${r.orphansCleaned}; keys deleted (rows kept, objects gone) ${r.deletedKeysPurged}`,
    `  lost or wrong: ${r.problems.length === 0 ? 'nothing' : `\n    ${r.problems.join('\n    ')}`}`,
  ].join('\n');
}
