/**
 * API tokens: 256 random bits, shown once, stored as a SHA-256 hash (a slow hash adds nothing for
 * secrets with this much entropy), compared in constant time. A token belongs to one project and
 * carries scopes: `admin` (manage keys, grants), `crypto` (use keys), `read` (describe, list).
 * An expired or revoked token stops working on the very next request (every request reads the row).
 * Wire form: `p11kms_<id: 16 hex>_<secret: 43 base64url>`; the id is the lookup key and may be logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiTokenRecord, MetadataStore } from '../store/store';

export const SCOPES = ['admin', 'crypto', 'read'] as const;
export type Scope = (typeof SCOPES)[number];
export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);

/** Without flags a token may use keys and read them (the historical non-admin token). */
export const DEFAULT_SCOPES: readonly Scope[] = ['crypto', 'read'];

export interface Principal {
  readonly tokenId: string;
  readonly projectId: string;
  readonly scopes: ReadonlySet<Scope>;
}

/** What `token list` shows: never the secret or its hash. */
export interface TokenInfo {
  readonly id: string;
  readonly project: string;
  readonly scopes: Scope[];
  readonly created: string;
  readonly expires: string | null;
  readonly revoked: string | null;
}

const WIRE = /^p11kms_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** A bearer token's id (16 hex) or an AWS access key id (AKIA + 16 base32). */
export const TOKEN_ID = /^(?:[0-9a-f]{16}|AKIA[A-Z2-7]{16})$/;
export const ACCESS_KEY_ID = /^AKIA[A-Z2-7]{16}$/;

/**
 * A credential whose secret the server must read back to check a signature (AWS SigV4): kept in
 * the token table's secret column sealed under a key in the token by its caller, never in
 * plaintext, and never usable as a bearer token (its id is not of the bearer form).
 */
export interface SealedCredential {
  readonly id: string;
  readonly projectId: string;
  readonly scopes: ReadonlySet<Scope>;
  readonly sealedSecret: Buffer;
}

const hash = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();
const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const scopesOf = (r: ApiTokenRecord): Scope[] => (r.scopes ?? (r.admin ? SCOPES : DEFAULT_SCOPES)).filter(isScope);

export class ApiTokens {
  constructor(
    private readonly store: MetadataStore,
    private readonly now: () => number = Date.now,
  ) {}

  async create(projectId: string, scopes: readonly Scope[] = DEFAULT_SCOPES, expiresAt: number | null = null): Promise<{ token: string; id: string }> {
    if (!PROJECT_ID.test(projectId)) throw new Error('project id must be 1-64 letters, digits, "-" or "_"');
    const unique = SCOPES.filter((s) => scopes.includes(s));
    if (unique.length === 0) throw new Error('a token needs at least one scope');
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    await this.store.insertToken({
      id,
      projectId,
      secretHash: hash(secret),
      admin: unique.includes('admin'),
      createdAt: this.now(),
      revokedAt: null,
      scopes: unique,
      expiresAt,
    });
    return { token: `p11kms_${id}_${secret}`, id };
  }

  /** The principal for a presented token, or undefined for anything unknown, malformed, expired or revoked. */
  async authenticate(presented: string): Promise<Principal | undefined> {
    const m = WIRE.exec(presented);
    if (!m) return undefined;
    const record = await this.store.tokenById(m[1]!);
    if (!record || record.revokedAt !== null) return undefined;
    if (!timingSafeEqual(record.secretHash, hash(m[2]!))) return undefined;
    if (record.expiresAt !== undefined && record.expiresAt !== null && record.expiresAt <= this.now()) return undefined;
    return { tokenId: record.id, projectId: record.projectId, scopes: new Set(scopesOf(record)) };
  }

  /** Stores an access key (`AKIA…` id) with its secret already sealed. */
  async createSealed(projectId: string, id: string, sealedSecret: Buffer, scopes: readonly Scope[] = DEFAULT_SCOPES, expiresAt: number | null = null): Promise<void> {
    if (!PROJECT_ID.test(projectId)) throw new Error('project id must be 1-64 letters, digits, "-" or "_"');
    if (!ACCESS_KEY_ID.test(id)) throw new Error('an access key id is AKIA and 16 base32 characters');
    const unique = SCOPES.filter((s) => scopes.includes(s));
    if (unique.length === 0) throw new Error('a token needs at least one scope');
    await this.store.insertToken({ id, projectId, secretHash: sealedSecret, admin: unique.includes('admin'), createdAt: this.now(), revokedAt: null, scopes: unique, expiresAt });
  }

  /** A live (not revoked, not expired) access key, or undefined. */
  async sealed(id: string): Promise<SealedCredential | undefined> {
    if (!ACCESS_KEY_ID.test(id)) return undefined;
    const record = await this.store.tokenById(id);
    if (!record || record.revokedAt !== null) return undefined;
    if (record.expiresAt !== undefined && record.expiresAt !== null && record.expiresAt <= this.now()) return undefined;
    return { id: record.id, projectId: record.projectId, scopes: new Set(scopesOf(record)), sealedSecret: record.secretHash };
  }

  async list(projectId?: string): Promise<TokenInfo[]> {
    return (await this.store.listTokens(projectId)).map((r) => ({
      id: r.id,
      project: r.projectId,
      scopes: scopesOf(r),
      created: new Date(r.createdAt).toISOString(),
      expires: iso(r.expiresAt),
      revoked: iso(r.revokedAt),
    }));
  }

  /** False when there is no such token or it was already revoked. */
  async revoke(id: string): Promise<boolean> {
    return TOKEN_ID.test(id) && (await this.store.revokeToken(id, this.now()));
  }
}

/** `30d`, `12h`, `45m`, `90s` from now, or an ISO 8601 date; undefined when it is neither or not in the future. */
export function parseExpiry(text: string, now: number = Date.now()): number | undefined {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text);
  if (m) return now + Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) && t > now ? t : undefined;
}
