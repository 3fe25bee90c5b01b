/**
 * API tokens: 256 random bits, shown once, stored as a SHA-256 hash (a slow hash adds nothing for
 * secrets with this much entropy), compared in constant time.
 * Wire form: `p11kms_<id: 16 hex>_<secret: 43 base64url>`; the id is the lookup key and may be logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MetadataStore } from '../store/store';

export interface Principal {
  readonly tokenId: string;
  readonly projectId: string;
  readonly admin: boolean;
}

const WIRE = /^p11kms_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

const hash = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

export class ApiTokens {
  constructor(private readonly store: MetadataStore) {}

  create(projectId: string, admin: boolean): { token: string; id: string } {
    if (!PROJECT_ID.test(projectId)) throw new Error('project id must be 1-64 letters, digits, "-" or "_"');
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    this.store.insertToken({ id, projectId, secretHash: hash(secret), admin, createdAt: Date.now(), revokedAt: null });
    return { token: `p11kms_${id}_${secret}`, id };
  }

  /** The principal for a presented token, or undefined for anything unknown, malformed or revoked. */
  authenticate(presented: string): Principal | undefined {
    const m = WIRE.exec(presented);
    if (!m) return undefined;
    const record = this.store.tokenById(m[1]!);
    if (!record || record.revokedAt !== null) return undefined;
    if (!timingSafeEqual(record.secretHash, hash(m[2]!))) return undefined;
    return { tokenId: record.id, projectId: record.projectId, admin: record.admin };
  }
}
