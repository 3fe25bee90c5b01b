/**
 * The configuration contract: every setting, where it comes from, and its rules. Validated once at
 * start-up (load.ts); nothing else in the service reads process.env.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, description: 'KMS_DATA_DIR: dev token, SQLite store (default ./data)' }),
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
    poolSize: Type.Integer({ minimum: 1, maximum: 256, description: 'KMS_POOL_SIZE: PKCS#11 sessions (default 4)' }),
    sweepIntervalMs: Type.Integer({
      minimum: 50,
      maximum: 86400000,
      description: 'KMS_SWEEP_INTERVAL_MS: how often ended deletion windows and due rotations are processed (default 60000)',
    }),
    poolWaitMs: Type.Integer({ minimum: 1, maximum: 600000, description: 'KMS_POOL_WAIT_MS: wait for a session before 503 (default 2000)' }),
  },
  { additionalProperties: false },
);

export type Config = Readonly<Static<typeof ConfigSchema>>;
