import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import { configProblems } from './messages';
import { PACKAGE_ROOT } from './package-root';
import { ConfigSchema, type Config } from './schema';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Where Debian and Ubuntu put SoftHSMv2's module (multi-arch first). */
const SOFTHSM_MODULES = [
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

function int(name: string, value: string | undefined, fallback: number, or = ''): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number${or}`);
  return Number(value);
}

/** KMS_WORKERS: a whole number, or `auto` for one process per CPU (capped at the schema's maximum). */
function workers(value: string | undefined): number {
  if (value === 'auto') return Math.min(64, Math.max(1, availableParallelism()));
  return int('KMS_WORKERS', value, 1, ' or auto');
}

/**
 * Off unless asked for: a stock holds plaintext data keys before anyone asks for them. 'auto': a
 * stock only when the workers leave a CPU to spare for its thread (datakey-stock.ts).
 */
function dataKeyStock(value: string | undefined, workerCount: number): number {
  if (value === 'auto') return workerCount < availableParallelism() ? 128 : 0;
  return int('KMS_DATAKEY_STOCK', value, 0, ' or auto');
}

function readPin(env: NodeJS.ProcessEnv, dataDir: string, embedded: boolean): string {
  if (env['KMS_PIN']) return env['KMS_PIN'];
  const file = env['KMS_PIN_FILE'] ?? (embedded ? path.join(dataDir, 'token.pin') : undefined);
  if (!file) throw new ConfigError('a real HSM needs KMS_PIN or KMS_PIN_FILE');
  if (!existsSync(file)) throw new ConfigError(`PIN file ${file} does not exist (run npm start to create the dev token)`);
  if ((statSync(file).mode & 0o077) !== 0) throw new ConfigError(`PIN file ${file} must not be readable by group or others`);
  return readFileSync(file, 'utf8').trim();
}

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value === 'true' || value === '1' || value === 'on') return true;
  if (value === 'false' || value === '0' || value === 'off') return false;
  throw new ConfigError(`${name} must be one of true, false, on, off, 1, 0`);
}

export interface MetricsAddr {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port`, or `off`. */
export function parseMetricsAddr(text: string): MetricsAddr | undefined | 'invalid' {
  if (text === 'off') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65535) return 'invalid';
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** KMS_METRICS_ADDR: `host:port` (`[v6]:port`), or `off`. */
function metricsAddr(value: string | undefined): { metrics?: { host: string; port: number } } {
  const parsed = parseMetricsAddr(value || '127.0.0.1:9464');
  if (parsed === 'invalid') throw new ConfigError('KMS_METRICS_ADDR must be host:port (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:0) or off');
  return parsed ? { metrics: { host: parsed.host, port: parsed.port } } : {};
}

/** KMS_RATE_LIMITS: `project=perSecond` pairs separated by commas. */
function rateLimits(value: string | undefined): Record<string, number> {
  // Null prototype: a project may be named `__proto__` or `constructor`.
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const pair of (value ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]{1,64})=([1-9][0-9]{0,6})$/.exec(pair);
    if (!m) throw new ConfigError('KMS_RATE_LIMITS must be project=perSecond pairs separated by commas, e.g. p1=50,p2=2000');
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

const LOOPBACK = /^(?:127\.(?:\d{1,3}\.){2}\d{1,3}|::1|\[::1\]|localhost|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** TLS needs both files; plain HTTP only on loopback unless KMS_ALLOW_PLAIN_HTTP=true. */
function checkTransport(c: Config): void {
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) throw new ConfigError('KMS_TLS_CERT and KMS_TLS_KEY go together');
  if (c.tlsCa !== undefined && c.tlsCert === undefined) throw new ConfigError('KMS_TLS_CA needs KMS_TLS_CERT and KMS_TLS_KEY');
  for (const [name, file] of [['KMS_TLS_CERT', c.tlsCert], ['KMS_TLS_KEY', c.tlsKey], ['KMS_TLS_CA', c.tlsCa]] as const) {
    if (file !== undefined && !existsSync(file)) throw new ConfigError(`${name} file ${file} does not exist`);
  }
  if (c.tlsCert === undefined && !LOOPBACK.test(c.host) && !c.allowPlainHttp) {
    throw new ConfigError(`HOST ${c.host} is not a loopback address: set KMS_TLS_CERT and KMS_TLS_KEY, or KMS_ALLOW_PLAIN_HTTP=true`);
  }
}

/** KMS_NODE_ID, or the host name made to fit the pattern (a host name may be longer, or odd). */
function nodeId(value: string | undefined): string {
  if (value !== undefined && value !== '') return value;
  return hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'node';
}

const NSS_MODULES = ['/usr/lib/x86_64-linux-gnu/libsoftokn3.so', '/usr/lib/aarch64-linux-gnu/libsoftokn3.so', '/usr/lib64/libsoftokn3.so', '/usr/lib/libsoftokn3.so'];
type Profile = Config['tokenProfile'];

/** KMS_TOKEN_PROFILE; `auto` goes by the module's file name. */
function tokenProfile(value: string | undefined, modulePath: string): Profile {
  const v = value || 'auto';
  if (v === 'softhsm2' || v === 'nss' || v === 'generic') return v;
  if (v !== 'auto') throw new ConfigError('KMS_TOKEN_PROFILE must be auto, softhsm2, nss or generic');
  const file = path.basename(modulePath);
  if (/softhsm/i.test(file)) return 'softhsm2';
  if (/softokn/i.test(file)) return 'nss';
  return 'generic';
}

/** NSS softokn's parameters for a DB of its own in `dir`, its key token labelled `label`. */
export function nssParameters(dir: string, label: string): string {
  return `configdir='sql:${dir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags= dbTokenDescription='${label}'`;
}

/** Reads the environment once, validates it against ConfigSchema and freezes the result. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = env['KMS_DATA_DIR'] ? path.resolve(env['KMS_DATA_DIR']) : path.join(PACKAGE_ROOT, 'data');
  const embedded = !env['KMS_PKCS11_MODULE'];
  // The embedded dev token: SoftHSM's, or NSS softokn's with KMS_TOKEN_PROFILE=nss.
  const modules = env['KMS_TOKEN_PROFILE'] === 'nss' ? NSS_MODULES : SOFTHSM_MODULES;
  const pkcs11Module = env['KMS_PKCS11_MODULE'] || modules.find((p) => existsSync(p)) || modules[0]!;
  const profile = tokenProfile(env['KMS_TOKEN_PROFILE'], pkcs11Module);
  const tokenLabel = env['KMS_TOKEN_LABEL'] || 'p11kms-dev';
  const libraryParameters = env['KMS_PKCS11_LIBRARY_PARAMETERS'] || (profile === 'nss' && embedded ? nssParameters(path.join(dataDir, 'nss'), tokenLabel) : undefined);
  const candidate: Config = {
    dataDir,
    nodeId: nodeId(env['KMS_NODE_ID']),
    host: env['HOST'] || '127.0.0.1',
    port: int('PORT', env['PORT'], 8080),
    pkcs11Module,
    tokenProfile: profile,
    ...(libraryParameters ? { pkcs11LibraryParameters: libraryParameters } : {}),
    hsmCallTimeoutMs: int('KMS_HSM_CALL_TIMEOUT_MS', env['KMS_HSM_CALL_TIMEOUT_MS'], 5000),
    tokenLabel,
    pin: readPin(env, dataDir, embedded),
    // The embedded module is SoftHSM's for every profile but nss (generic drives it from session threads).
    ...(embedded && profile !== 'nss' ? { softhsmConf: path.join(dataDir, 'softhsm2.conf') } : {}),
    dbPath: env['KMS_DB'] || path.join(dataDir, 'p11kms.db'),
    logLevel: (env['KMS_LOG_LEVEL'] || 'info') as Config['logLevel'],
    poolSize: int('KMS_POOL_SIZE', env['KMS_POOL_SIZE'], profile === 'softhsm2' ? 4 : 32),
    sessionKeyCopies: int('KMS_SESSION_KEY_COPIES', env['KMS_SESSION_KEY_COPIES'], 0),
    hsmBatch: bool('KMS_HSM_BATCH', env['KMS_HSM_BATCH'], true),
    keygenProcess: bool('KMS_KEYGEN_PROCESS', env['KMS_KEYGEN_PROCESS'], true),
    rsaOffThread: bool('KMS_RSA_OFF_THREAD', env['KMS_RSA_OFF_THREAD'], true),
    findOffThread: bool('KMS_FIND_OFF_THREAD', env['KMS_FIND_OFF_THREAD'], true),
    dataKeyStock: dataKeyStock(env['KMS_DATAKEY_STOCK'], workers(env['KMS_WORKERS'])),
    poolWaitMs: int('KMS_POOL_WAIT_MS', env['KMS_POOL_WAIT_MS'], 2000),
    orphanGraceMs: int('KMS_ORPHAN_GRACE_MS', env['KMS_ORPHAN_GRACE_MS'], 3_600_000),
    hsmRetryMaxMs: int('KMS_HSM_RETRY_MAX_MS', env['KMS_HSM_RETRY_MAX_MS'], 5000),
    shutdownGraceMs: int('KMS_SHUTDOWN_GRACE_MS', env['KMS_SHUTDOWN_GRACE_MS'], 10_000),
    sweepIntervalMs: int('KMS_SWEEP_INTERVAL_MS', env['KMS_SWEEP_INTERVAL_MS'], 60000),
    workers: workers(env['KMS_WORKERS']),
    rateLimit: int('KMS_RATE_LIMIT', env['KMS_RATE_LIMIT'], 1000),
    rateLimits: rateLimits(env['KMS_RATE_LIMITS']),
    // Nodes sharing a data dir have their own node ids and so their own audit chains.
    auditLog: env['KMS_AUDIT_LOG'] || path.join(dataDir, env['KMS_NODE_ID'] ? `audit-${env['KMS_NODE_ID']}.log` : 'audit.log'),
    auditRequired: bool('KMS_AUDIT_REQUIRED', env['KMS_AUDIT_REQUIRED'], true),
    auditFsync: bool('KMS_AUDIT_FSYNC', env['KMS_AUDIT_FSYNC'], true),
    ...(env['KMS_TLS_CERT'] ? { tlsCert: env['KMS_TLS_CERT'] } : {}),
    ...(env['KMS_TLS_KEY'] ? { tlsKey: env['KMS_TLS_KEY'] } : {}),
    ...(env['KMS_TLS_CA'] ? { tlsCa: env['KMS_TLS_CA'] } : {}),
    allowPlainHttp: bool('KMS_ALLOW_PLAIN_HTTP', env['KMS_ALLOW_PLAIN_HTTP'], false),
    awsRegion: env['KMS_AWS_REGION'] || 'us-east-1',
    accessLog: bool('KMS_ACCESS_LOG', env['KMS_ACCESS_LOG'], true),
    ...metricsAddr(env['KMS_METRICS_ADDR']),
    metricsProjectLabel: bool('KMS_METRICS_PROJECT_LABEL', env['KMS_METRICS_PROJECT_LABEL'], false),
  };
  const validate = new Ajv({ allErrors: true, strict: false }).compile(ConfigSchema);
  if (!validate(candidate)) {
    throw new ConfigError(configProblems(validate.errors ?? []));
  }
  checkTransport(candidate);
  return Object.freeze(candidate);
}
