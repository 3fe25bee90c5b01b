/**
 * Every template the service hands to C_GenerateKey / C_GenerateKeyPair / C_CopyObject, built in
 * one place with secure defaults: token objects, private, sensitive, never extractable, and only
 * the usages that the object's role needs.
 *
 * CKA_MODIFIABLE: SoftHSM refuses C_CopyObject with CKA_TOKEN=false (CKR_ATTRIBUTE_READ_ONLY) on
 * a non-modifiable object, so AES objects that may get a session copy (`copyable`) are created
 * modifiable. What that opens is small and measured (test/hsm/session-copies.test.ts): CKA_SENSITIVE
 * and CKA_EXTRACTABLE stay one-way (setting them back is CKR_ATTRIBUTE_READ_ONLY), the copy keeps
 * both, and a PIN holder who could change usage flags or labels could already use every key.
 */
import { C, type Template } from './binding';

const protectedSecret = (id: Buffer, label: string, modifiable = false): Template => [
  { type: C.CKA_TOKEN, value: true },
  { type: C.CKA_PRIVATE, value: true },
  { type: C.CKA_SENSITIVE, value: true },
  { type: C.CKA_EXTRACTABLE, value: false },
  { type: C.CKA_MODIFIABLE, value: modifiable },
  { type: C.CKA_ID, value: id },
  { type: C.CKA_LABEL, value: label },
];

/** C_CopyObject template of a session copy: everything else (sensitive, non-extractable, usages) is the original's. */
export const sessionCopyTemplate: Template = [{ type: C.CKA_TOKEN, value: false }];

const noOtherUse: Template = [
  { type: C.CKA_WRAP, value: false },
  { type: C.CKA_UNWRAP, value: false },
  { type: C.CKA_DERIVE, value: false },
];

/** AES-256 CMK version: AES-GCM encrypt/decrypt only. */
export function aesCmkTemplate(id: Buffer, label: string, copyable: boolean): Template {
  return [
    { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
    { type: C.CKA_KEY_TYPE, value: C.CKK_AES },
    { type: C.CKA_VALUE_LEN, value: 32 },
    ...protectedSecret(id, label, copyable),
    { type: C.CKA_ENCRYPT, value: true },
    { type: C.CKA_DECRYPT, value: true },
    { type: C.CKA_SIGN, value: false },
    { type: C.CKA_VERIFY, value: false },
    ...noOtherUse,
  ];
}

/**
 * Synthetic-IV key of a convergent CMK version: AES-CMAC only. A separate key, so that the CMK
 * itself is never used in two modes.
 */
export function aesSivTemplate(id: Buffer, label: string, copyable: boolean): Template {
  return [
    { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
    { type: C.CKA_KEY_TYPE, value: C.CKK_AES },
    { type: C.CKA_VALUE_LEN, value: 32 },
    ...protectedSecret(id, label, copyable),
    { type: C.CKA_ENCRYPT, value: false },
    { type: C.CKA_DECRYPT, value: false },
    { type: C.CKA_SIGN, value: true },
    { type: C.CKA_VERIFY, value: true },
    ...noOtherUse,
  ];
}

/** RSA-2048 CMK version: OAEP decrypt and signing on the private half; the public half is readable. */
export function rsaCmkTemplates(id: Buffer, label: string): { publicTemplate: Template; privateTemplate: Template } {
  return {
    publicTemplate: [
      { type: C.CKA_CLASS, value: C.CKO_PUBLIC_KEY },
      { type: C.CKA_KEY_TYPE, value: C.CKK_RSA },
      { type: C.CKA_TOKEN, value: true },
      { type: C.CKA_PRIVATE, value: false },
      { type: C.CKA_MODIFIABLE, value: false },
      { type: C.CKA_ID, value: id },
      { type: C.CKA_LABEL, value: label },
      { type: C.CKA_MODULUS_BITS, value: 2048 },
      { type: C.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: C.CKA_ENCRYPT, value: true },
      { type: C.CKA_VERIFY, value: true },
      { type: C.CKA_WRAP, value: false },
    ],
    privateTemplate: [
      { type: C.CKA_CLASS, value: C.CKO_PRIVATE_KEY },
      { type: C.CKA_KEY_TYPE, value: C.CKK_RSA },
      ...protectedSecret(id, label),
      { type: C.CKA_DECRYPT, value: true },
      { type: C.CKA_SIGN, value: true },
      // CKA_WRAP does not exist on private keys.
      { type: C.CKA_UNWRAP, value: false },
      { type: C.CKA_DERIVE, value: false },
    ],
  };
}

/** The audit trail's HMAC-SHA256 key (audit-key.ts): signing (MAC) and verifying only, never modifiable. */
export function auditHmacTemplate(id: Buffer, label: string): Template {
  return [
    { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
    { type: C.CKA_KEY_TYPE, value: C.CKK_GENERIC_SECRET },
    { type: C.CKA_VALUE_LEN, value: 32 },
    ...protectedSecret(id, label),
    { type: C.CKA_ENCRYPT, value: false },
    { type: C.CKA_DECRYPT, value: false },
    { type: C.CKA_SIGN, value: true },
    { type: C.CKA_VERIFY, value: true },
    ...noOtherUse,
  ];
}
