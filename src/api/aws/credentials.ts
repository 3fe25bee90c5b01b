/**
 * AWS access keys. SigV4 needs the secret itself on the server, so it is kept sealed (AES-GCM in
 * the token) under a key of the service's own: an AES CMK of the reserved project
 * `p11kms:system`, which no API token can name (a project id has no ':'). The sealed secret sits in
 * the token table (ApiTokens.createSealed), bound by its context to its access key id and project.
 *
 * Verifying a request opens the secret and derives the day's signing key (kSigning); that derived
 * key is kept in memory for its date and scope, so a request costs no token call. The access key's
 * record is still read on every request, so a revoked or expired key stops at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { KmsError } from '../../errors/kms-error';
import type { Principal, Scope } from '../../kms/api-tokens';
import type { KeyRecord } from '../../store/store';
import type { Services } from '../services';
import { signingKey } from './sigv4';

export const SYSTEM_PROJECT = 'p11kms:system';
const SEAL_ALIAS = 'aws-credentials';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const CACHE_MAX = 4096;

/** The 12-digit account id of a project: derived, so every process and node agrees without storing it. */
export function accountOf(projectId: string): string {
  const h = createHash('sha256').update(`p11kms-aws-account:${projectId}`).digest();
  return (h.readBigUInt64BE(0) % 1_000_000_000_000n).toString().padStart(12, '0');
}

export interface AwsCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly accountId: string;
  readonly region: string;
}

function accessKeyId(): string {
  const bytes = randomBytes(16);
  let id = 'AKIA';
  for (const b of bytes) id += BASE32[b & 31];
  return id;
}

const sealContext = (id: string, projectId: string): Buffer => Buffer.from(`p11kms-aws-credential:${id}:${projectId}`, 'utf8');

type Deps = Pick<Services, 'keys' | 'crypto' | 'tokens'>;

export class AwsCredentials {
  private readonly cache = new Map<string, { readonly sealed: Buffer; readonly key: Buffer }>();

  constructor(
    private readonly s: Deps,
    readonly region: string,
  ) {}

  /** Makes an access key of `projectId` (and, the first time, the key that seals every secret). */
  async create(projectId: string, scopes: readonly Scope[], expiresAt: number | null): Promise<AwsCredential> {
    const sealer = await this.sealingKey(true);
    const id = accessKeyId();
    const secret = randomBytes(30).toString('base64');
    const { ciphertext } = await this.s.crypto.encrypt(sealer, Buffer.from(secret, 'utf8'), sealContext(id, projectId));
    await this.s.tokens.createSealed(projectId, id, ciphertext, scopes, expiresAt);
    return { accessKeyId: id, secretAccessKey: secret, accountId: accountOf(projectId), region: this.region };
  }

  /**
   * The principal of a live access key and its signing key for one credential scope; an unknown,
   * revoked or expired key is the one UnrecognizedClient answer.
   */
  async signingKey(id: string, date: string, region: string, service: string): Promise<{ principal: Principal; key: Buffer }> {
    const cred = await this.s.tokens.sealed(id);
    if (!cred) throw new KmsError('Unauthenticated', 'The security token included in the request is invalid.', { subject: 'credential' });
    const principal: Principal = { tokenId: cred.id, projectId: cred.projectId, scopes: cred.scopes };
    const cacheKey = `${id}/${date}/${region}/${service}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.sealed.equals(cred.sealedSecret)) return { principal, key: hit.key };
    const sealer = await this.sealingKey(false);
    const { plaintext } = await this.s.crypto.open(sealer, cred.sealedSecret, sealContext(cred.id, cred.projectId), { projectId: sealer.projectId });
    try {
      const key = signingKey(plaintext, date, region, service);
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(cacheKey, { sealed: cred.sealedSecret, key });
      return { principal, key };
    } finally {
      plaintext.fill(0);
    }
  }

  private async sealingKey(create: boolean): Promise<KeyRecord> {
    try {
      return await this.s.keys.forOperation(SYSTEM_PROJECT, { alias: SEAL_ALIAS }, undefined);
    } catch (e) {
      if (!create || !(e instanceof KmsError) || e.code !== 'NotFound') throw e;
    }
    try {
      return await this.s.keys.create({
        projectId: SYSTEM_PROJECT,
        alias: SEAL_ALIAS,
        description: 'Seals the secrets of AWS access keys',
        spec: 'AES_256',
        usage: 'ENCRYPT_DECRYPT',
        convergent: false,
      });
    } catch (e) {
      // Another process made it first.
      if (e instanceof KmsError && e.code === 'AlreadyExists') return this.s.keys.forOperation(SYSTEM_PROJECT, { alias: SEAL_ALIAS }, undefined);
      throw e;
    }
  }
}
