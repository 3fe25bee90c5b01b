/** Data keys (Huawei DEKs, NCP custom keys): drawn from the token's RNG and sealed under a CMK. */
import { badRequest } from '../errors/kms-error';
import type { KeyRecord } from '../store/store';
import type { Context } from './envelope/context';
import { assertUsable, type Crypto, type Sealed } from './crypto';
import { KEY_SPECS } from './key-specs';

export interface DataKey extends Sealed {
  readonly plaintext: Buffer;
}

export class DataKeys {
  constructor(private readonly crypto: Crypto) {}

  async create(key: KeyRecord, lengthBytes: number, context: Context): Promise<DataKey> {
    assertUsable(key);
    if (lengthBytes > KEY_SPECS[key.spec].maxDataKeyBytes) {
      throw badRequest('The data key is too long for this key spec.', { subject: 'data-key-length', reason: 'invalid', rule: 'rsa-max' });
    }
    return this.crypto.sealRandom(key, lengthBytes, context);
  }
}
