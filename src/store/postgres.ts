/**
 * The PostgreSQL metadata store (`KMS_DB=postgres://…`): one database shared by several nodes.
 * Hand-written SQL, the same rows and conditional updates as SQLite (sqlite.ts), so the same
 * contract (test/store/contract.test.ts) holds for both.
 *
 * Freshness across nodes: a trigger NOTIFYs every change to keys, versions and tokens
 * (pg-migrations.ts, migration 2), and each store LISTENs on a connection of its own. The hot point
 * reads (token, key, version) are answered from memory only while that connection is up; a
 * notification empties the cache, and so does losing the connection (then every read goes to the
 * database until it is back). A miss is never remembered, so a key created on another node is found
 * on this node's first request for it.
 *
 * When the database can't be reached, calls fail with StoreUnavailable (503 at the edge) and the
 * pool reconnects by itself on later calls: no restart is needed.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { CHANGE_CHANNEL, MIGRATIONS } from './pg-migrations';
import { toGrant, toKey, toToken, toVersion } from './rows';
import {
  AliasTaken,
  StoreUnavailable,
  type ApiTokenRecord,
  type Exclusive,
  type GrantRecord,
  type KeyPage,
  type KeyRecord,
  type KeyState,
  type MetadataStore,
  type NewKeyRecord,
  type Tag,
  type VersionRecord,
  type VersionState,
} from './store';

const DAY_MS = 86_400_000;
const MAX_CACHED = 10_000;
/** Advisory lock id under which nodes apply migrations one at a time. */
const MIGRATION_LOCK = 0x70_31_31_6b; // 'p11k'
const LISTEN_RETRY_MS = [100, 250, 500, 1_000, 2_000] as const;

/** int8 (BIGINT: ms timestamps, key numbers) as a JS number; every value stored is below 2^53. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATEs and socket errors that mean "the database is not there", not "this query is wrong". */
function unreachable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return true;
  }
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i.test(e.message);
}

function mapped(e: unknown): unknown {
  return unreachable(e) ? new StoreUnavailable() : e;
}

function isAliasConflict(e: unknown): boolean {
  return e instanceof Error && (e as { code?: unknown; constraint?: unknown }).code === '23505' && (e as { constraint?: unknown }).constraint === 'keys_live_alias';
}

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface PgStoreOptions {
  /** Connections in this store's pool (the change-feed listener has its own). */
  readonly poolSize?: number;
  /** Told when the change feed is lost or back (the server logs it). */
  readonly onFeed?: (up: boolean) => void;
}

