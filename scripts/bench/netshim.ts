/**
 * `npm run bench`, network HSM rows: the same server (KMS_TOKEN_PROFILE=generic: every token call
 * on a session thread) through netshim (shared/tools/netshim) at 0, 200 µs and 1 ms per PKCS#11
 * call, in one run, so that the ratios compare like with like. The delays are measured in rounds whose
 * order rotates (a fresh server per cell set), and the table holds each figure's median over the
 * rounds: a single 0-µs cell drifts by more than the effect being judged.
 *
 *   - create-datakey and decrypt-datakey at 64 connections (target: ≥ 0.8 × the 0-µs rate at 1 ms);
 *   - describe-key at 4 connections while create-datakey saturates 64 more (target: p50 ≤ 1.5 ×
 *     the 0-µs figure at 1 ms);
 *   - the partition check: the token silent for 6 s (netshim's hang file): /livez (target ≤ 100 ms),
 *     /healthz (503 within 3 s), a create-datakey (503 within the deadline + 1 s), and the time to
 *     the first success after it answers again (≤ 5 s).
 *
 * Run by `npm run bench` after its other sections (`--no-netshim` leaves it out, `--netshim-only`
 * runs only this), or alone: node dist/scripts/bench/netshim.js [--seconds N]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { drive, type LoadResult, type Target } from './load';
import { median } from './stats';
import { cli, newDataDir, removeDataDir, ROOT, Server } from './server';

const PROJECT = 'bench';
const DELAYS_US = [0, 200, 1000] as const;
const ROUNDS = 3;
const CALL_TIMEOUT_MS = 2000;

const log = (m: string) => process.stderr.write(`[bench:netshim] ${m}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function netshim(): string {
  const dirs = [path.join(ROOT, '../shared/tools/netshim'), path.join(ROOT, '../../shared/tools/netshim')];
  const dir = dirs.find((d) => existsSync(path.join(d, 'build')));
  if (!dir) throw new Error(`netshim not found in ${dirs.join(' or ')}`);
  const out = mkdtempSync(path.join(tmpdir(), 'p11kms-netshim-'));
  return execFileSync('bash', [path.join(dir, 'build'), out], { encoding: 'utf8' }).trim().split('\n').pop()!;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; out: T }> {
  const start = performance.now();
  const out = await fn();
  return { ms: performance.now() - start, out };
}

interface Row {
  delayUs: number;
  createDatakey: LoadResult;
  decryptDatakey: LoadResult;
  describeAlone: LoadResult;
  describeUnderLoad: LoadResult;
}

/** One delay's figures: the median over the rounds of each cell's req/s and p50. */
interface Medians {
  delayUs: number;
  createDatakey: { reqPerSec: number; p50Ms: number };
  decryptDatakey: { reqPerSec: number; p50Ms: number };
  describeAlone: { p50Ms: number };
  describeUnderLoad: { p50Ms: number };
}

function medians(delayUs: number, rounds: readonly Row[]): Medians {
  const p50 = (cell: (r: Row) => LoadResult) => median(rounds.map((r) => cell(r).latencyMs.p50));
  const of = (cell: (r: Row) => LoadResult) => ({ reqPerSec: median(rounds.map((r) => cell(r).reqPerSec)), p50Ms: p50(cell) });
  return {
    delayUs,
    createDatakey: of((r) => r.createDatakey),
    decryptDatakey: of((r) => r.decryptDatakey),
    describeAlone: { p50Ms: p50((r) => r.describeAlone) },
    describeUnderLoad: { p50Ms: p50((r) => r.describeUnderLoad) },
  };
}

