/**
 * CMKs: creation, lookup by each dialect's name for them, ownership, and the whole lifecycle:
 * enable/disable, scheduled deletion and the sweep that destroys token objects, rotation (manual
 * and automatic), version states, aliases, descriptions and tags.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { badRequest, invalidState, keyPendingDeletion, KmsError, notFound, unsupported } from '../errors/kms-error';
import type { Hsm, VersionRef } from '../hsm';
import type { Logger } from '../log/logger';
import { AliasTaken, type GrantRecord, type KeyRecord, type KeyState, type KeyUsage, type MetadataStore, type Tag, type VersionRecord } from '../store/store';
import type { ReconcileReport } from '../store/reconcile';
import { cannotPassOn, parentGrant } from './grant-rules';
import { KeyLocks } from './key-lock';
import { assertNotPendingDeletion, assertRotatable, type RotationPolicy } from './key-rules';
import { KEY_SPECS, type KeySpecName } from './key-specs';

export const DAY_MS = 86_400_000;
export const MAX_TAGS_PER_KEY = 10;
export const MAX_GRANTS_PER_KEY = 100;
/** A version claimed this long ago and never promoted was left by a crash; its objects are removed. */
const STALE_CREATING_MS = 10 * 60_000;

export interface KeysOptions {
  /** How old a Creating version must be to count as abandoned (default 10 min). */
  readonly staleCreatingMs?: number;
  /** Token ↔ store reconciliation, run at the end of every sweep (src/store/reconcile.ts). */
  readonly reconciler?: { pass(): Promise<ReconcileReport> };
}

export interface NewKey {
  readonly projectId: string;
  readonly alias: string;
  readonly description: string;
  readonly spec: KeySpecName;
  readonly usage: KeyUsage;
  readonly convergent: boolean;
  readonly rotationEnabled?: boolean;
  readonly rotationIntervalDays?: number;
}

