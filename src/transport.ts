/**
 * The service's edge, built from the config: the audit trail (one file per process), per-project
 * rate limits, and the HTTP or HTTPS server (KMS_TLS_CERT/KMS_TLS_KEY; with KMS_TLS_CA clients must
 * present a certificate the CA signed, and its subject CN is bound to the token's project).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Express } from 'express';
import { serverClasses } from './api/http-classes';
import type { Edge } from './api/middleware/edge';
import { ProjectRateLimits } from './api/middleware/rate-limit';
import { workerSlot } from './cluster';
import type { Config } from './config/schema';
import { AuditLog } from './log/audit';

/** `audit.log` for one process; `audit-<slot>.log` for worker `slot`, so each chain has one writer. */
export function auditFile(config: Config, slot: string | undefined = workerSlot()): string {
  if (slot === undefined) return config.auditLog;
  const ext = path.extname(config.auditLog);
  return `${config.auditLog.slice(0, config.auditLog.length - ext.length)}-${slot}${ext}`;
}

export function openEdge(config: Config): Edge {
  return {
    audit: new AuditLog(auditFile(config), config.auditRequired, config.auditFsync),
    limits: new ProjectRateLimits({ defaultPerSecond: config.rateLimit, perProject: config.rateLimits, processes: config.workers }),
    mtls: config.tlsCa !== undefined,
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
