/**
 * The server: config → runtime → self-test → listen; SIGTERM/SIGINT stop accepting, drain and close.
 * With KMS_WORKERS > 1 the process forks that many workers that each do all of this (cluster.ts).
 */
import cluster from 'node:cluster';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createApp } from './api/app';
import { inFlight } from './in-flight';
import { createServer, openEdge } from './transport';
import { ConfigError, loadConfig } from './config/load';
import { DataDirLocked, lockDataDir } from './data-dir-lock';
import { createLogger, type Logger } from './log/logger';
import { exitProcess } from './hsm';
import { openRuntime, openStore, type Runtime } from './runtime';
import { RATE_LIMIT_TABLE } from './store/pg-migrations';
import { PgStore } from './store/postgres';
import { startSweeper } from './kms/sweeper';
import { isClusterPrimary, runPrimary, runsSweeper, workerSlot } from './cluster';
import { openServiceMetrics, serveClusterMetrics } from './metrics/process-metrics';
import { timedModule } from './metrics/token-calls';

const DRAIN_MS = 10_000;

async function main(): Promise<void> {
  let log: Logger = createLogger('info');
  try {
    const config = loadConfig();
    log = createLogger(config.logLevel);
    // One server per data dir and node id: the primary (or the single process) holds the lock for
    // itself and its workers until it exits.
    if (cluster.isPrimary) {
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      const unlock = lockDataDir(config.dataDir, config.nodeId);
      process.on('exit', unlock);
    }
    // KMS_WORKERS > 1: this process only forks and supervises; each worker runs the rest of main().
    if (isClusterPrimary(config.workers)) {
      await openStore(config).close(); // migrate the store once, before workers could race to do it
      runPrimary(config.workers, log);
      serveClusterMetrics(config, log);
      return;
    }
    // The metrics exist before the runtime (they time its token calls) and read it once it is there.
    const opened: { runtime?: Runtime } = {};
    const metrics = openServiceMetrics(config, log, workerSlot() !== undefined, () => opened.runtime);
    const runtime = openRuntime(config, log, {
      reconcileOnConnect: runsSweeper(),
      learnHandlesOnConnect: true,
      ...(metrics ? { wrapModule: timedModule(metrics), observeCall: (op, s, ckr) => metrics.tokenCall(op, s, ckr) } : {}),
    });
    opened.runtime = runtime;
    // A token that can't be used at all (module, label, PIN) ends the process with one line saying why.
    const fatal = await runtime.started;
    if (fatal) {
      log.error(`cannot use the HSM token: ${fatal}`);
      runtime.close();
      exitProcess(1);
      return;
    }
    // Self-test: one session works end to end. Without it the service still listens (every HSM call
    // answers 503, /healthz says why) and becomes ready by itself when the token appears.
    if (!(await runtime.services.healthy())) {
      log.warn('HSM not reachable at start-up; serving 503 until it is', { reason: runtime.services.healthReason?.() ?? '' });
    }
    const sweeper = runsSweeper() ? startSweeper(runtime.services.keys, config.sweepIntervalMs, log) : { stop() {} };
    // Audit trail, rate limits, access log, TLS/mTLS (transport.ts, docs/security.md).
    const edge = openEdge(config, runtime.auditKey, log, runtime.store instanceof PgStore ? { pool: runtime.store.sharedPool, table: RATE_LIMIT_TABLE } : undefined, metrics);
    const server = createServer(createApp(runtime.services, edge), config).listen(config.port, config.host, () => {
      const { port } = server.address() as AddressInfo;
      // Whether data keys exist before their requests is the operator's to know (README, Security model).
      log.info('listening', { host: config.host, port, dataDir: config.dataDir, tokenLabel: config.tokenLabel, dataKeyStock: runtime.stock ? config.dataKeyStock : 0 });
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      log.error('cannot listen', { code: e.code ?? 'unknown', host: config.host, port: config.port });
      sweeper.stop();
      runtime.close();
      process.exit(1);
    });
    let stopping = false;
    // Graceful stop: no new connections, in-flight requests finish (cut after the grace period),
    // the sweeper's running pass finishes, then sessions are closed, C_Finalize, exit 0.
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal });
      const force = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs ?? DRAIN_MS).unref();
      // Keep-alive connections become idle once their request is answered: close them as they do.
      const idle = setInterval(() => server.closeIdleConnections(), 50).unref();
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      void Promise.all([drained, Promise.resolve(sweeper.stop())]).then(async () => {
        // A handler whose client went away is still at work after its connection closed (in-flight.ts).
        let graceTimer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, config.shutdownGraceMs ?? DRAIN_MS)));
        await Promise.race([inFlight.idle(), graceOver]);
        clearTimeout(graceTimer);
        // Every answer waited for its audit record; write whatever is still queued (the counts of
        // failed authentications too), then close.
        await edge.failedAuth?.close();
        await edge.audit?.close().catch((e: unknown) => log.error('audit log could not be flushed', { error: e instanceof Error ? e.message : 'unknown' }));
        clearTimeout(force);
        clearInterval(idle);
        await runtime.close();
        log.info('stopped', { signal });
        // Once the log lines written so far are out, and without waiting for a token call that never returns.
        exitProcess(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  } catch (e) {
    if (e instanceof ConfigError) log.error('configuration error', { message: e.message });
    else if (e instanceof DataDirLocked) log.error('data dir locked', { message: e.message, pid: e.pid });
    else log.error('start-up failed', { error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
}

void main();
