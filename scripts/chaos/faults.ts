/**
 * The HSM-fault scenario of `npm run chaos`: the service's runtime in this process with its module
 * wrapped in the fault-injecting proxy (test/helpers/fault-binding.ts), the app on port 0, a mixed
 * load in both dialects, and every few hundred milliseconds one fault: all sessions closed under
 * the service (real), a logout (real), single injected CKRs, or an outage of random length. At the
 * end every ciphertext issued must still decrypt, /healthz must be 200 and no session may be leaked.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createApp } from '../../src/api/app';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import { openRuntime } from '../../src/runtime';
import { FaultInjector } from '../../test/helpers/fault-binding';
import { ROOT } from '../../test/helpers/server';

export interface FaultReport {
  seconds: number;
  faults: Record<string, number>;
  requests: number;
  byCode: Record<string, number>;
  /** Longest time a request took while the HSM was out (ms). */
  slowestOutageAnswerMs: number;
  ciphertextsIssued: number;
  ciphertextsRedecrypted: number;
  sessions: { opened: number; closed: number; dropped: number; open: number; recoveries: number };
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFaultScenario(opts: { seconds: number; concurrency: number; log: (line: string) => void }): Promise<FaultReport> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-chaos-faults-'));
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir, KMS_POOL_SIZE: '2', KMS_POOL_WAIT_MS: '300', KMS_HSM_RETRY_MAX_MS: '200' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const cli = (args: string[]) => execFileSync(process.execPath, [path.join(ROOT, 'bin/p11kms.js'), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const token = cli(['token', 'create', '--project', 'p1', '--admin']).trim();
  const ncpKey = JSON.parse(cli(['key', 'create', '--project', 'p1', '--alias', 'ncp', '--spec', 'AES_256'])) as { keyTag: string; key_id: string };
  const rsaKey = JSON.parse(cli(['key', 'create', '--project', 'p1', '--alias', 'rsa', '--spec', 'RSA_2048'])) as { keyTag: string; key_id: string };

  const config = loadConfig(env);
  // The server's own account of an internal error (metadata only: no secrets by design), to show
  // beside a 500 in the report.
  const sink = new PassThrough();
  const internal: string[] = [];
  sink.on('data', (c: Buffer) => {
    for (const line of c.toString('utf8').split('\n')) {
      if (/"message":"(hsm call failed|unexpected error)"/.test(line) && !/"class":"(token-gone|session-broken|busy)"/.test(line)) internal.push(line.slice(0, 300));
    }
  });
  const faults = new FaultInjector(config.tokenLabel);
  const runtime = openRuntime(config, createLogger('info', sink), { wrapModule: faults.wrap });
  const server = createApp(runtime.services).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const report: FaultReport = {
    seconds: opts.seconds,
    faults: {},
    requests: 0,
    byCode: {},
    slowestOutageAnswerMs: 0,
    ciphertextsIssued: 0,
    ciphertextsRedecrypted: 0,
    sessions: { opened: 0, closed: 0, dropped: 0, open: 0, recoveries: 0 },
    problems: [],
  };
  let outage = false;
  const post = async (p: string, body: unknown) => {
    const started = Date.now();
    const headers = { 'content-type': 'application/json', ...(p.startsWith('/kms/') ? { 'x-ncp-ocapi-token': token } : { 'X-Auth-Token': token }) };
    const res = await fetch(url + p, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    const parsed = JSON.parse(text) as { code?: string; error?: { error_code?: string } } & Record<string, unknown>;
    report.requests++;
    const code = `${res.status} ${parsed.code ?? parsed.error?.error_code ?? ''}`.trim();
    report.byCode[code] = (report.byCode[code] ?? 0) + 1;
    if (outage) report.slowestOutageAnswerMs = Math.max(report.slowestOutageAnswerMs, Date.now() - started);
    if (res.status >= 500 && res.status !== 503) report.problems.push(`HTTP ${res.status} ${text.slice(0, 160)}`);
    return { status: res.status, body: parsed as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  // 'datakey': a Huawei data key, plaintext as the token made it (possibly sealed ahead, KMS_DATAKEY_STOCK).
  const issued: Array<{ dialect: 'ncp' | 'huawei' | 'datakey'; tag: string; ciphertext: string; plaintext: string }> = [];
  const reopen = async (c: (typeof issued)[number]): Promise<{ status: number; plaintext: unknown }> => {
    if (c.dialect === 'ncp') {
      const r = await post(`/kms/v1/keys/${c.tag}/decrypt`, { ciphertext: c.ciphertext });
      return { status: r.status, plaintext: r.body.data?.plaintext };
    }
    if (c.dialect === 'huawei') {
      const r = await post('/v1.0/p1/kms/decrypt-data', { cipher_text: c.ciphertext });
      return { status: r.status, plaintext: r.body.plain_text };
    }
    const r = await post('/v1.0/p1/kms/decrypt-datakey', { key_id: c.tag, cipher_text: c.ciphertext, datakey_cipher_length: '32' });
    return { status: r.status, plaintext: r.body.data_key };
  };
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const x = Math.random();
      const plaintext = randomBytes(24).toString('base64');
      try {
        if (x < 0.25) {
          const tag = Math.random() < 0.8 ? ncpKey.keyTag : rsaKey.keyTag;
          const r = await post(`/kms/v1/keys/${tag}/encrypt`, { plaintext });
          if (r.status === 200) issued.push({ dialect: 'ncp', tag, ciphertext: r.body.data.ciphertext, plaintext });
        } else if (x < 0.42) {
          const r = await post('/v1.0/p1/kms/encrypt-data', { key_id: ncpKey.key_id, plain_text: plaintext });
          if (r.status === 200) issued.push({ dialect: 'huawei', tag: ncpKey.key_id, ciphertext: r.body.cipher_text, plaintext });
        } else if (x < 0.62) {
          const r = await post('/v1.0/p1/kms/create-datakey', { key_id: ncpKey.key_id, datakey_length: '256' });
          if (r.status === 200) issued.push({ dialect: 'datakey', tag: ncpKey.key_id, ciphertext: r.body.cipher_text, plaintext: r.body.plain_text });
        } else if (x < 0.85 && issued.length) {
          const c = issued[Math.floor(Math.random() * issued.length)]!;
          const r = await reopen(c);
          if (r.status === 200 && r.plaintext !== c.plaintext) report.problems.push('a decrypt returned the wrong plaintext');
          if (r.status !== 200 && r.status !== 503) report.problems.push(`a valid ciphertext was refused with ${r.status}`);
        } else if (x < 0.93) {
          // RSA signatures run off the event loop: the pool must not re-initialise under them.
          const data = randomBytes(32).toString('base64');
          const s = await post(`/kms/v1/keys/${rsaKey.keyTag}/sign`, { data });
          if (s.status === 200) {
            const v = await post(`/kms/v1/keys/${rsaKey.keyTag}/verify`, { data, signature: s.body.data.signature });
            if (v.status === 200 && v.body.data.valid !== true) report.problems.push('a signature made during faults does not verify');
          }
        } else {
          await post('/v1.0/p1/kms/gen-random', { random_data_length: '256' });
        }
      } catch (e) {
        report.problems.push(`request failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency }, worker);

  const kinds = ['close-all-sessions', 'logout', 'session-handle-invalid', 'device-error', 'user-not-logged-in', 'outage'] as const;
  const end = Date.now() + opts.seconds * 1000;
  while (Date.now() < end) {
    await sleep(200 + Math.random() * 400);
    const kind = kinds[Math.floor(Math.random() * kinds.length)]!;
    report.faults[kind] = (report.faults[kind] ?? 0) + 1;
    try {
      switch (kind) {
        case 'close-all-sessions':
          await faults.closeAllSessions();
          break;
        case 'logout':
          await faults.logout();
          break;
        case 'session-handle-invalid':
          faults.fail(['encrypt', 'decrypt', 'generateRandom', 'sealRandomOffThread'], 'CKR_SESSION_HANDLE_INVALID', 3);
          break;
        case 'device-error':
          faults.fail(['encrypt', 'decrypt', 'generateRandom', 'sealRandomOffThread'], 'CKR_DEVICE_ERROR', 2);
          break;
        case 'user-not-logged-in':
          faults.fail(['encrypt', 'decrypt', 'sealRandomOffThread'], 'CKR_USER_NOT_LOGGED_IN', 2);
          break;
        case 'outage': {
          const ms = 300 + Math.random() * 1500;
          outage = true;
          faults.outage('CKR_DEVICE_ERROR');
          await sleep(ms);
          faults.heal();
          outage = false;
          break;
        }
      }
    } catch {
      // A real fault can itself fail while the module is being re-initialised; the next one will do.
    }
  }
  faults.heal();
  stop = true;
  await Promise.all(workers);

  // Back to normal by itself, without a restart.
  const deadline = Date.now() + 10_000;
  while ((await fetch(`${url}/healthz`)).status !== 200) {
    if (Date.now() > deadline) {
      report.problems.push('/healthz did not come back to 200 after the faults stopped');
      break;
    }
    await sleep(100);
  }
  for (const c of issued) {
    const r = await reopen(c);
    report.ciphertextsRedecrypted++;
    if (r.status !== 200 || r.plaintext !== c.plaintext) {
      report.problems.push(`LOST: a ${c.dialect} ciphertext no longer decrypts (HTTP ${r.status})`);
    }
  }
  report.ciphertextsIssued = issued.length;
  // The chaos run drives the inline (softhsm2) profile, whose pool it audits.
  if (!runtime.pool) throw new Error('the chaos run needs the softhsm2 profile (an inline session pool)');
  const s = runtime.pool.stats;
  report.sessions = { opened: s.opened, closed: s.closed, dropped: s.dropped, open: s.open, recoveries: s.recoveries };
  // At most KMS_POOL_SIZE (2) lent-out sessions, plus the keeper that holds the session copies.
  if (s.busy !== 0 || s.waiting !== 0 || s.idle > 2 || s.open !== s.idle + s.keeper || s.opened - s.closed - s.dropped !== s.open) report.problems.push(`session accounting off: ${JSON.stringify(s)}`);
  opts.log(`faults: ${JSON.stringify(report.faults)}`);
  if (report.problems.length > 0) for (const line of internal.slice(0, 10)) report.problems.push(`server log: ${line}`);

  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
  return report;
}

export function formatFaultReport(r: FaultReport): string {
  const codes = Object.entries(r.byCode)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `    ${k.padEnd(40)} ${v}`)
    .join('\n');
  return [
    `${r.seconds} s of HSM faults: ${Object.entries(r.faults).map(([k, v]) => `${k} ×${v}`).join(', ')}`,
    `  ${r.requests} requests; responses by code:\n${codes}`,
    `  slowest answer during an outage ${r.slowestOutageAnswerMs} ms`,
    `  sessions opened ${r.sessions.opened}, closed ${r.sessions.closed}, dropped with a re-initialised module ${r.sessions.dropped}, open at the end ${r.sessions.open}; module re-initialisations ${r.sessions.recoveries}`,
    `  ciphertexts issued ${r.ciphertextsIssued}, re-decrypted at the end ${r.ciphertextsRedecrypted}`,
    `  lost or wrong: ${r.problems.length === 0 ? 'nothing' : `\n    ${[...new Set(r.problems)].slice(0, 30).join('\n    ')}`}`,
  ].join('\n');
}