/** Runs the section; returns its report (markdown table and verdicts) and the errors seen. */
export async function networkHsmSection(seconds: number): Promise<{ text: string; failures: string[] }> {
  const shim = netshim();
  const d = newDataDir();
  const hangFile = path.join(d.dir, 'partition');
  const rows: Row[] = [];
  const failures: string[] = [];
  try {
    const admin = cli(d, ['token', 'create', '--project', PROJECT, '--admin']).trim();
    const key = JSON.parse(cli(d, ['key', 'create', '--project', PROJECT, '--alias', 'netshim', '--spec', 'AES_256'])) as { key_id: string };
    const hw = { 'x-auth-token': admin };
    const H = (action: string) => `/v1.0/${PROJECT}/kms/${action}`;
    const through = (delayUs: number): Record<string, string> => ({
      KMS_PKCS11_MODULE: shim,
      KMS_TOKEN_PROFILE: 'generic',
      KMS_PIN_FILE: path.join(d.dir, 'token.pin'),
      SOFTHSM2_CONF: path.join(d.dir, 'softhsm2.conf'),
      NETSHIM_DELAY_US: String(delayUs),
      NETSHIM_HANG_FILE: hangFile,
      KMS_HSM_CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
    });
    const describe: Target = { name: 'describe-key', method: 'POST', path: H('describe-key'), headers: hw, body: JSON.stringify({ key_id: key.key_id }), expectStatus: 200 };
    const create: Target = { name: 'create-datakey', method: 'POST', path: H('create-datakey'), headers: hw, body: JSON.stringify({ key_id: key.key_id, datakey_length: '512' }), expectStatus: 200 };

    const order = (round: number) => DELAYS_US.map((_, i) => DELAYS_US[(i + round) % DELAYS_US.length]!);
    for (let round = 0; round < ROUNDS; round++) for (const delayUs of order(round)) {
      log(`round ${round + 1}/${ROUNDS}, netshim at ${delayUs} µs per call: starting the server (generic profile)`);
      const server = await Server.start(d, 1, through(delayUs));
      try {
        const made = await (await fetch(server.url + create.path, { method: 'POST', headers: { 'content-type': 'application/json', ...hw }, body: create.body! })).json() as { cipher_text: string };
        const decrypt: Target = {
          name: 'decrypt-datakey',
          method: 'POST',
          path: H('decrypt-datakey'),
          headers: hw,
          body: JSON.stringify({ key_id: key.key_id, cipher_text: made.cipher_text, datakey_cipher_length: '64' }),
          expectStatus: 200,
        };
        await drive(server.url, create, { connections: 64, seconds: 2 }); // warm-up: sessions opened, handles found
        const createDatakey = await drive(server.url, create, { connections: 64, seconds });
        const decryptDatakey = await drive(server.url, decrypt, { connections: 64, seconds });
        const describeAlone = await drive(server.url, describe, { connections: 4, seconds });
        const [describeUnderLoad] = await Promise.all([drive(server.url, describe, { connections: 4, seconds }), drive(server.url, create, { connections: 64, seconds })]);
        rows.push({ delayUs, createDatakey, decryptDatakey, describeAlone, describeUnderLoad: describeUnderLoad! });
        for (const r of [createDatakey, decryptDatakey, describeAlone, describeUnderLoad!]) if (r.errors || r.unexpected) failures.push(`${delayUs} µs: ${r.errors} errors, ${r.unexpected} unexpected ${JSON.stringify(r.statusCodes)}`);
        log(`${delayUs} µs: create-datakey ${createDatakey.reqPerSec.toFixed(0)}/s, decrypt-datakey ${decryptDatakey.reqPerSec.toFixed(0)}/s, describe-key p50 ${describeUnderLoad!.latencyMs.p50.toFixed(2)} ms under load`);
      } finally {
        await server.stop();
      }
    }

    // The partition check, at 200 µs per call.
    log('partition: the token silent for 6 s');
    const server = await Server.start(d, 1, through(200));
    const partition: Record<string, number | string> = {};
    try {
      await drive(server.url, create, { connections: 8, seconds: 1 });
      writeFileSync(hangFile, '');
      const silentAt = Date.now();
      const datakey = timed(() => fetch(server.url + create.path, { method: 'POST', headers: { 'content-type': 'application/json', ...hw }, body: create.body! }));
      let livezMax = 0;
      const healthz = timed(() => fetch(server.url + '/healthz'));
      while (Date.now() - silentAt < 6000) {
        const t = await timed(() => fetch(server.url + '/livez'));
        livezMax = Math.max(livezMax, t.ms);
        await sleep(100);
      }
      const [h, c] = await Promise.all([healthz, datakey]);
      rmSync(hangFile);
      const healed = Date.now();
      let recoveredMs = -1;
      while (Date.now() - healed < 30_000) {
        const r = await fetch(server.url + create.path, { method: 'POST', headers: { 'content-type': 'application/json', ...hw }, body: create.body! });
        if (r.status === 200) {
          recoveredMs = Date.now() - healed;
          break;
        }
        await sleep(50);
      }
      Object.assign(partition, {
        livezMaxMs: livezMax,
        healthzStatus: h.out.status,
        healthzMs: h.ms,
        datakeyStatus: c.out.status,
        datakeyMs: c.ms,
        retryAfter: c.out.headers.get('retry-after') ?? '(none)',
        recoveredMs,
      });
    } finally {
      rmSync(hangFile, { force: true });
      await server.stop();
    }

    // Report: medians over the rounds.
    const table = DELAYS_US.map((us) => medians(us, rows.filter((r) => r.delayUs === us)));
    const at = (us: number) => table.find((r) => r.delayUs === us)!;
    const base = at(0);
    const lines = ['| delay per call | create-datakey req/s (p50 ms) | decrypt-datakey req/s (p50 ms) | describe-key at 4 conns alone / while create-datakey runs (p50 ms) |', '|---|---|---|---|'];
    for (const r of table) {
      lines.push(
        `| ${r.delayUs} µs | ${r.createDatakey.reqPerSec.toFixed(0)} (${r.createDatakey.p50Ms.toFixed(1)}) | ${r.decryptDatakey.reqPerSec.toFixed(0)} (${r.decryptDatakey.p50Ms.toFixed(1)}) | ${r.describeAlone.p50Ms.toFixed(2)} / ${r.describeUnderLoad.p50Ms.toFixed(2)} |`,
      );
    }
    const slow = at(1000);
    const judge = (name: string, value: number, ok: boolean) => `${ok ? 'MET ' : 'MISSED'} ${name}: ${value.toFixed(2)}`;
    const verdicts = [
      judge('create-datakey at 1 ms ÷ at 0 (≥ 0.8)', slow.createDatakey.reqPerSec / base.createDatakey.reqPerSec, slow.createDatakey.reqPerSec >= 0.8 * base.createDatakey.reqPerSec),
      judge('decrypt-datakey at 1 ms ÷ at 0 (≥ 0.8)', slow.decryptDatakey.reqPerSec / base.decryptDatakey.reqPerSec, slow.decryptDatakey.reqPerSec >= 0.8 * base.decryptDatakey.reqPerSec),
      judge(
        'describe-key p50 under create-datakey, 1 ms ÷ 0 (≤ 1.5)',
        slow.describeUnderLoad.p50Ms / base.describeUnderLoad.p50Ms,
        slow.describeUnderLoad.p50Ms <= 1.5 * base.describeUnderLoad.p50Ms,
      ),
      judge('partition: /livez slowest (ms, ≤ 100)', Number(partition['livezMaxMs']), Number(partition['livezMaxMs']) <= 100),
      judge(`partition: /healthz ${partition['healthzStatus']} (ms, 503 ≤ 3000)`, Number(partition['healthzMs']), partition['healthzStatus'] === 503 && Number(partition['healthzMs']) <= 3000),
      judge(
        `partition: create-datakey ${partition['datakeyStatus']}, Retry-After ${partition['retryAfter']} (ms, 503 ≤ deadline ${CALL_TIMEOUT_MS} + 1000)`,
        Number(partition['datakeyMs']),
        partition['datakeyStatus'] === 503 && Number(partition['datakeyMs']) <= CALL_TIMEOUT_MS + 1000,
      ),
      judge('partition: first success after it answers again (ms, ≤ 5000)', Number(partition['recoveredMs']), Number(partition['recoveredMs']) >= 0 && Number(partition['recoveredMs']) <= 5000),
    ];
    const text = `\nNetwork HSM (netshim in front of SoftHSM, generic profile, 1 process, ${seconds} s per cell, medians of ${ROUNDS} rounds in rotating order)\n\n${[...lines, '', ...verdicts].join('\n')}\n`;
    const resultsDir = path.join(ROOT, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, `netshim-${new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`), JSON.stringify({ table, rounds: rows, partition, verdicts, failures }, null, 2));
    return { text, failures };
  } finally {
    removeDataDir(d);
  }
}

if (require.main === module) {
  const i = process.argv.indexOf('--seconds');
  networkHsmSection(i > 0 ? Number(process.argv[i + 1]) || 8 : 8)
    .then(({ text, failures }) => {
      process.stdout.write(text);
      if (failures.length > 0) {
        process.stdout.write(`\nFAIL:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    })
    .catch((e: unknown) => {
      process.stderr.write(`[bench:netshim] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    });
}
