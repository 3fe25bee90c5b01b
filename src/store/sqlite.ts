import Database from 'better-sqlite3';
import { isKeySpecName } from '../kms/key-specs';
import { AliasTaken, type ApiTokenRecord, type KeyRecord, type KeyState, type KeyUsage, type MetadataStore } from './store';

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
     key_id TEXT PRIMARY KEY,
     key_tag TEXT NOT NULL UNIQUE,
     project_id TEXT NOT NULL,
     alias TEXT NOT NULL,
     description TEXT NOT NULL,
     spec TEXT NOT NULL,
     usage TEXT NOT NULL CHECK (usage IN ('ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'ANY')),
     convergent INTEGER NOT NULL CHECK (convergent IN (0, 1)),
     state TEXT NOT NULL CHECK (state IN ('Enabled', 'Disabled', 'PendingDeletion')),
     current_version INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     UNIQUE (project_id, alias)
   );
   CREATE TABLE key_versions (
     key_id TEXT NOT NULL REFERENCES keys (key_id),
     version INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, version)
   );`,
];

interface KeyRow {
  key_id: string;
  key_tag: string;
  project_id: string;
  alias: string;
  description: string;
  spec: string;
  usage: string;
  convergent: number;
  state: string;
  current_version: number;
  created_at: number;
}

interface TokenRow {
  id: string;
  project_id: string;
  secret_hash: Buffer;
  admin: number;
  created_at: number;
  revoked_at: number | null;
}

function toKey(r: KeyRow): KeyRecord {
  if (!isKeySpecName(r.spec)) throw new Error(`store holds an unknown key spec for ${r.key_id}`);
  return {
    keyId: r.key_id,
    keyTag: r.key_tag,
    projectId: r.project_id,
    alias: r.alias,
    description: r.description,
    spec: r.spec,
    usage: r.usage as KeyUsage,
    convergent: r.convergent === 1,
    state: r.state as KeyState,
    currentVersion: r.current_version,
    createdAt: r.created_at,
  };
}

export class SqliteStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    // The CLI and the server share the file; wait for the other's write rather than failing.
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.stmts = {
      insertKey: this.db.prepare(
        `INSERT INTO keys (key_id, key_tag, project_id, alias, description, spec, usage, convergent, state, current_version, created_at)
         VALUES (@keyId, @keyTag, @projectId, @alias, @description, @spec, @usage, @convergent, @state, @currentVersion, @createdAt)`,
      ),
      insertVersion: this.db.prepare(`INSERT INTO key_versions (key_id, version, created_at) VALUES (?, ?, ?)`),
      keyById: this.db.prepare<[string], KeyRow>(`SELECT * FROM keys WHERE key_id = ?`),
      keyByTag: this.db.prepare<[string], KeyRow>(`SELECT * FROM keys WHERE key_tag = ?`),
      keyByAlias: this.db.prepare<[string, string], KeyRow>(`SELECT * FROM keys WHERE project_id = ? AND alias = ?`),
      insertToken: this.db.prepare(
        `INSERT INTO api_tokens (id, project_id, secret_hash, admin, created_at, revoked_at)
         VALUES (@id, @projectId, @secretHash, @admin, @createdAt, @revokedAt)`,
      ),
      tokenById: this.db.prepare<[string], TokenRow>(`SELECT * FROM api_tokens WHERE id = ?`),
    };
  }

  insertKey(key: KeyRecord): void {
    const tx = this.db.transaction(() => {
      this.stmts.insertKey.run({ ...key, convergent: key.convergent ? 1 : 0 });
      for (let v = 1; v <= key.currentVersion; v++) this.stmts.insertVersion.run(key.keyId, v, key.createdAt);
    });
    try {
      tx();
    } catch (e) {
      if (e instanceof Error && /UNIQUE constraint failed: keys\.project_id, keys\.alias/.test(e.message)) {
        throw new AliasTaken(key.alias);
      }
      throw e;
    }
  }

  keyById(keyId: string): KeyRecord | undefined {
    const r = this.stmts.keyById.get(keyId);
    return r && toKey(r);
  }

  keyByTag(keyTag: string): KeyRecord | undefined {
    const r = this.stmts.keyByTag.get(keyTag);
    return r && toKey(r);
  }

  keyByAlias(projectId: string, alias: string): KeyRecord | undefined {
    const r = this.stmts.keyByAlias.get(projectId, alias);
    return r && toKey(r);
  }

  insertToken(t: ApiTokenRecord): void {
    this.stmts.insertToken.run({ ...t, admin: t.admin ? 1 : 0 });
  }

  tokenById(id: string): ApiTokenRecord | undefined {
    const r = this.stmts.tokenById.get(id);
    return (
      r && {
        id: r.id,
        projectId: r.project_id,
        secretHash: r.secret_hash,
        admin: r.admin === 1,
        createdAt: r.created_at,
        revokedAt: r.revoked_at,
      }
    );
  }

  close(): void {
    this.db.close();
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