/** How a dialect names a key: Huawei key_id, NCP keyTag, or an alias of the caller's project. */
export type KeyRef = { readonly keyId: string } | { readonly keyTag: string } | { readonly alias: string };

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export class Keys {
  private readonly locks = new KeyLocks();

  constructor(
    private readonly store: MetadataStore,
    private readonly hsm: Hsm,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
    private readonly options: KeysOptions = {},
  ) {}

  async create(req: NewKey): Promise<KeyRecord> {
    if (req.convergent && !KEY_SPECS[req.spec].canConverge) {
      throw new KmsError('UnsupportedOperation', 'Only AES_256 keys can be convergent.');
    }
    if (await this.store.keyByAlias(req.projectId, req.alias)) throw aliasTaken();
    const keyId = randomUUID();
    const ref = { keyId, version: 1 };
    // Token objects first, row second: a row never names objects that don't exist. A crash in
    // between leaves unreferenced objects, which nothing uses and reconciliation removes.
    try {
      await this.createVersionObjects(req.spec, req.convergent, ref);
    } catch (e) {
      // Half-made (an AES key without its SIV key): remove what exists; never retried blindly.
      await this.hsm.destroyVersion(ref).catch(() => 0);
      throw e;
    }
    try {
      const key = await this.store.insertKey({
        keyId,
        keyTag: randomBytes(32).toString('hex'),
        projectId: req.projectId,
        alias: req.alias,
        description: req.description,
        spec: req.spec,
        usage: req.usage,
        convergent: req.convergent,
        createdAt: this.clock.now(),
        rotationEnabled: req.rotationEnabled ?? false,
        rotationIntervalDays: req.rotationIntervalDays ?? 365,
      });
      this.log.info('key created', { keyId, projectId: key.projectId, spec: key.spec, convergent: key.convergent });
      return key;
    } catch (e) {
      await this.hsm.destroyVersion(ref);
      if (e instanceof AliasTaken) throw aliasTaken();
      throw e;
    }
  }

  /** A live key of this project by id; another project's or a deleted key reads as not found. */
  async byId(projectId: string, keyId: string): Promise<KeyRecord> {
    return owned(projectId, await this.store.keyById(keyId));
  }

  /**
   * The key a caller may use for `operation`: a key of its own project (by id, tag or alias), or a
   * key of another project by id when a grant gives the caller's project that operation on it
   * (grants are checked on every call, so a revoked grant stops working on the next request).
   * Without an operation, grants are not consulted. Anything else, including "exists but not
   * yours", is the one not-found answer.
   */
  async forOperation(projectId: string, ref: KeyRef, operation: string | undefined): Promise<KeyRecord> {
    const found = await ('keyId' in ref ? this.store.keyById(ref.keyId) : 'keyTag' in ref ? this.store.keyByTag(ref.keyTag) : this.store.keyByAlias(projectId, ref.alias));
    if (!found || found.state === 'Deleted') throw notFound();
    if (found.projectId === projectId) return found;
    if (operation !== undefined && 'keyId' in ref && (await this.store.granted(found.keyId, projectId, operation))) return found;
    throw notFound();
  }

  /**
   * A grant on a key not pending deletion, to another project, within the per-key quota. A grantee
   * (reaching the key through its grant of `via`, the dialect's create-grant) passes on only a
   * subset of one of its own grants, which becomes the new grant's parent (grant-rules.ts).
   */
  async createGrant(
    key: KeyRecord,
    g: { granteeProject: string; operations: readonly string[]; name: string; retiringProject: string; issuingProject: string },
    via: string,
  ): Promise<GrantRecord> {
    assertNotPendingDeletion(key);
    if (g.granteeProject === key.projectId) throw badRequest('The key\'s own project needs no grant.', { subject: 'grantee', reason: 'invalid' });
    const grants = await this.store.grantsOfKey(key.keyId);
    if (grants.length >= MAX_GRANTS_PER_KEY) throw unsupported('too-many-grants', 'Too many grants on this key.');
    const parent = parentGrant(key, grants, g.issuingProject, g.operations, via);
    const grant: GrantRecord = {
      grantId: randomBytes(32).toString('hex'),
      keyId: key.keyId,
      ownerProject: key.projectId,
      createdAt: this.clock.now(),
      parentGrantId: parent?.grantId ?? '',
      ...g,
    };
    // Refused by the store when the parent went meanwhile (revoked on another worker or node).
    if (!(await this.store.insertGrant(grant))) throw cannotPassOn();
    this.log.info('grant created', { grantId: grant.grantId, keyId: key.keyId, grantee: g.granteeProject, parentGrantId: grant.parentGrantId });
    return grant;
  }

  grantsOf(key: KeyRecord): Promise<GrantRecord[]> {
    return this.store.grantsOfKey(key.keyId);
  }

  retirableGrants(projectId: string): Promise<GrantRecord[]> {
    return this.store.retirableGrants(projectId);
  }

  /** A grant on this key by id, or not-found (KMS.0207-like answers are the edge's to choose). */
  async grantOf(key: KeyRecord, grantId: string): Promise<GrantRecord | undefined> {
    const g = await this.store.grant(grantId);
    return g && g.keyId === key.keyId ? g : undefined;
  }

  /** Removes the grant and every grant passed on from it, at once (MetadataStore.deleteGrant). */
  async deleteGrant(grant: GrantRecord): Promise<boolean> {
    const done = await this.store.deleteGrant(grant.grantId);
    if (done) this.log.info('grant deleted', { grantId: grant.grantId, keyId: grant.keyId });
    return done;
  }

  list(projectId: string, opts: { state?: KeyState; offset: number; limit: number }) {
    return this.store.listKeys(projectId, opts);
  }

  async versions(key: KeyRecord): Promise<VersionRecord[]> {
    return (await this.store.versions(key.keyId)).filter((v) => v.state !== 'Creating');
  }

  enable(key: KeyRecord): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      if (!(await this.store.transition(key.keyId, ['Disabled'], 'Enabled', this.clock.now()))) {
        throw await this.stateError(key.keyId, 'not-disabled', 'The key is not disabled.');
      }
      return this.reload(key);
    });
  }

  disable(key: KeyRecord): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      if (!(await this.store.transition(key.keyId, ['Enabled'], 'Disabled', this.clock.now()))) {
        throw await this.stateError(key.keyId, 'not-enabled', 'The key is not enabled.');
      }
      return this.reload(key);
    });
  }

  scheduleDeletion(key: KeyRecord, pendingDays: number): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      const now = this.clock.now();
      if (!(await this.store.transition(key.keyId, ['Enabled', 'Disabled'], 'PendingDeletion', now, now + pendingDays * DAY_MS))) {
        throw await this.stateError(key.keyId, 'already-pending-deletion', 'The key is already pending deletion.');
      }
      this.log.info('key deletion scheduled', { keyId: key.keyId, pendingDays });
      return this.reload(key);
    });
  }

  /** Both vendors put a key whose deletion is cancelled in the Disabled state. */
  cancelDeletion(key: KeyRecord): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      if (!(await this.store.transition(key.keyId, ['PendingDeletion'], 'Disabled', this.clock.now(), null))) {
        throw await this.stateError(key.keyId, 'not-pending-deletion', 'The key is not pending deletion.');
      }
      return this.reload(key);
    });
  }

  /** NCP's immediate delete: only for a key already pending deletion. */
  async deleteNow(key: KeyRecord): Promise<void> {
    await this.locks.run(key.keyId, async () => {
      if (!(await this.store.transition(key.keyId, ['PendingDeletion'], 'Deleted', this.clock.now()))) {
        throw await this.stateError(key.keyId, 'not-pending-deletion', 'The key is not pending deletion.');
      }
    });
    await this.purge(key.keyId);
  }

  /** Adds a version and makes it current; old versions stay for decryption. */
  rotate(key: KeyRecord, policy: Pick<RotationPolicy, 'asymmetric'> = { asymmetric: true }): Promise<KeyRecord> {
    if (!policy.asymmetric && KEY_SPECS[key.spec].seal !== 'aes-gcm') return Promise.reject(unsupported('asymmetric-rotation', 'Asymmetric keys cannot be rotated.'));
    return this.locks.run(key.keyId, async () => {
      const fresh = await this.reload(key);
      if (fresh.state !== 'Enabled') throw await this.stateError(key.keyId, 'not-enabled', 'Only an enabled key can be rotated.');
      const ref: VersionRef = { keyId: key.keyId, version: fresh.currentVersion + 1 };
      // Claim the number before making objects, so no two processes create the same version's objects.
      if (!(await this.store.claimVersion(key.keyId, ref.version, this.clock.now()))) {
        throw new KmsError('Throttled', 'The key is being rotated. Try again.');
      }
      try {
        // Objects with this version's CKA_ID can only be leftovers of an earlier failed attempt
        // (the number was free until now): remove them so a lookup never finds the wrong key.
        await this.hsm.destroyVersion(ref);
        await this.createVersionObjects(fresh.spec, fresh.convergent, ref);
      } catch (e) {
        // The claim is dropped only once no object of it is left; otherwise the stale-Creating sweep finishes it.
        if ((await this.hsm.destroyVersion(ref).then(() => true, () => false))) await this.store.dropVersion(key.keyId, ref.version);
        throw e;
      }
      if (!(await this.store.promoteVersion(key.keyId, ref.version, this.clock.now()))) {
        // The key left Enabled (or moved on) while the objects were made: undo, report its state.
        await this.hsm.destroyVersion(ref);
        await this.store.dropVersion(key.keyId, ref.version);
        throw await this.stateError(key.keyId, 'not-enabled', 'Only an enabled key can be rotated.');
      }
      this.log.info('key rotated', { keyId: key.keyId, version: ref.version });
      return this.reload(key);
    });
  }

  /**
   * Turns automatic rotation on or off (on: optionally with a new interval). Turning it to the
   * state it is in is refused unless the policy says it is idempotent.
   */
  setAutoRotation(key: KeyRecord, enabled: boolean, policy: RotationPolicy, intervalDays?: number): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      const fresh = await this.reload(key);
      assertRotatable(fresh, policy);
      if (fresh.rotationEnabled === enabled && !policy.idempotent) {
        throw enabled
          ? invalidState('rotation-not-disabled', 'Automatic rotation is already enabled for this key.')
          : invalidState('rotation-not-enabled', 'Automatic rotation is not enabled for this key.');
      }
      await this.store.updateKey(key.keyId, { rotationEnabled: enabled, ...(intervalDays === undefined ? {} : { rotationIntervalDays: intervalDays }) });
      return this.reload(key);
    });
  }

  /** Changes the interval of a key whose automatic rotation is on. */
  setRotationInterval(key: KeyRecord, intervalDays: number, policy: RotationPolicy): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      const fresh = await this.reload(key);
      assertRotatable(fresh, policy);
      if (!fresh.rotationEnabled) throw invalidState('rotation-not-enabled', 'Automatic rotation is not enabled for this key.');
      await this.store.updateKey(key.keyId, { rotationIntervalDays: intervalDays });
      return this.reload(key);
    });
  }

  /** NCP: a version can be disabled unless it is the newest, and not while the key is disabled. */
  setVersionEnabled(key: KeyRecord, version: number, enabled: boolean): Promise<VersionRecord> {
    return this.locks.run(key.keyId, async () => {
      const fresh = await this.reload(key);
      const v = await this.store.version(key.keyId, version);
      if (!v || v.state === 'Creating') throw new KmsError('NotFound', 'The key version does not exist.');
      if (fresh.state === 'Disabled') throw invalidState('not-enabled', 'The key is disabled.');
      assertNotPendingDeletion(fresh);
      if (!enabled && version === fresh.currentVersion) throw invalidState('latest-version', 'The newest version cannot be disabled.');
      const [from, to] = enabled ? (['Disabled', 'Enabled'] as const) : (['Enabled', 'Disabled'] as const);
      await this.store.setVersionState(key.keyId, version, from, to, this.clock.now());
      return (await this.store.version(key.keyId, version))!;
    });
  }

  updateAlias(key: KeyRecord, alias: string): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      assertNotPendingDeletion(await this.reload(key));
      try {
        await this.store.updateKey(key.keyId, { alias });
      } catch (e) {
        if (e instanceof AliasTaken) throw aliasTaken();
        throw e;
      }
      return this.reload(key);
    });
  }

  updateDescription(key: KeyRecord, description: string): Promise<KeyRecord> {
    return this.locks.run(key.keyId, async () => {
      assertNotPendingDeletion(await this.reload(key));
      await this.store.updateKey(key.keyId, { description });
      return this.reload(key);
    });
  }

  tags(key: KeyRecord): Promise<Tag[]> {
    return this.store.tags(key.keyId);
  }

  projectTags(projectId: string) {
    return this.store.projectTags(projectId);
  }

  /** Applies tag changes all or nothing; at most 10 tags per key. */
  changeTags(key: KeyRecord, set: readonly Tag[], remove: readonly string[]): Promise<void> {
    return this.locks.run(key.keyId, async () => {
      assertNotPendingDeletion(await this.reload(key));
      const next = new Map((await this.store.tags(key.keyId)).map((t) => [t.key, t.value]));
      for (const k of remove) next.delete(k);
      for (const t of set) next.set(t.key, t.value);
      if (next.size > MAX_TAGS_PER_KEY) throw unsupported('too-many-tags', `A key can have at most ${MAX_TAGS_PER_KEY} tags.`);
      for (const k of remove) await this.store.deleteTag(key.keyId, k);
      for (const t of set) await this.store.setTag(key.keyId, t);
    });
  }

  /** Removes one tag by its key; a tag the key doesn't have is NotFound. */
  deleteTag(key: KeyRecord, tagKey: string): Promise<void> {
    return this.locks.run(key.keyId, async () => {
      assertNotPendingDeletion(await this.reload(key));
      if (!(await this.store.deleteTag(key.keyId, tagKey))) throw new KmsError('NotFound', 'The tag does not exist.', { subject: 'tag' });
    });
  }

  /**
   * One pass of the background work, run from stored state so it survives restarts:
   * destroy keys whose deletion window ended, finish purges a crash interrupted, remove versions a
   * crash left half-made, and rotate keys whose automatic rotation is due. Nodes sharing a store
   * take turns (MetadataStore.exclusive): a pass while another node's runs is skipped.
   */
  async sweep(): Promise<{ deleted: number; rotated: number; orphansDestroyed?: number; skipped?: true }> {
    const pass = await this.store.exclusive('sweep', () => this.sweepPass());
    return pass.ran ? pass.value : { deleted: 0, rotated: 0, skipped: true };
  }

  private async sweepPass(): Promise<{ deleted: number; rotated: number; orphansDestroyed?: number }> {
    const now = this.clock.now();
    let deleted = 0;
    for (const key of await this.store.dueForDeletion(now)) {
      const won = await this.locks.run(key.keyId, () => this.store.transition(key.keyId, ['PendingDeletion'], 'Deleted', now));
      if (won) deleted++;
    }
    for (const key of await this.store.unpurged()) await this.purge(key.keyId);
    for (const { keyId, version } of await this.store.staleCreating(now - (this.options.staleCreatingMs ?? STALE_CREATING_MS))) {
      await this.locks.run(keyId, async () => {
        // Row first: a rotation in another process can no longer promote it once it is gone. A
        // crash before the objects are destroyed leaves orphans, which reconciliation removes.
        if (await this.store.dropVersion(keyId, version)) await this.hsm.destroyVersion({ keyId, version });
      });
    }
    let rotated = 0;
    for (const key of await this.store.dueForRotation(now)) {
      try {
        await this.rotate(key);
        rotated++;
      } catch (e) {
        this.log.warn('automatic rotation failed', { keyId: key.keyId, error: e instanceof KmsError ? e.code : 'internal' });
      }
    }
    if (!this.options.reconciler) return { deleted, rotated };
    const { destroyed } = await this.options.reconciler.pass();
    return { deleted, rotated, orphansDestroyed: destroyed };
  }

  /** Destroys every token object of every version of a Deleted key, then records that it did. */
  private async purge(keyId: string): Promise<void> {
    await this.locks.run(keyId, async () => {
      const key = await this.store.keyById(keyId);
      if (!key || key.state !== 'Deleted') return;
      let objects = 0;
      for (const v of await this.store.versions(keyId)) objects += await this.hsm.destroyVersion({ keyId, version: v.version });
      await this.store.markPurged(keyId);
      this.log.info('key deleted', { keyId, versions: key.currentVersion, objects });
    });
  }

  private async createVersionObjects(spec: KeySpecName, convergent: boolean, ref: VersionRef): Promise<void> {
    if (KEY_SPECS[spec].seal === 'rsa-oaep-hybrid') await this.hsm.createRsaVersion(ref);
    else await this.hsm.createAesVersion(ref, convergent);
  }

  private async reload(key: KeyRecord): Promise<KeyRecord> {
    const fresh = await this.store.keyById(key.keyId);
    if (!fresh || fresh.state === 'Deleted') throw notFound();
    return fresh;
  }

  /** The error for a refused transition, named after the state the key is actually in. */
  private async stateError(keyId: string, rule: Parameters<typeof invalidState>[0], message: string): Promise<KmsError> {
    const now = await this.store.keyById(keyId);
    if (!now || now.state === 'Deleted') return notFound();
    if (now.state === 'PendingDeletion' && rule !== 'already-pending-deletion') return keyPendingDeletion();
    return invalidState(rule, message);
  }
}

function owned(projectId: string, key: KeyRecord | undefined): KeyRecord {
  if (!key || key.projectId !== projectId || key.state === 'Deleted') throw notFound();
  return key;
}

function aliasTaken(): KmsError {
  return new KmsError('AlreadyExists', 'A key with this alias already exists.');
}
