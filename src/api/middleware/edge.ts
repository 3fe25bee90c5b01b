/** What main.ts adds at the edge of every dialect: the audit trail, rate limits, the mTLS binding and request observers. */
import type { AuditLog } from '../../log/audit';
import type { OutcomeObserver } from './outcome';
import type { FailedAuthentications } from './failed-auth';
import type { ProjectRateLimits } from './rate-limit';

export interface Edge {
  readonly audit?: AuditLog;
  readonly limits?: ProjectRateLimits;
  /** Failed authentications: throttled and counted per client address (failed-auth.ts). */
  readonly failedAuth?: FailedAuthentications;
  /** Client certificates are verified (KMS_TLS_CA): bind each to its project. */
  readonly mtls?: boolean;
  /** The AWS dialect's region (KMS_AWS_REGION), in its ARNs and credential scopes. */
  readonly awsRegion?: string;
  /** Told of every request's end: the access log (KMS_ACCESS_LOG), metrics. */
  readonly observers?: readonly OutcomeObserver[];
}
