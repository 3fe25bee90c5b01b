/** What the HTTP edge may call: domain services only, never the pool or the binding. */
import type { ApiTokens } from '../kms/api-tokens';
import type { Crypto } from '../kms/crypto';
import type { DataKeys } from '../kms/datakeys';
import type { Keys } from '../kms/keys';
import type { Signing } from '../kms/signing';
import type { Logger } from '../log/logger';

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
}
