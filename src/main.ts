/** The server: config → runtime → self-test → listen; SIGTERM/SIGINT stop accepting, drain and close. */
import type { AddressInfo } from 'node:net';
import { createApp } from './api/app';
import { ConfigError, loadConfig } from './config/load';
import { HsmError } from './hsm/binding';
import { createLogger, type Logger } from './log/logger';
import { openRuntime } from './runtime';
import { startSweeper } from './kms/sweeper';

const DRAIN_MS = 10_000;

async function main(): Promise<void> {
  let log: Logger = createLogger('info');
  try {
    const config = loadConfig();
    log = createLogger(config.logLevel);
    const runtime = openRuntime(config, log);
    // Refuse to serve until one session works end to end.
    if (!(await runtime.services.healthy())) throw new Error('HSM self-test failed: no working session');
    const sweeper = startSweeper(runtime.services.keys, config.sweepIntervalMs, log);
    const server = createApp(runtime.services).listen(config.port, config.host, () => {
      const { port } = server.address() as AddressInfo;
      log.info('listening', { host: config.host, port, dataDir: config.dataDir, tokenLabel: config.tokenLabel });
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      log.error('cannot listen', { code: e.code ?? 'unknown', host: config.host, port: config.port });
      sweeper.stop();
      runtime.close();
      process.exit(1);
    });
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal });
      const force = setTimeout(() => server.closeAllConnections(), DRAIN_MS).unref();
      sweeper.stop();
      server.close(() => {
        clearTimeout(force);
        runtime.close();
        log.info('stopped');
        process.exit(0);
      });
      server.closeIdleConnections();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  } catch (e) {
    if (e instanceof ConfigError) log.error('configuration error', { message: e.message });
    else if (e instanceof HsmError) log.error('cannot open the HSM token', { ckr: e.ckrName, method: e.method });
    else log.error('start-up failed', { error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
}

void main();
