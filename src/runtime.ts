/** Wires config → token → pool → store → domain services; shared by the server and the CLI. */
import type { Services } from './api/services';
import { auditFiles } from './transport';
import type { Config } from './config/schema';
import { syncSoftHsmConf } from './config/softhsm-conf';
import { openAuditKey as openTokenAuditKey, openToken, type AuditMac, type CallObserver, type Hsm, type Pkcs11Api, type SessionPool, type Token, type TokenSettings } from './hsm';
import { ApiTokens } from './kms/api-tokens';
import { DataKeyStock } from './kms/datakey-stock';
import { Crypto } from './kms/crypto';
import { DataKeys } from './kms/datakeys';
import { Keys } from './kms/keys';
import { Signing } from './kms/signing';
import type { Logger } from './log/logger';
import { Reconciler } from './store/reconcile';
import { PgStore, type PgStoreOptions } from './store/postgres';
import { SqliteStore } from './store/sqlite';
import type { MetadataStore } from './store/store';

/** A half-made rotation older than this is undone even when the orphan grace period is longer. */
const MAX_STALE_CREATING_MS = 10 * 60_000;

export interface Runtime {
  readonly services: Services;
  /** The inline profile's session pool (tests look at it); none on session threads (nss, generic). */
  readonly pool: SessionPool | undefined;
  readonly token: Token;
  /** Resolves undefined once the first connection attempt is over, or with why the token can't be used at all (main.ts exits). */
  readonly started: Promise<string | undefined>;
  readonly hsm: Hsm;
  readonly reconciler: Reconciler;
  readonly store: MetadataStore;
  /** Data keys sealed ahead (KMS_DATAKEY_STOCK), when on. */
  readonly stock: DataKeyStock | undefined;
  /** The token's HMAC key for the audit trail (made at first need). */
  readonly auditKey: AuditMac;
  /** Closes the pool (C_Finalize) and the store. Call after in-flight requests have finished. */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Reconcile token and store on every (re)connection to the token: the server does, the CLI doesn't. */
  readonly reconcileOnConnect?: boolean;
  /** List the token on every (re)connection to learn its handles, when not reconciling (the server's other workers). */
  readonly learnHandlesOnConnect?: boolean;
  /** Make key objects on the pool's sessions even when config.keygenProcess is on (the CLI). */
  readonly keygenInProcess?: boolean;
  /** Tests: wrap the real module in a fault-injecting proxy (test/helpers/fault-binding.ts). */
  readonly wrapModule?: (m: Pkcs11Api) => Pkcs11Api;
  /** Metrics: the session threads' calls, which never pass the module object wrapModule wraps. */
  readonly observeCall?: CallObserver;
}

/** `KMS_DB=postgres://…` (or postgresql://) selects PostgreSQL; anything else is a SQLite file. */
export function openStore(config: Config, opts: PgStoreOptions = {}): MetadataStore {
  return /^postgres(ql)?:\/\//.test(config.dbPath) ? new PgStore(config.dbPath, opts) : new SqliteStore(config.dbPath);
}

/**
 * SoftHSM reads its config file at C_Initialize; the embedded default's lives in the data dir and
 * follows it when it moves.
 */
function useSoftHsmConf(config: Config): void {
  if (!config.softhsmConf) return;
  syncSoftHsmConf(config.softhsmConf, config.dataDir);
  process.env['SOFTHSM2_CONF'] = config.softhsmConf;
}

/**
 * The token's audit key alone, on a pool of one session (the CLI's audit records and `audit`
 * commands). Never fails because the token is missing: its calls then fail, and records go out
 * without a MAC. Close when done.
 */
export function openAuditKey(config: Config, log: Logger): { key: AuditMac; close(): Promise<void> } {
  useSoftHsmConf(config);
  return openTokenAuditKey(tokenSettings(config, {}), log);
}

/** The token's settings from the configuration. */
function tokenSettings(config: Config, opts: RuntimeOptions): TokenSettings {
  return {
    profile: config.tokenProfile,
    callTimeoutMs: config.hsmCallTimeoutMs,
    ...(config.pkcs11LibraryParameters ? { libraryParameters: config.pkcs11LibraryParameters } : {}),
    modulePath: config.pkcs11Module,
    label: config.tokenLabel,
    pin: config.pin,
    poolSize: config.poolSize,
    poolWaitMs: config.poolWaitMs,
    retryMaxMs: config.hsmRetryMaxMs,
    sessionCopies: config.sessionKeyCopies,
    batchPerTurn: config.hsmBatch,
    rsaOffThread: config.rsaOffThread,
    findOffThread: config.findOffThread,
    // The CLI makes one key and exits: a helper process would only add its start-up.
    keygenProcess: config.keygenProcess && !opts.keygenInProcess,
    ...(opts.wrapModule ? { wrapModule: opts.wrapModule } : {}),
    ...(opts.observeCall ? { observeCall: opts.observeCall } : {}),
  };
}

