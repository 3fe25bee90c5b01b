import Database from 'better-sqlite3';
import { ownerOnlyFiles } from './file-mode';
import { ReadCache } from './read-cache';
import { toGrant, toKey, toToken, toVersion, type GrantRow, type KeyRow, type TokenRow, type VersionRow } from './rows';
import {
  AliasTaken,
  type ApiTokenRecord,
  type GrantRecord,
  type KeyPage,
  type KeyRecord,
  type Exclusive,
  type KeyState,
  type MetadataStore,
  type NewKeyRecord,
  type Tag,
  type VersionRecord,
  type VersionState,
} from './store';

const DAY_MS = 86_400_000;

/** Schema migrations, applied in order; PRAGMA user_version records how many ran. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     project_id TEXT NOT NULL,
     secret_hash BLOB NOT NULL,
     admin INTEGER NOT NULL CHECK (admin IN (0, 1)),
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE keys (
     num INTEGER PRIMARY KEY AUTOINCREMENT,
     key_id TEXT NOT NULL UNIQUE,
     key_tag TEXT NOT NULL UNIQUE,
     project_id TEXT NOT NULL,
     alias TEXT NOT NULL,
     description TEXT NOT NULL,
     spec TEXT NOT NULL,
     usage TEXT NOT NULL CHECK (usage IN ('ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'ANY')),
     convergent INTEGER NOT NULL CHECK (convergent IN (0, 1)),
     state TEXT NOT NULL CHECK (state IN ('Enabled', 'Disabled', 'PendingDeletion', 'Deleted')),
     state_changed_at INTEGER NOT NULL,
     current_version INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     deletion_date INTEGER,
     purged INTEGER NOT NULL DEFAULT 0 CHECK (purged IN (0, 1)),
     rotation_enabled INTEGER NOT NULL CHECK (rotation_enabled IN (0, 1)),
     rotation_interval_days INTEGER NOT NULL,
     last_rotation_at INTEGER,
     rotation_count INTEGER NOT NULL DEFAULT 0
   );
   -- Aliases are unique among live keys; a deleted key's alias may be used again.
   CREATE UNIQUE INDEX keys_live_alias ON keys (project_id, alias) WHERE state <> 'Deleted';
   CREATE INDEX keys_project ON keys (project_id, num);
   CREATE TABLE key_versions (
     key_id TEXT NOT NULL REFERENCES keys (key_id),
     version INTEGER NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('Creating', 'Enabled', 'Disabled')),
     created_at INTEGER NOT NULL,
     state_changed_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, version)
   );
   CREATE TABLE key_tags (
     key_id TEXT NOT NULL REFERENCES keys (key_id),
     tag_key TEXT NOT NULL,
     tag_value TEXT NOT NULL,
     PRIMARY KEY (key_id, tag_key)
   );`,
  // 2: token scopes and expiry; grants (Huawei) across projects.
  `ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
   ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
   UPDATE api_tokens SET scopes = CASE admin WHEN 1 THEN 'admin,crypto,read' ELSE 'crypto,read' END;
   CREATE INDEX api_tokens_project ON api_tokens (project_id, created_at);
   CREATE TABLE grants (
     grant_id TEXT PRIMARY KEY,
     key_id TEXT NOT NULL REFERENCES keys (key_id),
     owner_project TEXT NOT NULL,
     grantee_project TEXT NOT NULL,
     operations TEXT NOT NULL,
     name TEXT NOT NULL,
     retiring_project TEXT NOT NULL,
     issuing_project TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX grants_key ON grants (key_id, created_at);
   CREATE INDEX grants_grantee ON grants (grantee_project, key_id);
   CREATE INDEX grants_retiring ON grants (retiring_project);`,
  // 3: grants passed on by a grantee name the grant they came from (removed with it).
  `ALTER TABLE grants ADD COLUMN parent_grant_id TEXT NOT NULL DEFAULT '';
   CREATE INDEX grants_parent ON grants (parent_grant_id);`,
  // 4: NCP key numbers per project (a global counter told tenants how many keys others make).
  //    Existing keys keep the number clients already know.
  `ALTER TABLE keys ADD COLUMN project_num INTEGER;
   UPDATE keys SET project_num = num;
   CREATE UNIQUE INDEX keys_project_num ON keys (project_id, project_num);`,
];

/** Thrown inside promoteVersion's transaction to roll it back. */
class NotPromoted extends Error {}

