/**
 * The metadata store contract. It holds names, states and versions of keys and the hashes of API
 * tokens; never key material. SQLite (sqlite.ts) is the embedded default.
 */
import type { KeySpecName } from '../kms/key-specs';

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';
export type KeyUsage = 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' | 'ANY';

export interface KeyRecord {
  readonly keyId: string;
  readonly keyTag: string;
  readonly projectId: string;
  readonly alias: string;
  readonly description: string;
  readonly spec: KeySpecName;
  readonly usage: KeyUsage;
  readonly convergent: boolean;
  readonly state: KeyState;
  readonly currentVersion: number;
  readonly createdAt: number;
}

export interface ApiTokenRecord {
  readonly id: string;
  readonly projectId: string;
  readonly secretHash: Buffer;
  readonly admin: boolean;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface MetadataStore {
  /** Inserts a key with its first version; throws AliasTaken when the project already uses the alias. */
  insertKey(key: KeyRecord): void;
  keyById(keyId: string): KeyRecord | undefined;
  keyByTag(keyTag: string): KeyRecord | undefined;
  keyByAlias(projectId: string, alias: string): KeyRecord | undefined;
  insertToken(token: ApiTokenRecord): void;
  tokenById(id: string): ApiTokenRecord | undefined;
  close(): void;
}

export class AliasTaken extends Error {
  override readonly name = 'AliasTaken';
}
