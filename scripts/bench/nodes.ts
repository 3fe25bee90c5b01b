/**
 * The several-nodes rows of the benchmark: create-datakey on one node with SQLite, on one node with
 * PostgreSQL, and on two nodes (one data dir and token, one database) driven at once. Same data
 * dir, key and connection count for all three, so the ratios within the run are what to compare:
 * PostgreSQL ÷ SQLite on one node, and two nodes ÷ one node on PostgreSQL.
 *
 * PostgreSQL is the test suite's throw-away server (test/helpers/postgres.ts), on a unix socket.
 */
import { TestPostgres } from '../../test/helpers/postgres';
import { drive, type LoadResult, type Target } from './load';
import { cli, newDataDir, removeDataDir, Server, type DataDir } from './server';

export interface NodesReport {
  readonly connections: number;
  readonly seconds: number;
  readonly sqlite1: LoadResult;
  readonly pg1: LoadResult;
  /** Each node's result when both were driven at once. */
  readonly pg2: readonly [LoadResult, LoadResult];
  /** PostgreSQL ÷ SQLite, one node. */
  readonly pgOverSqlite: number;
  /** Two nodes (summed) ÷ one node, PostgreSQL. */
  readonly twoOverOne: number;
}

const PROJECT = 'bench';
let made = 0;

function target(admin: string, keyId: string): Target {
  return {
    name: 'create-datakey',
    method: 'POST',
    path: `/v1.0/${PROJECT}/kms/create-datakey`,
    headers: { 'x-auth-token': admin },
    body: JSON.stringify({ key_id: keyId, datakey_length: '512' }),
    expectStatus: 200,
  };
}

/** Token and key made with the documented CLI in the store `env` points at. */
function credentials(d: DataDir, env: Record<string, string>): { admin: string; keyId: string } {
  const withEnv: DataDir = { dir: d.dir, env: { ...d.env, ...env } };
  const admin = cli(withEnv, ['token', 'create', '--project', PROJECT, '--admin']).trim();
  const key = JSON.parse(cli(withEnv, ['key', 'create', '--project', PROJECT, '--alias', `nodes-${made++}`, '--spec', 'AES_256'])) as { key_id: string };
  return { admin, keyId: key.key_id };
}

export async function benchNodes(o: { seconds: number; warmup: number; connections: number }, log: (m: string) => void): Promise<NodesReport> {
  const d = newDataDir();
  const db = TestPostgres.start();
  const servers: Server[] = [];
  try {
    const one = async (env: Record<string, string>): Promise<LoadResult> => {
      const { admin, keyId } = credentials(d, env);
      const s = await Server.start(d, 1, env);
      servers.push(s);
      const t = target(admin, keyId);
      if (o.warmup > 0) await drive(s.url, t, { connections: o.connections, seconds: o.warmup });
      const r = await drive(s.url, t, { connections: o.connections, seconds: o.seconds });
      await s.stop();
      servers.pop();
      return r;
    };
    const sqlite1 = await one({});
    log(`  1 node SQLite      ${sqlite1.reqPerSec.toFixed(0)} req/s`);
    const url = await db.createDatabase('bench');
    const pg1 = await one({ KMS_DB: url, KMS_NODE_ID: 'a' });
    log(`  1 node PostgreSQL  ${pg1.reqPerSec.toFixed(0)} req/s`);

    const { admin, keyId } = credentials(d, { KMS_DB: url });
    const a = await Server.start(d, 1, { KMS_DB: url, KMS_NODE_ID: 'a' });
    servers.push(a);
    const b = await Server.start(d, 1, { KMS_DB: url, KMS_NODE_ID: 'b' });
    servers.push(b);
    const t = target(admin, keyId);
    // The same total connections as one node, split between the two.
    const half = Math.max(1, Math.round(o.connections / 2));
    if (o.warmup > 0) await Promise.all([a, b].map((s) => drive(s.url, t, { connections: half, seconds: o.warmup })));
    const [ra, rb] = await Promise.all([a, b].map((s) => drive(s.url, t, { connections: half, seconds: o.seconds })));
    log(`  2 nodes PostgreSQL ${(ra!.reqPerSec + rb!.reqPerSec).toFixed(0)} req/s (${ra!.reqPerSec.toFixed(0)} + ${rb!.reqPerSec.toFixed(0)})`);
    return {
      connections: o.connections,
      seconds: o.seconds,
      sqlite1,
      pg1,
      pg2: [ra!, rb!],
      pgOverSqlite: pg1.reqPerSec / sqlite1.reqPerSec,
      twoOverOne: (ra!.reqPerSec + rb!.reqPerSec) / pg1.reqPerSec,
    };
  } finally {
    for (const s of servers) await s.stop().catch(() => null);
    db.destroy();
    removeDataDir(d);
  }
}

/** The report's lines for these rows. */
export function nodesTable(r: NodesReport): string[] {
  const row = (name: string, x: LoadResult) => `  ${name.padEnd(26)}${x.reqPerSec.toFixed(0).padStart(8)} req/s  p50 ${x.latencyMs.p50.toFixed(2)} ms  p99 ${x.latencyMs.p99.toFixed(2)} ms`;
  const [a, b] = r.pg2;
  return [
    `Several nodes: create-datakey, ${r.connections} connections, ${r.seconds} s (one data dir and SoftHSM token; PostgreSQL on a unix socket)`,
    row('1 node, SQLite', r.sqlite1),
    row('1 node, PostgreSQL', r.pg1),
    `  ${'2 nodes, PostgreSQL'.padEnd(26)}${(a.reqPerSec + b.reqPerSec).toFixed(0).padStart(8)} req/s  (${a.reqPerSec.toFixed(0)} + ${b.reqPerSec.toFixed(0)})`,
    `  PostgreSQL ÷ SQLite (1 node) ${r.pgOverSqlite.toFixed(2)}; 2 nodes ÷ 1 node (PostgreSQL) ${r.twoOverOne.toFixed(2)}`,
  ];
}
