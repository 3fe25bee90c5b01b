import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
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

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number`);
  return Number(value);
}

function readPin(env: NodeJS.ProcessEnv, dataDir: string, embedded: boolean): string {
  if (env['KMS_PIN']) return env['KMS_PIN'];
  const file = env['KMS_PIN_FILE'] ?? (embedded ? path.join(dataDir, 'token.pin') : undefined);
  if (!file) throw new ConfigError('a real HSM needs KMS_PIN or KMS_PIN_FILE');
  if (!existsSync(file)) throw new ConfigError(`PIN file ${file} does not exist (run npm start to create the dev token)`);
  if ((statSync(file).mode & 0o077) !== 0) throw new ConfigError(`PIN file ${file} must not be readable by group or others`);
  return readFileSync(file, 'utf8').trim();
}

/** Reads the environment once, validates it against ConfigSchema and freezes the result. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(env['KMS_DATA_DIR'] || './data');
  const embedded = !env['KMS_PKCS11_MODULE'];
  const pkcs11Module = env['KMS_PKCS11_MODULE'] || SOFTHSM_MODULES.find((p) => existsSync(p)) || SOFTHSM_MODULES[0]!;
  const candidate: Config = {
    dataDir,
    host: env['HOST'] || '127.0.0.1',
    port: int('PORT', env['PORT'], 8080),
    pkcs11Module,
    tokenLabel: env['KMS_TOKEN_LABEL'] || 'p11kms-dev',
    pin: readPin(env, dataDir, embedded),
    ...(embedded ? { softhsmConf: path.join(dataDir, 'softhsm2.conf') } : {}),
    dbPath: env['KMS_DB'] || path.join(dataDir, 'p11kms.db'),
    logLevel: (env['KMS_LOG_LEVEL'] || 'info') as Config['logLevel'],
    poolSize: int('KMS_POOL_SIZE', env['KMS_POOL_SIZE'], 4),
    poolWaitMs: int('KMS_POOL_WAIT_MS', env['KMS_POOL_WAIT_MS'], 2000),
    sweepIntervalMs: int('KMS_SWEEP_INTERVAL_MS', env['KMS_SWEEP_INTERVAL_MS'], 60000),
  };
  const validate = new Ajv({ allErrors: true, strict: false }).compile(ConfigSchema);
  if (!validate(candidate)) {
    // Name the setting, never its value: the PIN is one of them.
    const where = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
    throw new ConfigError(`invalid configuration: ${where}`);
  }
  return Object.freeze(candidate);
}

/** The config as it may be printed: secrets redacted. */
export function describeConfig(c: Config): Record<string, unknown> {
  return { ...c, pin: '<redacted>' };
}
