/**
 * The state rules every dialect shares: which key states an operation accepts, and what may rotate.
 * Each refusal is one domain error (KeyDisabled, KeyPendingDeletion, …) that dialects map.
 */
import { keyDisabled, keyPendingDeletion, KmsError, unsupported } from '../errors/kms-error';
import type { KeyRecord } from '../store/store';
import { KEY_SPECS } from './key-specs';

/** Refuses every use of a key that is not enabled, with the state's own error. */
export function assertEnabled(key: KeyRecord): void {
  if (key.state === 'Disabled') throw keyDisabled();
  assertNotPendingDeletion(key);
  if (key.state === 'Deleted') throw new KmsError('NotFound', 'The key does not exist.', { subject: 'key' });
}

/** Changes to a key (other than cancelling its deletion) are refused while it waits to be deleted. */
export function assertNotPendingDeletion(key: KeyRecord): void {
  if (key.state === 'PendingDeletion') throw keyPendingDeletion();
}

/**
 * What a vendor lets rotation do; the rules themselves are applied in Keys. NCP rotates RSA keys
 * and changes a disabled key's settings; Huawei and AWS rotate symmetric keys only, and only while
 * enabled; AWS answers "enable" on a rotating key by updating its period instead of refusing.
 */
export interface RotationPolicy {
  readonly asymmetric: boolean;
  readonly whileDisabled: boolean;
  /** Turning rotation on when it is on (or off when off) succeeds instead of being refused. */
  readonly idempotent: boolean;
}

export function assertRotatable(key: KeyRecord, policy: RotationPolicy): void {
  if (!policy.asymmetric && KEY_SPECS[key.spec].seal !== 'aes-gcm') {
    throw unsupported('asymmetric-rotation', 'Asymmetric keys cannot be rotated.');
  }
  if (policy.whileDisabled) assertNotPendingDeletion(key);
  else assertEnabled(key);
}
