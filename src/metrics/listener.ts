/**
 * The metrics listener (KMS_METRICS_ADDR, default 127.0.0.1:9464): GET /metrics in Prometheus' text
 * format, on its own port so that it is never exposed with the API. With several processes it runs
 * in the primary and sums the workers' metrics (prom-client's AggregatorRegistry asks each worker
 * over the cluster channel).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, collectDefaultMetrics, register, type Registry } from 'prom-client';
import type { MetricsAddr } from '../config/load';
import type { Logger } from '../log/logger';

/** The registry of this process; a worker also answers the primary's requests for it. */
export function processRegistry(worker: boolean): Registry {
  // Its constructor installs the worker's answer to the primary's requests (prom-client's cluster.js).
  if (worker) new AggregatorRegistry();
  collectDefaultMetrics({ register, prefix: 'p11kms_' });
  return register;
}

export function startMetricsListener(addr: MetricsAddr, source: { metrics(): Promise<string>; contentType: string }, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType }).end(text),
      (e: unknown) => {
        log.warn('metrics could not be collected', { error: e instanceof Error ? e.message : 'unknown' });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      server.unref();
      log.info('metrics listening', { host: addr.host, port: (server.address() as AddressInfo).port, path: '/metrics' });
      resolve(server);
    });
  });
}

/** The primary's source: every worker's metrics, aggregated. */
export function clusterSource(): { metrics(): Promise<string>; contentType: string } {
  const aggregator = new AggregatorRegistry();
  return { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType };
}
