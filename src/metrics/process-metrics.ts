/** Wires the metrics into a serving process and, where they are served from, the listener. */
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import type { Runtime } from '../runtime';
import { clusterSource, processRegistry, startMetricsListener } from './listener';
import { ServiceMetrics } from './service-metrics';

function listen(config: Config, source: Parameters<typeof startMetricsListener>[1], log: Logger): void {
  if (!config.metrics) return;
  // Metrics are secondary to serving keys: a port in use is logged, and the service goes on.
  startMetricsListener(config.metrics, source, log).catch((e: NodeJS.ErrnoException) =>
    log.error('cannot listen for metrics', { code: e.code ?? 'unknown', host: config.metrics?.host ?? '', port: config.metrics?.port ?? 0 }),
  );
}

/** The primary of several workers serves their metrics, summed. */
export function serveClusterMetrics(config: Config, log: Logger): void {
  listen(config, clusterSource(), log);
}

/**
 * A serving process's metrics (undefined when KMS_METRICS_ADDR=off). `runtime` is read at scrape
 * time: the metrics exist before the runtime, which times its token calls through them.
 */
export function openServiceMetrics(config: Config, log: Logger, worker: boolean, runtime: () => Runtime | undefined): ServiceMetrics | undefined {
  if (!config.metrics) return undefined;
  const registry = processRegistry(worker);
  const metrics = new ServiceMetrics(
    {
      // The token's report, not its pool: the session threads of the nss and generic profiles have none.
      pool: () => {
        const s = runtime()?.token.report().sessions;
        return { inUse: s?.busy ?? 0, waiting: s?.waiting ?? 0, size: config.poolSize };
      },
      tokenUp: () => runtime()?.token.status.up ?? false,
      keyCounts: async () => (await runtime()?.store.keyCounts()) ?? {},
    },
    config.metricsProjectLabel,
    registry,
  );
  if (!worker) listen(config, { metrics: () => registry.metrics(), contentType: registry.contentType }, log);
  return metrics;
}
