/** What the HTTP edge may call: domain services only, never the pool or the binding. */
import type { ApiTokens } from '../kms/api-tokens';
import type { Crypto } from '../kms/crypto';
import type { DataKeys } from '../kms/datakeys';
import type { Keys } from '../kms/keys';
import type { Signing } from '../kms/signing';
import type { AuditMacKey } from '../log/audit';
import type { Logger } from '../log/logger';

/** What an operator checks first about the token (the console's HSM page); never the PIN. */
export interface HsmStatus {
  /** The PKCS#11 library the service loaded. */
  readonly module: string;
  readonly tokenLabel: string;
  /** How the module is driven: the embedded SoftHSMv2 dev token or an operator's module. */
  readonly profile: string;
  readonly pool: {
    readonly size: number;
    readonly up: boolean;
    /** Why the token can't be reached, and since when (ms since epoch), while it is down. */
    readonly reason?: string;
    readonly since?: number;
    readonly open: number;
    readonly idle: number;
    readonly busy: number;
    readonly waiting: number;
    /** Re-initialisations after the token was lost. */
    readonly recoveries: number;
  };
}

export interface Services {
  readonly tokens: ApiTokens;
  readonly keys: Keys;
  readonly crypto: Crypto;
  readonly dataKeys: DataKeys;
  readonly signing: Signing;
  /** Random bytes from the token's RNG. */
  readonly random: (bytes: number) => Promise<Buffer>;
  readonly log: Logger;
  /** Whether a token session works right now (for /healthz). */
  readonly healthy: () => Promise<boolean>;
  /** Why the token is not usable right now (for /healthz); undefined when it is. */
  readonly healthReason?: () => string | undefined;
  /** Module, token and session pool as they are now (the console's HSM page). */
  readonly hsmStatus?: () => HsmStatus;
  /** The audit trail as `npx p11kms audit verify` sees it: every audit file of the data dir, and the token's MAC key. */
  readonly auditTrail?: { readonly files: () => string[]; readonly key: AuditMacKey };
}
