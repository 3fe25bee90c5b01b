/**
 * The service's Prometheus metrics (prom-client), in one registry per process. Label values are
 * route-level names only (dialect, operation, status, PKCS#11 function, CKR name, key state): never a
 * key id or a token, and a project only when the operator opts in (KMS_METRICS_PROJECT_LABEL).
 */
import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';
import type { RequestOutcome } from '../api/middleware/outcome';

const SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the metrics read when scraped (the session pool, the token, the store). */
export interface MetricsSources {
  pool(): { inUse: number; waiting: number; size: number };
  tokenUp(): boolean;
  keyCounts(): Promise<Readonly<Record<string, number>>>;
}

export class ServiceMetrics {
  private readonly requests: Histogram<string>;
  private readonly rateLimited: Counter<string>;
  private readonly tokenCalls: Histogram<string>;
  private readonly tokenErrors: Counter<string>;
  private readonly auditSync: Histogram<string>;

  constructor(
    sources: MetricsSources,
    private readonly projectLabel = false,
    readonly registry: Registry = register,
  ) {
    const registers = [registry];
    this.requests = new Histogram({
      name: 'p11kms_http_request_duration_seconds',
      help: 'Time from a request to its answer, by dialect, operation and HTTP status',
      labelNames: projectLabel ? ['dialect', 'operation', 'status', 'project'] : ['dialect', 'operation', 'status'],
      buckets: SECONDS,
      registers,
    });
    this.rateLimited = new Counter({
      name: 'p11kms_rate_limited_requests_total',
      help: "Requests refused with 429 because their project's rate limit was exhausted",
      labelNames: projectLabel ? ['dialect', 'project'] : ['dialect'],
      registers,
    });
    this.tokenCalls = new Histogram({
      name: 'p11kms_token_call_duration_seconds',
      help: 'Time of each call into the PKCS#11 module, by binding operation',
      labelNames: ['operation'],
      buckets: SECONDS,
      registers,
    });
    this.tokenErrors = new Counter({
      name: 'p11kms_token_call_errors_total',
      help: 'PKCS#11 calls that failed, by binding operation and CKR name',
      labelNames: ['operation', 'ckr'],
      registers,
    });
    this.auditSync = new Histogram({
      name: 'p11kms_audit_sync_duration_seconds',
      help: 'Time from an audit record being written to its being on disk (fdatasync of its batch)',
      buckets: SECONDS,
      registers,
    });
    new Gauge({
      name: 'p11kms_pool_sessions_in_use',
      help: 'PKCS#11 sessions of the pool lent out to calls now',
      registers,
      collect() {
        this.set(sources.pool().inUse);
      },
    });
    new Gauge({
      name: 'p11kms_pool_sessions',
      help: 'PKCS#11 sessions the pool may open (KMS_POOL_SIZE, per process)',
      registers,
      collect() {
        this.set(sources.pool().size);
      },
    });
    new Gauge({
      name: 'p11kms_pool_waiting',
      help: 'Calls waiting for a PKCS#11 session now',
      registers,
      collect() {
        this.set(sources.pool().waiting);
      },
    });
    new Gauge({
      name: 'p11kms_token_up',
      help: '1 when a token session works (what /healthz reports), else 0; the lowest of all processes',
      aggregator: 'min',
      registers,
      collect() {
        this.set(sources.tokenUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'p11kms_keys',
      help: 'Keys in the store by state (all projects)',
      labelNames: ['state'],
      // Every process reads the same store.
      aggregator: 'first',
      registers,
      async collect() {
        const counts = await sources.keyCounts();
        this.reset();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }

  /** An OutcomeObserver (src/api/middleware/outcome.ts). */
  readonly observeRequest = (o: RequestOutcome): void => {
    const dialect = o.dialect || 'none';
    const labels: Record<string, string> = { dialect, operation: o.operation || 'none', status: String(o.status) };
    if (this.projectLabel) labels['project'] = o.project;
    this.requests.observe(labels, o.ms / 1000);
    if (o.status === 429) this.rateLimited.inc(this.projectLabel ? { dialect, project: o.project } : { dialect });
  };

  tokenCall(operation: string, seconds: number, ckr?: string): void {
    this.tokenCalls.observe({ operation }, seconds);
    if (ckr !== undefined) this.tokenErrors.inc({ operation, ckr });
  }

  auditSynced(seconds: number): void {
    this.auditSync.observe(seconds);
  }
}
