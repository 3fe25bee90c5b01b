/** What main.ts adds at the edge of every dialect: the audit trail, rate limits and the mTLS binding. */
import type { AuditLog } from '../../log/audit';
import type { ProjectRateLimits } from './rate-limit';

export interface Edge {
  readonly audit?: AuditLog;
  readonly limits?: ProjectRateLimits;
  /** Client certificates are verified (KMS_TLS_CA): bind each to its project. */
  readonly mtls?: boolean;
  /** The AWS dialect's region (KMS_AWS_REGION), in its ARNs and credential scopes. */
  readonly awsRegion?: string;
}