export class PgStore implements MetadataStore {
  private readonly pool: pg.Pool;
  private migrated: Promise<void> | undefined;
  private readonly names = new Map<string, string>();
  private readonly cache = new Map<string, object>();
  /** Bumped by every change heard of and every own write: a read that spans one is not cached. */
  private generation = 0;
  private listening = false;
  private listener: pg.Client | undefined;
  private listenTry = 0;
  private listenTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly options: PgStoreOptions = {},
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 3_000,
      query_timeout: 15_000,
      idleTimeoutMillis: 30_000,
      types: TYPES,
    });
    // An idle connection dropped by a database restart: the pool replaces it on the next call.
    this.pool.on('error', () => undefined);
    this.listen();
  }

  async insertKey(key: NewKeyRecord): Promise<KeyRecord> {
    try {
      await this.write(() =>
        this.tx(async (c) => {
          await this.run(
            c,
            `INSERT INTO keys (key_id, key_tag, project_id, alias, description, spec, usage, convergent, state, state_changed_at,
                               current_version, created_at, rotation_enabled, rotation_interval_days)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'Enabled', $9, 1, $9, $10, $11)`,
            [key.keyId, key.keyTag, key.projectId, key.alias, key.description, key.spec, key.usage, key.convergent, key.createdAt, key.rotationEnabled, key.rotationIntervalDays],
          );
          await this.run(c, `INSERT INTO key_versions (key_id, version, state, created_at, state_changed_at) VALUES ($1, 1, 'Enabled', $2, $2)`, [key.keyId, key.createdAt]);
        }),
      );
    } catch (e) {
      if (isAliasConflict(e)) throw new AliasTaken(key.alias);
      throw e;
    }
    return (await this.keyById(key.keyId))!;
  }

  keyById(keyId: string): Promise<KeyRecord | undefined> {
    return this.cached(`key:${keyId}`, async () => this.one(`SELECT * FROM keys WHERE key_id = $1`, [keyId], toKey));
  }

  keyByTag(keyTag: string): Promise<KeyRecord | undefined> {
    return this.cached(`tag:${keyTag}`, async () => this.one(`SELECT * FROM keys WHERE key_tag = $1`, [keyTag], toKey));
  }

  keyByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined> {
    return this.one(`SELECT * FROM keys WHERE project_id = $1 AND alias = $2 AND state <> 'Deleted'`, [projectId, alias], toKey);
  }

  async listKeys(projectId: string, opts: { state?: KeyState; offset: number; limit: number }): Promise<KeyPage> {
    const where = `project_id = $1 AND state <> 'Deleted' AND ($2::text IS NULL OR state = $2)`;
    const state = opts.state ?? null;
    const rows = await this.all(`SELECT * FROM keys WHERE ${where} ORDER BY num LIMIT $3 OFFSET $4`, [projectId, state, opts.limit, opts.offset], toKey);
    const n = await this.one(`SELECT count(*)::int AS n FROM keys WHERE ${where}`, [projectId, state], (r: { n: number }) => r.n);
    return { keys: rows, total: n ?? 0 };
  }

  async keyCounts(): Promise<Record<KeyState, number>> {
    const counts: Record<KeyState, number> = { Enabled: 0, Disabled: 0, PendingDeletion: 0, Deleted: 0 };
    for (const r of await this.all('SELECT state, count(*)::int AS n FROM keys GROUP BY state', [], (r: { state: KeyState; n: number }) => r)) counts[r.state] = r.n;
    return counts;
  }

  async transition(keyId: string, from: readonly KeyState[], to: KeyState, at: number, deletionDate: number | null = null): Promise<boolean> {
    return this.changed(`UPDATE keys SET state = $1, state_changed_at = $2, deletion_date = $3 WHERE key_id = $4 AND state = ANY($5::text[])`, [to, at, deletionDate, keyId, [...from]]);
  }

  async updateKey(keyId: string, patch: { alias?: string; description?: string; rotationEnabled?: boolean; rotationIntervalDays?: number }): Promise<void> {
    const sets: string[] = [];
    const params: unknown[] = [keyId];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (patch.alias !== undefined) set('alias', patch.alias);
    if (patch.description !== undefined) set('description', patch.description);
    if (patch.rotationEnabled !== undefined) set('rotation_enabled', patch.rotationEnabled);
    if (patch.rotationIntervalDays !== undefined) set('rotation_interval_days', patch.rotationIntervalDays);
    if (sets.length === 0) return;
    try {
      await this.changed(`UPDATE keys SET ${sets.join(', ')} WHERE key_id = $1`, params);
    } catch (e) {
      if (isAliasConflict(e)) throw new AliasTaken(patch.alias ?? '');
      throw e;
    }
  }

  claimVersion(keyId: string, version: number, at: number): Promise<boolean> {
    return this.changed(
      `INSERT INTO key_versions (key_id, version, state, created_at, state_changed_at) VALUES ($1, $2, 'Creating', $3, $3) ON CONFLICT DO NOTHING`,
      [keyId, version, at],
    );
  }

  promoteVersion(keyId: string, version: number, at: number): Promise<boolean> {
    return this.write(() =>
      this.tx(async (c) => {
        // The claim must still be there: a sweep on another node may have judged it abandoned.
        const claimed = await this.run(c, `UPDATE key_versions SET state = 'Enabled', state_changed_at = $1 WHERE key_id = $2 AND version = $3 AND state = 'Creating'`, [at, keyId, version]);
        if (claimed.rowCount !== 1) return false;
        const moved = await this.run(
          c,
          `UPDATE keys SET current_version = $1, rotation_count = rotation_count + 1, last_rotation_at = $2
           WHERE key_id = $3 AND current_version = $4 AND state = 'Enabled'`,
          [version, at, keyId, version - 1],
        );
        if (moved.rowCount !== 1) throw new NotPromoted();
        return true;
      }),
    ).catch((e: unknown) => {
      if (e instanceof NotPromoted) return false;
      throw e;
    });
  }

  dropVersion(keyId: string, version: number): Promise<boolean> {
    return this.changed(`DELETE FROM key_versions WHERE key_id = $1 AND version = $2 AND state = 'Creating'`, [keyId, version]);
  }

  versions(keyId: string): Promise<VersionRecord[]> {
    return this.all(`SELECT * FROM key_versions WHERE key_id = $1 ORDER BY version`, [keyId], toVersion);
  }

  version(keyId: string, version: number): Promise<VersionRecord | undefined> {
    return this.cached(`version:${keyId}:${version}`, () => this.one(`SELECT * FROM key_versions WHERE key_id = $1 AND version = $2`, [keyId, version], toVersion));
  }

  setVersionState(keyId: string, version: number, from: VersionState, to: VersionState, at: number): Promise<boolean> {
    return this.changed(`UPDATE key_versions SET state = $1, state_changed_at = $2 WHERE key_id = $3 AND version = $4 AND state = $5`, [to, at, keyId, version, from]);
  }

  dueForDeletion(now: number): Promise<KeyRecord[]> {
    return this.all(`SELECT * FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= $1`, [now], toKey);
  }

  unpurged(): Promise<KeyRecord[]> {
    return this.all(`SELECT * FROM keys WHERE state = 'Deleted' AND NOT purged`, [], toKey);
  }

  async markPurged(keyId: string): Promise<void> {
    await this.changed(`UPDATE keys SET purged = true WHERE key_id = $1 AND state = 'Deleted'`, [keyId]);
  }

  dueForRotation(now: number): Promise<KeyRecord[]> {
    return this.all(
      `SELECT * FROM keys WHERE state = 'Enabled' AND rotation_enabled
         AND coalesce(last_rotation_at, created_at) + rotation_interval_days::bigint * $1 <= $2`,
      [DAY_MS, now],
      toKey,
    );
  }

  staleCreating(before: number): Promise<Array<{ keyId: string; version: number }>> {
    return this.all(
      `SELECT key_id, version FROM key_versions WHERE state = 'Creating' AND created_at < $1`,
      [before],
      (r: { key_id: string; version: number }) => ({ keyId: r.key_id, version: r.version }),
    );
  }

  liveVersions(): Promise<Array<{ keyId: string; version: number }>> {
    return this.all(
      `SELECT v.key_id, v.version FROM key_versions v JOIN keys k ON k.key_id = v.key_id
       WHERE k.state <> 'Deleted' AND v.state <> 'Creating' ORDER BY k.num, v.version`,
      [],
      (r: { key_id: string; version: number }) => ({ keyId: r.key_id, version: r.version }),
    );
  }

  async setTag(keyId: string, tag: Tag): Promise<void> {
    await this.changed(
      `INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES ($1, $2, $3) ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
      [keyId, tag.key, tag.value],
    );
  }

  deleteTag(keyId: string, key: string): Promise<boolean> {
    return this.changed(`DELETE FROM key_tags WHERE key_id = $1 AND tag_key = $2`, [keyId, key]);
  }

  tags(keyId: string): Promise<Tag[]> {
    return this.all(
      `SELECT tag_key, tag_value FROM key_tags WHERE key_id = $1 ORDER BY tag_key COLLATE "C"`,
      [keyId],
      (r: { tag_key: string; tag_value: string }) => ({ key: r.tag_key, value: r.tag_value }),
    );
  }

  async projectTags(projectId: string): Promise<Array<{ key: string; values: string[] }>> {
    const rows = await this.all(
      `SELECT DISTINCT t.tag_key COLLATE "C" AS tag_key, t.tag_value COLLATE "C" AS tag_value FROM key_tags t JOIN keys k ON k.key_id = t.key_id
       WHERE k.project_id = $1 AND k.state <> 'Deleted' ORDER BY 1, 2`,
      [projectId],
      (r: { tag_key: string; tag_value: string }) => r,
    );
    const byKey = new Map<string, string[]>();
    for (const r of rows) byKey.set(r.tag_key, [...(byKey.get(r.tag_key) ?? []), r.tag_value]);
    return [...byKey].map(([key, values]) => ({ key, values }));
  }

  async insertToken(t: ApiTokenRecord): Promise<void> {
    const scopes = t.scopes ?? (t.admin ? ['admin', 'crypto', 'read'] : ['crypto', 'read']);
    await this.changed(
      `INSERT INTO api_tokens (id, project_id, secret_hash, admin, created_at, revoked_at, scopes, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [t.id, t.projectId, t.secretHash, scopes.includes('admin'), t.createdAt, t.revokedAt, scopes.join(','), t.expiresAt ?? null],
    );
  }

  tokenById(id: string): Promise<ApiTokenRecord | undefined> {
    return this.cached(`token:${id}`, () => this.one(`SELECT * FROM api_tokens WHERE id = $1`, [id], toToken));
  }

  listTokens(projectId?: string): Promise<ApiTokenRecord[]> {
    return projectId === undefined
      ? this.all(`SELECT * FROM api_tokens ORDER BY created_at, id`, [], toToken)
      : this.all(`SELECT * FROM api_tokens WHERE project_id = $1 ORDER BY created_at, id`, [projectId], toToken);
  }

  revokeToken(id: string, at: number): Promise<boolean> {
    return this.changed(`UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, [at, id]);
  }

  /**
   * Grant writes of one key take turns (a transaction-level advisory lock on the key), so that a
   * grant passed on while its parent is revoked on another node is either removed with it or never
   * written: each statement after the lock sees every grant the previous holder committed.
   */
  async insertGrant(g: GrantRecord): Promise<boolean> {
    return this.write(() =>
      this.tx(async (c) => {
        await this.run(c, `SELECT pg_advisory_xact_lock($1)`, [lockId(`grants:${g.keyId}`)]);
        const r = await this.run(
          c,
          `INSERT INTO grants (grant_id, key_id, owner_project, grantee_project, operations, name, retiring_project, issuing_project, parent_grant_id, created_at)
           SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::bigint
           WHERE $9::text = '' OR EXISTS (SELECT 1 FROM grants WHERE grant_id = $9::text)`,
          [g.grantId, g.keyId, g.ownerProject, g.granteeProject, g.operations.join(','), g.name, g.retiringProject, g.issuingProject, g.parentGrantId, g.createdAt],
        );
        return (r.rowCount ?? 0) === 1;
      }),
    );
  }

  grant(grantId: string): Promise<GrantRecord | undefined> {
    return this.one(`SELECT * FROM grants WHERE grant_id = $1`, [grantId], toGrant);
  }

  grantsOfKey(keyId: string): Promise<GrantRecord[]> {
    return this.all(`SELECT * FROM grants WHERE key_id = $1 ORDER BY created_at, grant_id`, [keyId], toGrant);
  }

  retirableGrants(projectId: string): Promise<GrantRecord[]> {
    return this.all(
      `SELECT g.* FROM grants g JOIN keys k ON k.key_id = g.key_id
       WHERE (g.retiring_project = $1 OR g.grantee_project = $1) AND k.state <> 'Deleted' ORDER BY g.created_at, g.grant_id`,
      [projectId],
      toGrant,
    );
  }

  async granted(keyId: string, granteeProject: string, operation: string): Promise<boolean> {
    const rows = await this.all(`SELECT operations FROM grants WHERE key_id = $1 AND grantee_project = $2`, [keyId, granteeProject], (r: { operations: string }) => r.operations);
    return rows.some((ops) => ops.split(',').includes(operation));
  }

  /** The grant and everything passed on from it, in one transaction under the key's grant lock (see insertGrant). */
  async deleteGrant(grantId: string): Promise<boolean> {
    const keyId = await this.one(`SELECT key_id FROM grants WHERE grant_id = $1`, [grantId], (r: { key_id: string }) => r.key_id);
    if (keyId === undefined) return false;
    return this.write(() =>
      this.tx(async (c) => {
        await this.run(c, `SELECT pg_advisory_xact_lock($1)`, [lockId(`grants:${keyId}`)]);
        const r = await this.run(
          c,
          `WITH RECURSIVE derived(id) AS (SELECT $1::text UNION SELECT g.grant_id FROM grants g JOIN derived d ON g.parent_grant_id = d.id)
           DELETE FROM grants WHERE grant_id IN (SELECT id FROM derived) RETURNING grant_id`,
          [grantId],
        );
        return r.rows.some((row: { grant_id: string }) => row.grant_id === grantId);
      }),
    );
  }

  /**
   * Runs `fn` on this node only while no other node runs work of the same name: a session-level
   * advisory lock on a connection held for the duration (released by PostgreSQL if the node dies).
   */
  async exclusive<T>(name: string, fn: () => Promise<T>): Promise<Exclusive<T>> {
    await this.ready();
    const c = await this.pool.connect().catch((e: unknown) => {
      throw mapped(e);
    });
    const id = lockId(name);
    let broken: Error | undefined;
    const noted = noteErrors(c, (e) => (broken = e));
    try {
      const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [id]);
      if (!got.rows[0]?.ok) return { ran: false };
      try {
        return { ran: true, value: await fn() };
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [id]).catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error('unlock failed');
        });
      }
    } catch (e) {
      if (unreachable(e)) broken = e as Error;
      throw mapped(e);
    } finally {
      // A connection that failed may still hold the lock: destroy it rather than pool it.
      noted.stop();
      c.release(broken);
    }
  }

  /** A pool of this store's database for other users of it (the cross-node rate limiter). */
  get sharedPool(): pg.Pool {
    return this.pool;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.listenTimer);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined);
    // Migrations started by this store finish before its pool goes (main migrates, then closes).
    await this.migrated?.catch(() => undefined);
    await this.pool.end();
  }

  // ----- change feed and cache

  private listen(): void {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 3_000, types: TYPES });
    this.listener = client;
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.setListening(false);
      client.end().catch(() => undefined);
      const delay = LISTEN_RETRY_MS[Math.min(this.listenTry++, LISTEN_RETRY_MS.length - 1)]!;
      this.listenTimer = setTimeout(() => this.listen(), delay);
      this.listenTimer.unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', () => this.invalidate());
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGE_CHANNEL}`))
      .then(() => {
        if (this.listener !== client) return;
        this.listenTry = 0;
        // Changes made while nobody listened were not heard: start from an empty cache.
        this.setListening(true);
      })
      .catch(lost);
  }

  private setListening(up: boolean): void {
    this.invalidate();
    if (this.listening !== up) this.options.onFeed?.(up);
    this.listening = up;
  }

  private invalidate(): void {
    this.generation++;
    this.cache.clear();
  }

  private async cached<T extends object>(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (this.listening) {
      const hit = this.cache.get(key);
      if (hit !== undefined) return hit as T;
    }
    const generation = this.generation;
    const value = await load();
    // Kept only if nothing changed while it was read, and never a miss (see the file comment).
    if (value !== undefined && this.listening && generation === this.generation) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(key, Object.freeze(value));
    }
    return value;
  }

  // ----- queries

  /** Migrations once per store (again after a failure, e.g. the database was down at start-up). */
  private ready(): Promise<void> {
    this.migrated ??= this.migrate().catch((e: unknown) => {
      this.migrated = undefined;
      throw mapped(e);
    });
    return this.migrated;
  }

  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    const noted = noteErrors(c, (e) => (broken = e));
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
        const done = new Set((await c.query<{ id: number }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id));
        for (const m of MIGRATIONS) {
          if (done.has(m.id)) continue;
          await c.query('BEGIN');
          try {
            await c.query(m.sql);
            await c.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
            await c.query('COMMIT');
          } catch (e) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
        }
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } catch (e) {
      broken = e instanceof Error ? e : new Error('migration failed');
      throw e;
    } finally {
      noted.stop();
      c.release(broken);
    }
  }

  /** Named (prepared once per connection) so that hot statements are parsed and planned once. */
  private statement(text: string, values: readonly unknown[]): pg.QueryConfig {
    let name = this.names.get(text);
    if (!name) {
      name = `p11kms_${this.names.size}`;
      this.names.set(text, name);
    }
    return { name, text, values: [...values] };
  }

  private async query(text: string, values: readonly unknown[]): Promise<pg.QueryResult> {
    await this.ready();
    try {
      return await this.pool.query(this.statement(text, values));
    } catch (e) {
      throw mapped(e);
    }
  }

  private run(c: Queryable, text: string, values: readonly unknown[]): Promise<pg.QueryResult> {
    return c.query(this.statement(text, values));
  }

  // Rows are typed by the mapper given: the SQL beside it names the columns.
  private async one<R, T>(text: string, values: readonly unknown[], map: (r: R) => T): Promise<T | undefined> {
    const r = (await this.query(text, values)).rows[0] as R | undefined;
    return r === undefined ? undefined : map(r);
  }

  private async all<R, T>(text: string, values: readonly unknown[], map: (r: R) => T): Promise<T[]> {
    return ((await this.query(text, values)).rows as R[]).map(map);
  }

  /** A write that reports whether it changed a row. */
  private changed(text: string, values: readonly unknown[]): Promise<boolean> {
    return this.write(async () => ((await this.query(text, values)).rowCount ?? 0) > 0);
  }

  /**
   * Own writes empty the cache before (reads in flight won't be kept) and after (our own NOTIFY
   * arrives a moment after the commit; this node's next request must not wait for it).
   */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    this.invalidate();
    try {
      return await fn();
    } finally {
      this.invalidate();
    }
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.ready();
    const c = await this.pool.connect().catch((e: unknown) => {
      throw mapped(e);
    });
    let broken: Error | undefined;
    const noted = noteErrors(c, (e) => (broken = e));
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      if (unreachable(e)) broken = e as Error;
      else await c.query('ROLLBACK').catch((r: unknown) => (broken = r as Error));
      throw mapped(e);
    } finally {
      noted.stop();
      c.release(broken);
    }
  }
}

/** Thrown inside promoteVersion's transaction to roll it back. */
class NotPromoted extends Error {}

/**
 * A client taken out of the pool for several statements has no 'error' listener of the pool's (it
 * listens only to idle clients): its socket failing while it is out (the database stopped) would be
 * thrown as an unhandled 'error' event and end the process. Noted instead; its statements fail on
 * their own, and the caller releases it as broken.
 */
function noteErrors(c: pg.PoolClient, note: (e: Error) => void): { stop(): void } {
  const listener = (e: Error): void => note(e);
  c.on('error', listener);
  return { stop: () => c.off('error', listener) };
}

/** A stable 63-bit advisory lock id for a name. */
function lockId(name: string): string {
  return (createHash('sha256').update(`p11kms:${name}`).digest().readBigInt64BE(0) & 0x7fff_ffff_ffff_ffffn).toString();
}
