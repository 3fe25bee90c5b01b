/**
 * PostgreSQL schema migrations: numbered, forward-only, each applied once in its own transaction
 * and recorded in schema_migrations. Nodes starting together serialise on an advisory lock.
 *
 * Expand, then contract: a migration only adds (tables, nullable or defaulted columns, indexes,
 * triggers) so that nodes still running the previous release keep working against it; a column or
 * table the code no longer reads is dropped by a later migration, shipped once no node of the
 * release that read it is left. So a schema change never needs every node stopped at once. A node
 * finding migrations newer than its own (a newer release already started) runs with them, since
 * they only expanded.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'keys, versions, tags, tokens, grants',
    sql: `
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        secret_hash BYTEA NOT NULL,
        admin BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT,
        scopes TEXT,
        expires_at BIGINT
      );
      CREATE INDEX api_tokens_project ON api_tokens (project_id, created_at);
      CREATE TABLE keys (
        num BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key_id TEXT NOT NULL UNIQUE,
        key_tag TEXT NOT NULL UNIQUE,
        project_id TEXT NOT NULL,
        alias TEXT NOT NULL,
        description TEXT NOT NULL,
        spec TEXT NOT NULL,
        usage TEXT NOT NULL CHECK (usage IN ('ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'ANY')),
        convergent BOOLEAN NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('Enabled', 'Disabled', 'PendingDeletion', 'Deleted')),
        state_changed_at BIGINT NOT NULL,
        current_version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        deletion_date BIGINT,
        purged BOOLEAN NOT NULL DEFAULT false,
        rotation_enabled BOOLEAN NOT NULL,
        rotation_interval_days INTEGER NOT NULL,
        last_rotation_at BIGINT,
        rotation_count INTEGER NOT NULL DEFAULT 0
      );
      -- Aliases are unique among live keys; a deleted key's alias may be used again.
      CREATE UNIQUE INDEX keys_live_alias ON keys (project_id, alias) WHERE state <> 'Deleted';
      CREATE INDEX keys_project ON keys (project_id, num);
      CREATE TABLE key_versions (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        version INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('Creating', 'Enabled', 'Disabled')),
        created_at BIGINT NOT NULL,
        state_changed_at BIGINT NOT NULL,
        PRIMARY KEY (key_id, version)
      );
      CREATE TABLE key_tags (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (key_id, tag_key)
      );
      CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        owner_project TEXT NOT NULL,
        grantee_project TEXT NOT NULL,
        operations TEXT NOT NULL,
        name TEXT NOT NULL,
        retiring_project TEXT NOT NULL,
        issuing_project TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX grants_key ON grants (key_id, created_at);
      CREATE INDEX grants_grantee ON grants (grantee_project, key_id);
      CREATE INDEX grants_retiring ON grants (retiring_project);`,
  },
  {
    id: 2,
    name: 'change feed: NOTIFY on every change to what nodes cache',
    // A trigger, not the code, so that every writer (a node, the CLI, an operator's psql) is heard.
    // NOTIFY is delivered at commit, to every listening node.
    sql: `
      CREATE FUNCTION p11kms_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('p11kms_changes', TG_TABLE_NAME);
        RETURN NULL;
      END $$;
      CREATE TRIGGER keys_changed AFTER INSERT OR UPDATE OR DELETE ON keys
        FOR EACH STATEMENT EXECUTE FUNCTION p11kms_notify_change();
      CREATE TRIGGER key_versions_changed AFTER INSERT OR UPDATE OR DELETE ON key_versions
        FOR EACH STATEMENT EXECUTE FUNCTION p11kms_notify_change();
      CREATE TRIGGER api_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON api_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION p11kms_notify_change();`,
  },
  {
    id: 3,
    name: 'rate limits counted across nodes',
    // rate-limiter-flexible's RateLimiterPostgres table; unlogged: counts of the current second only.
    sql: `
      CREATE UNLOGGED TABLE rate_limits (
        key VARCHAR(255) PRIMARY KEY,
        points INTEGER NOT NULL DEFAULT 0,
        expire BIGINT
      );`,
  },
  {
    id: 4,
    name: 'grants passed on by a grantee name their parent',
    // Removed with it (PgStore.deleteGrant). Defaulted, so a node of the release before writes ''.
    sql: `
      ALTER TABLE grants ADD COLUMN parent_grant_id TEXT NOT NULL DEFAULT '';
      CREATE INDEX grants_parent ON grants (parent_grant_id);`,
  },
  {
    id: 5,
    name: 'NCP key numbers per project',
    // A global counter told tenants how many keys others make. Existing keys keep the number
    // clients know. A trigger numbers every new key, also those inserted by a node of the release
    // before; the advisory lock serialises inserts of one project across nodes, so two never draw
    // the same number.
    sql: `
      ALTER TABLE keys ADD COLUMN project_num BIGINT;
      UPDATE keys SET project_num = num;
      CREATE UNIQUE INDEX keys_project_num ON keys (project_id, project_num);
      CREATE FUNCTION p11kms_number_key() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('p11kms:key-number'), hashtext(NEW.project_id));
        SELECT coalesce(max(project_num), 0) + 1 INTO NEW.project_num FROM keys WHERE project_id = NEW.project_id;
        RETURN NEW;
      END $$;
      CREATE TRIGGER keys_number BEFORE INSERT ON keys FOR EACH ROW EXECUTE FUNCTION p11kms_number_key();`,
  },
];

/** The table of migration 3. */
export const RATE_LIMIT_TABLE = 'rate_limits';

/** The LISTEN/NOTIFY channel of migration 2. */
export const CHANGE_CHANNEL = 'p11kms_changes';
