/**
 * The service's edge, built from the config: the audit trail (one file per process), per-project
 * rate limits, and the HTTP or HTTPS server (KMS_TLS_CERT/KMS_TLS_KEY; with KMS_TLS_CA clients must
 * present a certificate the CA signed, and its subject CN is bound to the token's project).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Express } from 'express';
import { serverClasses } from './api/http-classes';
import type { Edge } from './api/middleware/edge';
import { FailedAuthentications } from './api/middleware/failed-auth';
import { ProjectRateLimits } from './api/middleware/rate-limit';
import { workerSlot } from './cluster';
import type { Config } from './config/schema';
import { AuditLog, type AuditMacKey } from './log/audit';
import type { Logger } from './log/logger';
import { accessLog } from './api/middleware/outcome';
import type { ServiceMetrics } from './metrics/service-metrics';

/** Each record's time until it is durable (its batch's fdatasync), for p11kms_audit_sync_duration_seconds. */
function timeAuditWrites(audit: AuditLog, metrics: ServiceMetrics): void {
  const write = audit.write.bind(audit);
  audit.write = (entry) => {
    const start = process.hrtime.bigint();
    const done = write(entry);
    void done.then(() => metrics.auditSynced(Number(process.hrtime.bigint() - start) / 1e9), () => undefined);
    return done;
  };
}

/** `audit.log` for one process; `audit-<slot>.log` for worker `slot`, so each chain has one writer. */
export function auditFile(config: Config, slot: string | undefined = workerSlot()): string {
  if (slot === undefined) return config.auditLog;
  const ext = path.extname(config.auditLog);
  return `${config.auditLog.slice(0, config.auditLog.length - ext.length)}-${slot}${ext}`;
}

/**
 * Every audit file of the data dir: `audit.log` and `audit-<anything>.log` beside it (workers'
 * slots, the CLI's, other nodes'), for `p11kms audit verify` and `audit head`. Sorted by name.
 */
export function auditFiles(config: Config): string[] {
  const dir = path.dirname(config.auditLog);
  const ext = path.extname(config.auditLog);
  // A node's own file is audit-<node id>.log (config/load.ts): the data dir's files start with 'audit'.
  const stem = path.basename(config.auditLog, ext).replace(new RegExp(`-${config.nodeId.replace(/[.]/g, '\\.')}$`), '');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n === `${stem}${ext}` || (n.startsWith(`${stem}-`) && n.endsWith(ext) && n.length > stem.length + 1 + ext.length))
    .sort()
    .map((n) => path.join(dir, n))
    .filter((f) => statSync(f).isFile());
}

/**
 * `key`: the token's audit key, which MACs each batch of records; `log`: where a batch without a MAC
 * is reported; `sharedLimits`: the PostgreSQL store's pool, so that every node counts a project's
 * requests in one place; `metrics`: told of every request and audit write.
 */
export function openEdge(
  config: Config,
  key?: AuditMacKey,
  log?: Logger,
  sharedLimits?: { readonly pool: unknown; readonly table: string },
  metrics?: ServiceMetrics,
): Edge {
  const audit = new AuditLog(auditFile(config), config.auditRequired, config.auditFsync, { key, log });
  if (metrics) timeAuditWrites(audit, metrics);
  return {
    observers: [...(config.accessLog && log ? [accessLog(log)] : []), ...(metrics ? [metrics.observeRequest] : [])],
    audit,
    failedAuth: new FailedAuthentications(audit, log),
    limits: new ProjectRateLimits({
      defaultPerSecond: config.rateLimit,
      perProject: config.rateLimits,
      processes: config.workers,
      ...(sharedLimits ? { shared: sharedLimits } : {}),
    }),
    mtls: config.tlsCa !== undefined,
    awsRegion: config.awsRegion,
  };
}

export function createServer(app: Express, config: Config): http.Server | https.Server {
  const classes = serverClasses(app);
  if (config.tlsCert === undefined || config.tlsKey === undefined) return http.createServer({ ...classes }, app);
  return https.createServer(
    {
      ...classes,
      cert: readFileSync(config.tlsCert),
      key: readFileSync(config.tlsKey),
      minVersion: 'TLSv1.2',
      ...(config.tlsCa !== undefined ? { ca: readFileSync(config.tlsCa), requestCert: true, rejectUnauthorized: true } : {}),
    },
    app,
  );
}
