/**
 * The metadata store contract. It holds names, states, versions and tags of keys and the hashes of
 * API tokens; never key material. SQLite (sqlite.ts) is the embedded default; PostgreSQL
 * (postgres.ts) serves several nodes.
 *
 * Every method is asynchronous because a networked store must be; an embedded one answers from
 * already-resolved promises, so its callers pay a microtask, not a round trip.
 *
 * State changes are conditional updates (`…WHERE state IN (from)`) that report whether they took
 * effect, so two processes racing on one key can't both win a transition.
 */
import type { KeySpecName } from '../kms/key-specs';

/** `Deleted` keys keep their row (a tombstone: alias history, audit) but their token objects are gone. */
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'Deleted';
export type KeyUsage = 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' | 'ANY';
/** `Creating`: the number is claimed, token objects may or may not exist yet; never used for crypto. */
export type VersionState = 'Creating' | 'Enabled' | 'Disabled';

export interface KeyRecord {
  readonly keyId: string;
  /** Small integer id, numbered per project (NCP's `keyId`). */
  readonly num: number;
  readonly keyTag: string;
  readonly projectId: string;
  readonly alias: string;
  readonly description: string;
  readonly spec: KeySpecName;
  readonly usage: KeyUsage;
  readonly convergent: boolean;
  readonly state: KeyState;
  readonly stateChangedAt: number;
  readonly currentVersion: number;
  readonly createdAt: number;
  /** When a key pending deletion is destroyed (ms since epoch); null otherwise. */
  readonly deletionDate: number | null;
  readonly rotationEnabled: boolean;
  readonly rotationIntervalDays: number;
  readonly lastRotationAt: number | null;
  readonly rotationCount: number;
}

export type NewKeyRecord = Omit<KeyRecord, 'num' | 'stateChangedAt' | 'deletionDate' | 'lastRotationAt' | 'rotationCount' | 'currentVersion' | 'state'>;

export interface VersionRecord {
  readonly version: number;
  readonly state: VersionState;
  readonly createdAt: number;
  readonly stateChangedAt: number;
}

export interface ApiTokenRecord {
  readonly id: string;
  readonly projectId: string;
  readonly secretHash: Buffer;
  readonly admin: boolean;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  /** Scopes (`admin`, `crypto`, `read`); tokens made before scopes existed read as admin ⇒ all three, else crypto+read. */
  readonly scopes?: readonly string[];
  /** When the token stops working (ms since epoch); null = never. */
  readonly expiresAt?: number | null;
}

/** A Huawei grant: lets `granteeProject` call `operations` on one key of `ownerProject`. */
export interface GrantRecord {
  readonly grantId: string;
  readonly keyId: string;
  readonly ownerProject: string;
  readonly granteeProject: string;
  readonly operations: readonly string[];
  readonly name: string;
  /** Project that may retire the grant ('' = none besides the grantee). */
  readonly retiringProject: string;
  /** Project whose token created the grant. */
  readonly issuingProject: string;
  /** The grant its issuer (a grantee) passed operations on from ('' = made by the key's project); removing that one removes this one. */
  readonly parentGrantId: string;
  readonly createdAt: number;
}

export interface Tag {
  readonly key: string;
  readonly value: string;
}

export interface KeyPage {
  readonly keys: KeyRecord[];
  readonly total: number;
}

export interface MetadataStore {
  /** Inserts an Enabled key with version 1; throws AliasTaken when a live key of the project has the alias. */
  insertKey(key: NewKeyRecord): Promise<KeyRecord>;
  keyById(keyId: string): Promise<KeyRecord | undefined>;
  keyByTag(keyTag: string): Promise<KeyRecord | undefined>;
  /** The live (not Deleted) key of a project with this alias. */
  keyByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined>;
  /** Live keys of a project in creation order, optionally of one state. */
  listKeys(projectId: string, opts: { state?: KeyState; offset: number; limit: number }): Promise<KeyPage>;
  /** How many keys are in each state, over all projects (metrics). */
  keyCounts(): Promise<Record<KeyState, number>>;

