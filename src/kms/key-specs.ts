/**
 * The one table of key specs. Everything that differs between AES and RSA CMKs is read from here;
 * nothing below re-lists algorithms.
 */
export type KeySpecName = 'AES_256' | 'RSA_2048';

export interface KeySpec {
  readonly name: KeySpecName;
  /** How a data key or data is sealed under a version of this CMK (envelope algorithm). */
  readonly seal: 'aes-gcm' | 'rsa-oaep-hybrid';
  readonly canConverge: boolean;
  /** Largest data key the vendor lets this CMK protect, in bytes (Huawei KMS.1904: 1520 bits for RSA). */
  readonly maxDataKeyBytes: number;
  /** Largest plaintext of encrypt calls (NCP: 32 KB for AES, 190 B for RSA2048; Huawei ≤ 4096 B). */
  readonly maxPlaintextBytes: number;
  readonly canSign: boolean;
}

export const KEY_SPECS: Readonly<Record<KeySpecName, KeySpec>> = Object.freeze(
  Object.assign(Object.create(null) as Record<KeySpecName, KeySpec>, {
    AES_256: { name: 'AES_256', seal: 'aes-gcm', canConverge: true, maxDataKeyBytes: 1024, maxPlaintextBytes: 32 * 1024, canSign: false },
    RSA_2048: { name: 'RSA_2048', seal: 'rsa-oaep-hybrid', canConverge: false, maxDataKeyBytes: 190, maxPlaintextBytes: 190, canSign: true },
  }),
);

export function isKeySpecName(s: string): s is KeySpecName {
  return Object.prototype.hasOwnProperty.call(KEY_SPECS, s);
}
