/**
 * Rows as both stores read them (same column names) and their records. SQLite keeps booleans as
 * 0/1, PostgreSQL as booleans: `Flag` takes either.
 */
import { isKeySpecName } from '../kms/key-specs';
import type { ApiTokenRecord, GrantRecord, KeyRecord, KeyState, KeyUsage, VersionRecord, VersionState } from './store';

type Flag = number | boolean;
const flag = (v: Flag): boolean => v === true || v === 1;

export interface KeyRow {
  num: number;
  /** Numbered per project (NCP's keyId); `num` counts every key. */
  project_num: number;
  key_id: string;
  key_tag: string;
  project_id: string;
  alias: string;
  description: string;
  spec: string;
  usage: string;
  convergent: Flag;
  state: string;
  state_changed_at: number;
  current_version: number;
  created_at: number;
  deletion_date: number | null;
  rotation_enabled: Flag;
  rotation_interval_days: number;
  last_rotation_at: number | null;
  rotation_count: number;
}

export interface VersionRow {
  version: number;
  state: string;
  created_at: number;
  state_changed_at: number;
}

export interface TokenRow {
  id: string;
  project_id: string;
  secret_hash: Buffer;
  admin: Flag;
  created_at: number;
  revoked_at: number | null;
  scopes: string | null;
  expires_at: number | null;
}

export interface GrantRow {
  grant_id: string;
  key_id: string;
  owner_project: string;
  grantee_project: string;
  operations: string;
  name: string;
  retiring_project: string;
  issuing_project: string;
  parent_grant_id: string;
  created_at: number;
}

export const toToken = (r: TokenRow): ApiTokenRecord => ({
  id: r.id,
  projectId: r.project_id,
  secretHash: r.secret_hash,
  admin: flag(r.admin),
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  scopes: r.scopes === null ? (flag(r.admin) ? ['admin', 'crypto', 'read'] : ['crypto', 'read']) : r.scopes.split(',').filter(Boolean),
  expiresAt: r.expires_at,
});

export const toGrant = (r: GrantRow): GrantRecord => ({
  grantId: r.grant_id,
  keyId: r.key_id,
  ownerProject: r.owner_project,
  granteeProject: r.grantee_project,
  operations: r.operations.split(',').filter(Boolean),
  name: r.name,
  retiringProject: r.retiring_project,
  issuingProject: r.issuing_project,
  parentGrantId: r.parent_grant_id,
  createdAt: r.created_at,
});

export function toKey(r: KeyRow): KeyRecord {
  if (!isKeySpecName(r.spec)) throw new Error(`store holds an unknown key spec for ${r.key_id}`);
  return {
    keyId: r.key_id,
    num: r.project_num,
    keyTag: r.key_tag,
    projectId: r.project_id,
    alias: r.alias,
    description: r.description,
    spec: r.spec,
    usage: r.usage as KeyUsage,
    convergent: flag(r.convergent),
    state: r.state as KeyState,
    stateChangedAt: r.state_changed_at,
    currentVersion: r.current_version,
    createdAt: r.created_at,
    deletionDate: r.deletion_date,
    rotationEnabled: flag(r.rotation_enabled),
    rotationIntervalDays: r.rotation_interval_days,
    lastRotationAt: r.last_rotation_at,
    rotationCount: r.rotation_count,
  };
}

export const toVersion = (r: VersionRow): VersionRecord => ({
  version: r.version,
  state: r.state as VersionState,
  createdAt: r.created_at,
  stateChangedAt: r.state_changed_at,
});