function isAliasConflict(e: unknown): boolean {
  return e instanceof Error && /UNIQUE constraint failed: keys\.project_id, keys\.alias/.test(e.message);
}

export class SqliteStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** The hot point reads (token, key, version); see read-cache.ts for why it is never stale. */
  private readonly cache: ReadCache;

  constructor(file: string) {
    ownerOnlyFiles(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    ownerOnlyFiles(file);
    this.db.pragma('foreign_keys = ON');
    // The CLI and the server share the file; wait for the other's write rather than failing.
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const dataVersion = this.db.prepare<[], number>('PRAGMA data_version').pluck();
    this.cache = new ReadCache(
      () => dataVersion.get()!,
      () => this.db.inTransaction,
    );
  }

  async insertKey(key: NewKeyRecord): Promise<KeyRecord> {
    const insert = this.db.transaction(() => {
      this
        .q(
          `INSERT INTO keys (key_id, key_tag, project_id, alias, description, spec, usage, convergent, state, state_changed_at,
                             current_version, created_at, rotation_enabled, rotation_interval_days, project_num)
           VALUES (@keyId, @keyTag, @projectId, @alias, @description, @spec, @usage, @convergent, 'Enabled', @createdAt,
                   1, @createdAt, @rotationEnabled, @rotationIntervalDays,
                   (SELECT coalesce(max(project_num), 0) + 1 FROM keys WHERE project_id = @projectId))`,
        )
        .run({ ...key, convergent: key.convergent ? 1 : 0, rotationEnabled: key.rotationEnabled ? 1 : 0 });
      this
        .q(`INSERT INTO key_versions (key_id, version, state, created_at, state_changed_at) VALUES (?, 1, 'Enabled', ?, ?)`)
        .run(key.keyId, key.createdAt, key.createdAt);
    });
    try {
      insert();
    } catch (e) {
      if (isAliasConflict(e)) throw new AliasTaken(key.alias);
      throw e;
    }
    return (await this.keyById(key.keyId))!;
  }

  async keyById(keyId: string): Promise<KeyRecord | undefined> {
    return this.cache.get(`key:${keyId}`, () => {
      const r = this.q<[string], KeyRow>(`SELECT * FROM keys WHERE key_id = ?`).get(keyId);
      return r && toKey(r);
    });
  }

  async keyByTag(keyTag: string): Promise<KeyRecord | undefined> {
    return this.cache.get(`tag:${keyTag}`, () => {
      const r = this.q<[string], KeyRow>(`SELECT * FROM keys WHERE key_tag = ?`).get(keyTag);
      return r && toKey(r);
    });
  }

  async keyByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined> {
    const r = this
      .q<[string, string], KeyRow>(`SELECT * FROM keys WHERE project_id = ? AND alias = ? AND state <> 'Deleted'`)
      .get(projectId, alias);
    return r && toKey(r);
  }

  async listKeys(projectId: string, opts: { state?: KeyState; offset: number; limit: number }): Promise<KeyPage> {
    const where = `project_id = @projectId AND state <> 'Deleted'${opts.state ? ' AND state = @state' : ''}`;
    const params = { projectId, state: opts.state ?? null, offset: opts.offset, limit: opts.limit };
    const rows = this.q<typeof params, KeyRow>(`SELECT * FROM keys WHERE ${where} ORDER BY num LIMIT @limit OFFSET @offset`).all(params);
    const { n } = this.q<typeof params, { n: number }>(`SELECT count(*) AS n FROM keys WHERE ${where}`).get(params)!;
    return { keys: rows.map(toKey), total: n };
  }

  async keyCounts(): Promise<Record<KeyState, number>> {
    const counts: Record<KeyState, number> = { Enabled: 0, Disabled: 0, PendingDeletion: 0, Deleted: 0 };
    for (const r of this.q<[], { state: KeyState; n: number }>('SELECT state, count(*) AS n FROM keys GROUP BY state').all()) counts[r.state] = r.n;
    return counts;
  }

  async transition(keyId: string, from: readonly KeyState[], to: KeyState, at: number, deletionDate: number | null = null): Promise<boolean> {
    const placeholders = from.map(() => '?').join(', ');
    const r = this
      .q(`UPDATE keys SET state = ?, state_changed_at = ?, deletion_date = ? WHERE key_id = ? AND state IN (${placeholders})`)
      .run(to, at, deletionDate, keyId, ...from);
    return r.changes === 1;
  }

  async updateKey(keyId: string, patch: { alias?: string; description?: string; rotationEnabled?: boolean; rotationIntervalDays?: number }): Promise<void> {
    const sets: string[] = [];
    const params: Record<string, string | number> = { keyId };
    if (patch.alias !== undefined) (sets.push('alias = @alias'), (params['alias'] = patch.alias));
    if (patch.description !== undefined) (sets.push('description = @description'), (params['description'] = patch.description));
    if (patch.rotationEnabled !== undefined) (sets.push('rotation_enabled = @re'), (params['re'] = patch.rotationEnabled ? 1 : 0));
    if (patch.rotationIntervalDays !== undefined) (sets.push('rotation_interval_days = @ri'), (params['ri'] = patch.rotationIntervalDays));
    if (sets.length === 0) return;
    try {
      this.q(`UPDATE keys SET ${sets.join(', ')} WHERE key_id = @keyId`).run(params);
    } catch (e) {
      if (isAliasConflict(e)) throw new AliasTaken(patch.alias ?? '');
      throw e;
    }
  }

  async claimVersion(keyId: string, version: number, at: number): Promise<boolean> {
    const r = this
      .q(`INSERT OR IGNORE INTO key_versions (key_id, version, state, created_at, state_changed_at) VALUES (?, ?, 'Creating', ?, ?)`)
      .run(keyId, version, at, at);
    return r.changes === 1;
  }

  async promoteVersion(keyId: string, version: number, at: number): Promise<boolean> {
    const promote = this.db.transaction(() => {
      // The claim must still be there: a sweep in another process may have judged it abandoned,
      // destroyed its objects and dropped it; promoting then would make a version without a row.
      const claimed = this
        .q(`UPDATE key_versions SET state = 'Enabled', state_changed_at = ? WHERE key_id = ? AND version = ? AND state = 'Creating'`)
        .run(at, keyId, version);
      if (claimed.changes !== 1) return false;
      const moved = this
        .q(
          `UPDATE keys SET current_version = ?, rotation_count = rotation_count + 1, last_rotation_at = ?
           WHERE key_id = ? AND current_version = ? AND state = 'Enabled'`,
        )
        .run(version, at, keyId, version - 1);
      if (moved.changes !== 1) throw new NotPromoted(); // rolls the version update back
      return true;
    });
    try {
      return promote();
    } catch (e) {
      if (e instanceof NotPromoted) return false;
      throw e;
    }
  }

  async dropVersion(keyId: string, version: number): Promise<boolean> {
    return this.q(`DELETE FROM key_versions WHERE key_id = ? AND version = ? AND state = 'Creating'`).run(keyId, version).changes === 1;
  }

  async versions(keyId: string): Promise<VersionRecord[]> {
    return this.q<[string], VersionRow>(`SELECT * FROM key_versions WHERE key_id = ? ORDER BY version`).all(keyId).map(toVersion);
  }

  async version(keyId: string, version: number): Promise<VersionRecord | undefined> {
    return this.cache.get(`version:${keyId}:${version}`, () => {
      const r = this.q<[string, number], VersionRow>(`SELECT * FROM key_versions WHERE key_id = ? AND version = ?`).get(keyId, version);
      return r && toVersion(r);
    });
  }

  async setVersionState(keyId: string, version: number, from: VersionState, to: VersionState, at: number): Promise<boolean> {
    const r = this
      .q(`UPDATE key_versions SET state = ?, state_changed_at = ? WHERE key_id = ? AND version = ? AND state = ?`)
      .run(to, at, keyId, version, from);
    return r.changes === 1;
  }

  async dueForDeletion(now: number): Promise<KeyRecord[]> {
    return this
      .q<[number], KeyRow>(`SELECT * FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= ?`)
      .all(now)
      .map(toKey);
  }

  async unpurged(): Promise<KeyRecord[]> {
    return this.q<[], KeyRow>(`SELECT * FROM keys WHERE state = 'Deleted' AND purged = 0`).all().map(toKey);
  }

  async markPurged(keyId: string): Promise<void> {
    this.q(`UPDATE keys SET purged = 1 WHERE key_id = ? AND state = 'Deleted'`).run(keyId);
  }

  async dueForRotation(now: number): Promise<KeyRecord[]> {
    return this
      .q<[number, number], KeyRow>(
        `SELECT * FROM keys WHERE state = 'Enabled' AND rotation_enabled = 1
           AND coalesce(last_rotation_at, created_at) + rotation_interval_days * ? <= ?`,
      )
      .all(DAY_MS, now)
      .map(toKey);
  }

  async staleCreating(before: number): Promise<Array<{ keyId: string; version: number }>> {
    return this
      .q<[number], { key_id: string; version: number }>(`SELECT key_id, version FROM key_versions WHERE state = 'Creating' AND created_at < ?`)
      .all(before)
      .map((r) => ({ keyId: r.key_id, version: r.version }));
  }

  async liveVersions(): Promise<Array<{ keyId: string; version: number }>> {
    return this
      .q<[], { key_id: string; version: number }>(
        `SELECT v.key_id, v.version FROM key_versions v JOIN keys k ON k.key_id = v.key_id
         WHERE k.state <> 'Deleted' AND v.state <> 'Creating' ORDER BY k.num, v.version`,
      )
      .all()
      .map((r) => ({ keyId: r.key_id, version: r.version }));
  }

  async setTag(keyId: string, tag: Tag): Promise<void> {
    this
      .q(`INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?, ?, ?) ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`)
      .run(keyId, tag.key, tag.value);
  }

  async deleteTag(keyId: string, key: string): Promise<boolean> {
    return this.q(`DELETE FROM key_tags WHERE key_id = ? AND tag_key = ?`).run(keyId, key).changes === 1;
  }

  async tags(keyId: string): Promise<Tag[]> {
    return this
      .q<[string], { tag_key: string; tag_value: string }>(`SELECT tag_key, tag_value FROM key_tags WHERE key_id = ? ORDER BY tag_key`)
      .all(keyId)
      .map((r) => ({ key: r.tag_key, value: r.tag_value }));
  }

  async projectTags(projectId: string): Promise<Array<{ key: string; values: string[] }>> {
    const rows = this
      .q<[string], { tag_key: string; tag_value: string }>(
        `SELECT DISTINCT t.tag_key, t.tag_value FROM key_tags t JOIN keys k ON k.key_id = t.key_id
         WHERE k.project_id = ? AND k.state <> 'Deleted' ORDER BY t.tag_key, t.tag_value`,
      )
      .all(projectId);
    const byKey = new Map<string, string[]>();
    for (const r of rows) byKey.set(r.tag_key, [...(byKey.get(r.tag_key) ?? []), r.tag_value]);
    return [...byKey].map(([key, values]) => ({ key, values }));
  }

  async insertToken(t: ApiTokenRecord): Promise<void> {
    const scopes = t.scopes ?? (t.admin ? ['admin', 'crypto', 'read'] : ['crypto', 'read']);
    this
      .q(
        `INSERT INTO api_tokens (id, project_id, secret_hash, admin, created_at, revoked_at, scopes, expires_at)
         VALUES (@id, @projectId, @secretHash, @admin, @createdAt, @revokedAt, @scopes, @expiresAt)`,
      )
      .run({
        id: t.id,
        projectId: t.projectId,
        secretHash: t.secretHash,
        admin: scopes.includes('admin') ? 1 : 0,
        createdAt: t.createdAt,
        revokedAt: t.revokedAt,
        scopes: scopes.join(','),
        expiresAt: t.expiresAt ?? null,
      });
  }

  async tokenById(id: string): Promise<ApiTokenRecord | undefined> {
    return this.cache.get(`token:${id}`, () => {
      const r = this.q<[string], TokenRow>(`SELECT * FROM api_tokens WHERE id = ?`).get(id);
      return r && toToken(r);
    });
  }

  async listTokens(projectId?: string): Promise<ApiTokenRecord[]> {
    const rows =
      projectId === undefined
        ? this.q<[], TokenRow>(`SELECT * FROM api_tokens ORDER BY created_at, id`).all()
        : this.q<[string], TokenRow>(`SELECT * FROM api_tokens WHERE project_id = ? ORDER BY created_at, id`).all(projectId);
    return rows.map(toToken);
  }

  async revokeToken(id: string, at: number): Promise<boolean> {
    return this.q(`UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`).run(at, id).changes === 1;
  }

  async insertGrant(g: GrantRecord): Promise<boolean> {
    // One statement: the parent's existence is checked where the row is written (SQLite writes one
    // at a time), so a grant passed on while its parent is revoked by another process is never left behind.
    return (
      this
        .q(
          `INSERT INTO grants (grant_id, key_id, owner_project, grantee_project, operations, name, retiring_project, issuing_project, parent_grant_id, created_at)
           SELECT @grantId, @keyId, @ownerProject, @granteeProject, @operations, @name, @retiringProject, @issuingProject, @parentGrantId, @createdAt
           WHERE @parentGrantId = '' OR EXISTS (SELECT 1 FROM grants WHERE grant_id = @parentGrantId)`,
        )
        .run({ ...g, operations: g.operations.join(',') }).changes === 1
    );
  }

  async grant(grantId: string): Promise<GrantRecord | undefined> {
    const r = this.q<[string], GrantRow>(`SELECT * FROM grants WHERE grant_id = ?`).get(grantId);
    return r && toGrant(r);
  }

  async grantsOfKey(keyId: string): Promise<GrantRecord[]> {
    return this.q<[string], GrantRow>(`SELECT * FROM grants WHERE key_id = ? ORDER BY created_at, grant_id`).all(keyId).map(toGrant);
  }

  async retirableGrants(projectId: string): Promise<GrantRecord[]> {
    return this
      .q<[string, string], GrantRow>(
        `SELECT g.* FROM grants g JOIN keys k ON k.key_id = g.key_id
         WHERE (g.retiring_project = ? OR g.grantee_project = ?) AND k.state <> 'Deleted' ORDER BY g.created_at, g.grant_id`,
      )
      .all(projectId, projectId)
      .map(toGrant);
  }

  async granted(keyId: string, granteeProject: string, operation: string): Promise<boolean> {
    const rows = this
      .q<[string, string], { operations: string }>(`SELECT operations FROM grants WHERE key_id = ? AND grantee_project = ?`)
      .all(keyId, granteeProject);
    return rows.some((r) => r.operations.split(',').includes(operation));
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    const remove = this.db.transaction((id: string) => {
      if (this.q<[string], { n: number }>(`SELECT count(*) AS n FROM grants WHERE grant_id = ?`).get(id)!.n === 0) return false;
      this
        .q(
          `WITH RECURSIVE derived(id) AS (SELECT ? UNION SELECT g.grant_id FROM grants g JOIN derived d ON g.parent_grant_id = d.id)
           DELETE FROM grants WHERE grant_id IN (SELECT id FROM derived)`,
        )
        .run(id);
      return true;
    });
    return remove.immediate(grantId);
  }

  async exclusive<T>(_name: string, fn: () => Promise<T>): Promise<Exclusive<T>> {
    return { ran: true, value: await fn() };
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Prepared once per distinct SQL text: statements are reused on every request. */
  private q<P extends unknown[] | object = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    // Our own commits don't change data_version: a statement that may write empties the cache.
    if (!st.readonly) this.cache.clear();
    return st as unknown as Database.Statement<P, R>;
  }

  private migrate(): void {
    const done = this.db.pragma('user_version', { simple: true }) as number;
    for (let i = done; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i]!);
        this.db.pragma(`user_version = ${i + 1}`);
      })();
    }
  }
}
