/** Wires config → token → pool → store → domain services; shared by the server and the CLI. */
import type { Services } from './api/services';
import type { Config } from './config/schema';
import { Hsm } from './hsm/hsm';
import { openToken } from './hsm/module';
import { SessionPool } from './hsm/pool';
import { ApiTokens } from './kms/api-tokens';
import { Crypto } from './kms/crypto';
import { DataKeys } from './kms/datakeys';
import { Keys } from './kms/keys';
import { Signing } from './kms/signing';
import type { Logger } from './log/logger';
import { SqliteStore } from './store/sqlite';

export interface Runtime {
  readonly services: Services;
  close(): void;
}

export function openStore(config: Config): SqliteStore {
  return new SqliteStore(config.dbPath);
}

export function openRuntime(config: Config, log: Logger): Runtime {
  // SoftHSM reads its config file at C_Initialize; the embedded default's lives in the data dir.
  if (config.softhsmConf) process.env['SOFTHSM2_CONF'] = config.softhsmConf;
  const store = openStore(config);
  let token;
  try {
    token = openToken(config.pkcs11Module, config.tokenLabel);
  } catch (e) {
    store.close();
    throw e;
  }
  const pool = new SessionPool(token.module, token.slot, config.pin, { size: config.poolSize, waitMs: config.poolWaitMs }, log);
  const hsm = new Hsm(pool);
  const crypto = new Crypto(hsm, store);
  const services: Services = {
    tokens: new ApiTokens(store),
    keys: new Keys(store, hsm, log),
    crypto,
    dataKeys: new DataKeys(hsm, crypto),
    signing: new Signing(hsm, store),
    random: (bytes: number) => hsm.random(bytes),
    log,
    healthy: () => hsm.healthy(),
  };
  return {
    services,
    close() {
      pool.close();
      token.module.finalize();
      store.close();
    },
  };
}
