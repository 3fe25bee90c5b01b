/** The store's files hold key metadata and API token hashes: owner-only, wherever KMS_DB points. */
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';

const OWNER_ONLY = 0o600;

/**
 * Creates the database file 0600 if it is missing (SQLite gives its -wal and -shm files the
 * database file's mode) and narrows any existing one, -wal and -shm included, to 0600.
 */
export function ownerOnlyFiles(dbFile: string): void {
  if (dbFile === ':memory:' || dbFile === '') return;
  closeSync(openSync(dbFile, 'a', OWNER_ONLY));
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) if (existsSync(f)) chmodSync(f, OWNER_ONLY);
}