/**
 * Never fails because the token is missing: the pool then starts "down" (every HSM call answers
 * HsmUnavailable, /healthz says why) and keeps trying to reach it with backoff.
 */
export function openRuntime(config: Config, log: Logger, opts: RuntimeOptions = {}): Runtime {
  useSoftHsmConf(config);
  const store = openStore(config, {
    onFeed: (up) => (up ? log.info('store change feed listening') : log.warn('store change feed lost; reading through to the database until it is back')),
  });
  const token = openToken(tokenSettings(config, opts), log);
  const { hsm, auditKey } = token;
  const reconciler = new Reconciler(store, hsm, log, config.orphanGraceMs);
  // Every process, not only the sweeper's: each holds its own session copies of CMKs.
  const pruner = setInterval(() => {
    reconciler
      .pruneCopies()
      .then((n) => n > 0 && log.info('session copies of deleted keys destroyed', { copies: n }))
      .catch((e: unknown) => log.warn('session copies not pruned', { error: e instanceof Error ? e.name : 'unknown' }));
  }, config.sweepIntervalMs);
  pruner.unref();
  // The stock's thread calls the module as the search thread does, so it needs the same conditions.
  const stock = config.dataKeyStock > 0 && hsm.findsOffThread ? new DataKeyStock(hsm, { size: config.dataKeyStock }) : undefined;
  const crypto = new Crypto(hsm, store, stock);
  const keys = new Keys(store, hsm, log, undefined, {
    staleCreatingMs: Math.min(MAX_STALE_CREATING_MS, config.orphanGraceMs),
    reconciler,
  });
  if (opts.reconcileOnConnect) {
    let counted = false;
    token.onConnected(() => {
      if (!counted) {
        counted = true;
        hsm
          .countModifiableVersions()
          .then((n) =>
            n > 0
              ? log.warn('AES key versions are CKA_MODIFIABLE (made for session copies): a PIN holder can change their CKA_ID and usage flags', { versions: n })
              : log.info('no AES key version is CKA_MODIFIABLE', { versions: 0 }),
          )
          .catch((e: unknown) => log.warn('modifiable key versions not counted', { error: e instanceof Error ? e.name : 'unknown' }));
      }
      reconciler
        .pass()
        .then((r) => log.info('token and store reconciled', { objects: r.objects, orphans: r.orphans, destroyed: r.destroyed, missing: r.missing.length }))
        .catch((e: unknown) => log.error('reconciliation failed', { error: e instanceof Error ? e.name : 'unknown' }));
    });
  } else if (opts.learnHandlesOnConnect && hsm.findsOffThread) {
    // The reconciliation's listing teaches the handles it sees (hsm.ts); a process that doesn't
    // reconcile lists too, off the event loop, so that no key's first use has to search the token.
    token.onConnected(() => {
      hsm
        .listObjects()
        .then((objects) => log.info('token handles learned', { objects: objects.length }))
        .catch((e: unknown) => log.warn('token handles not learned', { error: e instanceof Error ? e.name : 'unknown' }));
    });
  }
  const started = token.start();
  const services: Services = {
    tokens: new ApiTokens(store),
    keys,
    crypto,
    dataKeys: new DataKeys(crypto),
    signing: new Signing(hsm, store),
    random: (bytes: number) => hsm.random(bytes),
    log,
    healthy: () => hsm.healthy(),
    healthReason: () => {
      const s = token.status;
      if (s.up) return undefined;
      // A rejected PIN is not retried: its reason says so.
      return `HSM token '${config.tokenLabel}' not reachable: ${s.reason}${/not retrying/.test(s.reason) ? '' : '; retrying'}`;
    },
    hsmStatus: () => {
      const r = token.report();
      return { module: config.pkcs11Module, tokenLabel: config.tokenLabel, profile: r.profile, pool: r.sessions };
    },
    auditTrail: { files: () => auditFiles(config), key: auditKey },
  };
  return {
    services,
    pool: token.pool,
    token,
    started,
    hsm,
    reconciler,
    store,
    stock,
    auditKey,
    async close() {
      clearInterval(pruner);
      stock?.clear();
      await token.close();
      await store.close();
    },
  };
}
