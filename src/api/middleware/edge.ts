/** What main.ts adds at the edge of both dialects: the audit trail, rate limits and the mTLS binding. */
import type { AuditLog } from '../../log/audit';
import type { ProjectRateLimits } from './rate-limit';

export interface Edge {
  readonly audit?: AuditLog;
  readonly limits?: ProjectRateLimits;
  /** Client certificates are verified (KMS_TLS_CA): bind each to its project. */
  readonly mtls?: boolean;
}
