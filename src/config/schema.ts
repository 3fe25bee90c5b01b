/**
 * The configuration contract: every setting, where it comes from, and its rules. Validated once at
 * start-up (load.ts); nothing else in the service reads process.env.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, description: 'KMS_DATA_DIR: dev token, SQLite store (default: data/ in the package directory)' }),
    nodeId: Type.String({
      pattern: '^[A-Za-z0-9._-]{1,64}$',
      description: "KMS_NODE_ID: this node's name; one server per node id may run on a data dir (its lock, server-<id>.lock) (default: the host name)",
    }),
    host: Type.String({ minLength: 1, description: 'HOST: address to bind (default 127.0.0.1)' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'PORT: TCP port (default 8080; 0 = any free port)' }),
    pkcs11Module: Type.String({ minLength: 1, description: 'KMS_PKCS11_MODULE: PKCS#11 library (default: SoftHSMv2)' }),
    tokenLabel: Type.String({ minLength: 1, maxLength: 32, description: 'KMS_TOKEN_LABEL: token label (default p11kms-dev)' }),
    pin: Type.String({ minLength: 1, maxLength: 256, description: 'KMS_PIN, or the file KMS_PIN_FILE (default $KMS_DATA_DIR/token.pin)' }),
    softhsmConf: Type.Optional(Type.String({ description: 'SoftHSM config of the dev token, $KMS_DATA_DIR/softhsm2.conf' })),
    dbPath: Type.String({ minLength: 1, description: 'KMS_DB: SQLite metadata store (default $KMS_DATA_DIR/p11kms.db)' }),
    logLevel: Type.Union([Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug')], {
      description: 'KMS_LOG_LEVEL (default info)',
    }),
    poolSize: Type.Integer({
      minimum: 1,
      maximum: 256,
      description: 'KMS_POOL_SIZE: PKCS#11 sessions (default 4 for SoftHSM, whose calls run in-process; 32 on session threads, enough to hide ~1 ms round trips of a network HSM)',
    }),
    tokenProfile: Type.Union([Type.Literal('softhsm2'), Type.Literal('nss'), Type.Literal('generic')], {
      description:
        "KMS_TOKEN_PROFILE: auto (default: by the module's file name) | softhsm2 (calls inline, SoftHSM's speed-ups) | nss (NSS softokn) | generic (any other token; every call on a session thread with a deadline)",
    }),
    pkcs11LibraryParameters: Type.Optional(
      Type.String({ minLength: 1, description: "KMS_PKCS11_LIBRARY_PARAMETERS: C_Initialize's library parameters (NSS softokn; default for nss: a DB under $KMS_DATA_DIR/nss)" }),
    ),
    hsmCallTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 600000,
      description: 'KMS_HSM_CALL_TIMEOUT_MS: deadline of each token call on a session thread; a call that misses it answers 503 and its session is abandoned (default 5000)',
    }),
    sweepIntervalMs: Type.Integer({
      minimum: 50,
      maximum: 86400000,
      description: 'KMS_SWEEP_INTERVAL_MS: how often ended deletion windows and due rotations are processed (default 60000)',
    }),
    sessionKeyCopies: Type.Integer({
      minimum: 0,
      maximum: 1000000,
      description:
        'KMS_SESSION_KEY_COPIES: most AES CMK versions per process used through an in-token session copy (C_CopyObject, still sensitive and non-extractable) instead of the token object, which SoftHSM re-reads from disk on every use. Opt-in: above 0, new AES CMK versions are created CKA_MODIFIABLE=true (SoftHSM copies no other), so a PIN holder can change their CKA_ID and usage flags; 0 = never, new AES CMK versions CKA_MODIFIABLE=false (default 0)',
    }),
    hsmBatch: Type.Boolean({
      description:
        'KMS_HSM_BATCH: run the AES and random token calls of one event-loop turn back to back, for warm CPU caches (~13–16 µs less CPU per data key under load, one event-loop hop more latency; default true)',
    }),
    keygenProcess: Type.Boolean({
      description:
        'KMS_KEYGEN_PROCESS: make and destroy the token objects of CMK versions in a helper process of the service, so that key creation (~5 ms per AES key on SoftHSM, up to a second per RSA pair) does not stall other requests and the service process never writes a token object (keygen-process.ts; default true)',
    }),
    rsaOffThread: Type.Boolean({
      description:
        "KMS_RSA_OFF_THREAD: run RSA private-key operations (sign, decrypt; ~0.5-1 ms each) on libuv's thread pool, two at a time, instead of on the event loop; false for a PKCS#11 module that is not safe to call from several threads (default true)",
    }),
    findOffThread: Type.Boolean({
      description:
        "KMS_FIND_OFF_THREAD: run object searches and listings (a key version's first use in a process, destroys, reconciliation; ~150 ms each on a SoftHSM token of 10 000 keys) on a worker thread instead of the event loop, when KMS_KEYGEN_PROCESS is on; false for a PKCS#11 module that is not safe to call from several threads (default true)",
    }),
    dataKeyStock: Type.Integer({
      minimum: 0,
      maximum: 4096,
      description:
        "KMS_DATAKEY_STOCK: data keys sealed ahead per key version, length and context that is asked for at least 64 times a second, on a worker thread, so that create-datakey under load doesn't call the token on the event loop (datakey-stock.ts); plaintexts wait at most 2 s in memory. Needs KMS_FIND_OFF_THREAD and KMS_KEYGEN_PROCESS. Opt-in: data keys then exist in memory before anyone asks for them. 0 = off (the default); 'auto' = 128 when KMS_WORKERS is below the number of CPUs, else 0 (the thread needs a core to spare)",
    }),
    poolWaitMs: Type.Integer({ minimum: 1, maximum: 600000, description: 'KMS_POOL_WAIT_MS: wait for a session before 503 (default 2000)' }),
    orphanGraceMs: Type.Integer({
      minimum: 0,
      maximum: 604800000,
      description:
        'KMS_ORPHAN_GRACE_MS: how long a token object without a store row (left by a crash during key creation) is kept before it is destroyed; also the age after which a half-made rotation is undone, capped at 10 min (default 3600000)',
    }),
    hsmRetryMaxMs: Type.Integer({
      minimum: 10,
      maximum: 600000,
      description: 'KMS_HSM_RETRY_MAX_MS: longest wait between attempts to reach a token that is gone (backoff from 250 ms; default 5000)',
    }),
    shutdownGraceMs: Type.Integer({
      minimum: 0,
      maximum: 600000,
      description: 'KMS_SHUTDOWN_GRACE_MS: on SIGTERM, how long in-flight requests may take before their connections are cut (default 10000)',
    }),
    // Issue 4: access, audit, transport.
    rateLimit: Type.Integer({ minimum: 1, maximum: 1000000, description: 'KMS_RATE_LIMIT: requests per second per project (default 1000)' }),
    rateLimits: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), Type.Integer({ minimum: 1, maximum: 1000000 }), {
      description: 'KMS_RATE_LIMITS: per-project overrides, e.g. p1=50,p2=2000',
    }),
    auditLog: Type.String({ minLength: 1, description: 'KMS_AUDIT_LOG: audit trail file (default $KMS_DATA_DIR/audit.log, or audit-<KMS_NODE_ID>.log when KMS_NODE_ID is set; audit-…-<slot>.log per worker)' }),
    auditRequired: Type.Boolean({ description: 'KMS_AUDIT_REQUIRED: a request whose audit record cannot be written fails (default true)' }),
    auditFsync: Type.Boolean({ description: 'KMS_AUDIT_FSYNC: fdatasync each audit record before answering (default true)' }),
    tlsCert: Type.Optional(Type.String({ minLength: 1, description: 'KMS_TLS_CERT: PEM certificate (chain) file; with KMS_TLS_KEY the server speaks HTTPS' })),
    tlsKey: Type.Optional(Type.String({ minLength: 1, description: 'KMS_TLS_KEY: PEM private key file' })),
    tlsCa: Type.Optional(Type.String({ minLength: 1, description: 'KMS_TLS_CA: PEM CA file; clients must present a certificate it signed (mTLS), subject CN = project' })),
    allowPlainHttp: Type.Boolean({ description: 'KMS_ALLOW_PLAIN_HTTP: allow plain HTTP on a non-loopback HOST (default false)' }),
    awsRegion: Type.String({
      minLength: 1,
      maxLength: 32,
      pattern: '^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$',
      description: 'KMS_AWS_REGION: the region the AWS dialect serves, in its key ARNs and SigV4 credential scopes (default us-east-1)',
    }),
    metrics: Type.Optional(
      Type.Object(
        { host: Type.String({ minLength: 1 }), port: Type.Integer({ minimum: 0, maximum: 65535 }) },
        { description: 'KMS_METRICS_ADDR: host:port of the Prometheus listener, GET /metrics (default 127.0.0.1:9464; off = none)' },
      ),
    ),
    metricsProjectLabel: Type.Boolean({
      description: 'KMS_METRICS_PROJECT_LABEL: label request metrics with the project (one series per project; default false)',
    }),
    accessLog: Type.Boolean({
      description: 'KMS_ACCESS_LOG: one info line per request (request id, method, route, status, ms, project; never bodies, headers or tokens); off to silence it (default on)',
    }),
    workers: Type.Integer({
      minimum: 1,
      maximum: 64,
      description: 'KMS_WORKERS: server processes, each with its own session pool (default 1; auto = number of CPUs)',
    }),
  },
  { additionalProperties: false },
);

export type Config = Readonly<Static<typeof ConfigSchema>>;