  /** Moves a key from one of `from` to `to`; false when it was in none of them. */
  transition(keyId: string, from: readonly KeyState[], to: KeyState, at: number, deletionDate?: number | null): Promise<boolean>;
  /** Throws AliasTaken when the new alias is used by another live key of the project. */
  updateKey(keyId: string, patch: { alias?: string; description?: string; rotationEnabled?: boolean; rotationIntervalDays?: number }): Promise<void>;

  /** Claims the next version number; false when another caller claimed it first. */
  claimVersion(keyId: string, version: number, at: number): Promise<boolean>;
  /** Makes a claimed version the current one; false when the key moved on or left Enabled meanwhile. */
  promoteVersion(keyId: string, version: number, at: number): Promise<boolean>;
  /** Removes a claim that is still Creating; false when it was promoted or already gone. */
  dropVersion(keyId: string, version: number): Promise<boolean>;
  versions(keyId: string): Promise<VersionRecord[]>;
  version(keyId: string, version: number): Promise<VersionRecord | undefined>;
  setVersionState(keyId: string, version: number, from: VersionState, to: VersionState, at: number): Promise<boolean>;

  /** PendingDeletion keys whose window has ended. */
  dueForDeletion(now: number): Promise<KeyRecord[]>;
  /** Deleted keys whose token objects may still exist. */
  unpurged(): Promise<KeyRecord[]>;
  markPurged(keyId: string): Promise<void>;
  /** Enabled keys with automatic rotation whose interval has passed since the last rotation (or creation). */
  dueForRotation(now: number): Promise<KeyRecord[]>;
  /** Versions left in Creating since before `before` (a crash between claim and promotion). */
  staleCreating(before: number): Promise<Array<{ keyId: string; version: number }>>;
  /** Every version (not Creating) of every key that is not Deleted: what must have token objects. */
  liveVersions(): Promise<Array<{ keyId: string; version: number }>>;

  setTag(keyId: string, tag: Tag): Promise<void>;
  deleteTag(keyId: string, key: string): Promise<boolean>;
  tags(keyId: string): Promise<Tag[]>;
  projectTags(projectId: string): Promise<Array<{ key: string; values: string[] }>>;

  insertToken(token: ApiTokenRecord): Promise<void>;
  tokenById(id: string): Promise<ApiTokenRecord | undefined>;
  /** Tokens of one project (or all), in creation order. */
  listTokens(projectId?: string): Promise<ApiTokenRecord[]>;
  /** Marks a token revoked; false when there is no such token or it was already revoked. */
  revokeToken(id: string, at: number): Promise<boolean>;

  /** False (nothing written) when the grant names a parent that no longer exists. */
  insertGrant(grant: GrantRecord): Promise<boolean>;
  grant(grantId: string): Promise<GrantRecord | undefined>;
  /** Grants on one key, in creation order. */
  grantsOfKey(keyId: string): Promise<GrantRecord[]>;
  /** Grants that a project may retire (it is the retiring principal or the grantee), in creation order. */
  retirableGrants(projectId: string): Promise<GrantRecord[]>;
  /** Whether `granteeProject` holds a grant on the key that names `operation`. */
  granted(keyId: string, granteeProject: string, operation: string): Promise<boolean>;
  /** Deletes the grant and every grant derived from it (parentGrantId, transitively), at once; false if it didn't exist. */
  deleteGrant(grantId: string): Promise<boolean>;

  /**
   * Runs `fn` unless another process sharing the store runs work of the same name (the sweep):
   * PostgreSQL takes an advisory lock; SQLite runs it (one machine: cluster.ts elects its sweeper).
   */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<Exclusive<T>>;
  close(): Promise<void>;
}

export type Exclusive<T> = { readonly ran: true; readonly value: T } | { readonly ran: false };

/** The store can't be reached (a networked store is down or restarting): 503, try again. */
export class StoreUnavailable extends Error {
  override readonly name = 'StoreUnavailable';
  constructor() {
    super('The metadata store is not reachable.');
  }
}

export class AliasTaken extends Error {
  override readonly name = 'AliasTaken';
}
