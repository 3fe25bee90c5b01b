/** CMKs: creation, lookup by each dialect's name for them, and ownership. */
import { randomBytes, randomUUID } from 'node:crypto';
import { KmsError, notFound } from '../errors/kms-error';
import type { Hsm } from '../hsm/hsm';
import type { Logger } from '../log/logger';
import { AliasTaken, type KeyRecord, type KeyUsage, type MetadataStore } from '../store/store';
import { KEY_SPECS, type KeySpecName } from './key-specs';

export interface NewKey {
  readonly projectId: string;
  readonly alias: string;
  readonly description: string;
  readonly spec: KeySpecName;
  readonly usage: KeyUsage;
  readonly convergent: boolean;
}

export class Keys {
  constructor(
    private readonly store: MetadataStore,
    private readonly hsm: Hsm,
    private readonly log: Logger,
  ) {}

  async create(req: NewKey): Promise<KeyRecord> {
    if (req.convergent && !KEY_SPECS[req.spec].canConverge) {
      throw new KmsError('UnsupportedOperation', 'Only AES_256 keys can be convergent.');
    }
    if (this.store.keyByAlias(req.projectId, req.alias)) throw aliasTaken();
    const key: KeyRecord = {
      ...req,
      keyId: randomUUID(),
      keyTag: randomBytes(32).toString('hex'),
      state: 'Enabled',
      currentVersion: 1,
      createdAt: Date.now(),
    };
    const ref = { keyId: key.keyId, version: 1 };
    // Token objects first, row second: a row never names objects that don't exist. A crash in
    // between leaves unreferenced objects, which nothing uses.
    if (KEY_SPECS[key.spec].seal === 'rsa-oaep-hybrid') await this.hsm.createRsaVersion(ref);
    else await this.hsm.createAesVersion(ref, key.convergent);
    try {
      this.store.insertKey(key);
    } catch (e) {
      await this.hsm.destroyVersion(ref);
      if (e instanceof AliasTaken) throw aliasTaken();
      throw e;
    }
    this.log.info('key created', { keyId: key.keyId, projectId: key.projectId, spec: key.spec, convergent: key.convergent });
    return key;
  }

  /** A key of this project by id; another project's key reads as not found, never as forbidden. */
  byId(projectId: string, keyId: string): KeyRecord {
    return owned(projectId, this.store.keyById(keyId));
  }

  byTag(projectId: string, keyTag: string): KeyRecord {
    return owned(projectId, this.store.keyByTag(keyTag));
  }

  byAlias(projectId: string, alias: string): KeyRecord {
    return owned(projectId, this.store.keyByAlias(projectId, alias));
  }
}

function owned(projectId: string, key: KeyRecord | undefined): KeyRecord {
  if (!key || key.projectId !== projectId) throw notFound();
  return key;
}

function aliasTaken(): KmsError {
  return new KmsError('AlreadyExists', 'A key with this alias already exists.');
}
