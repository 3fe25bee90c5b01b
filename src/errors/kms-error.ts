/**
 * The domain's error taxonomy (DESIGN.md decision 8). Every failure a client can see is one of
 * these codes; each dialect maps them once, in src/api/<dialect>/errors.ts, to its own HTTP status
 * and body. Messages are written for clients: they never carry key material, plaintexts, PINs or
 * tokens, and never the CKR_* detail of an HSM failure (that goes to the server log only).
 */
export type KmsErrorCode =
  | 'BadRequest'
  | 'PayloadTooLarge'
  | 'Unauthenticated'
  | 'Forbidden'
  | 'NotFound'
  | 'RouteNotFound'
  | 'MethodNotAllowed'
  | 'KeyDisabled'
  | 'KeyPendingDeletion'
  /** The key is in a state this operation doesn't accept; `stateRule` says which rule. */
  | 'InvalidState'
  | 'UnsupportedOperation'
  | 'AlreadyExists'
  | 'InvalidCiphertext'
  | 'Throttled'
  | 'HsmUnavailable'
  /** The metadata store (PostgreSQL) can't be reached; nothing was changed. */
  | 'StoreUnavailable'
  | 'Internal';

/** Why a request was refused as bad input; dialects with per-field codes (Huawei) use it. */
export type BadRequestReason = 'missing' | 'invalid' | 'malformed-json' | 'unknown-field' | 'too-long';

export interface BadRequestDetail {
  /** The request field at fault, in the dialect's own spelling (e.g. `datakey_length`). */
  readonly field?: string;
  readonly reason: BadRequestReason;
  /** A narrower rule that was broken; dialects with finer codes map it. */
  readonly rule?: 'rsa-max' | 'digest-length';
}

/** Which state rule an InvalidState or UnsupportedOperation broke; vendors have a code for each. */
export type StateRule =
  | 'not-disabled'
  | 'not-enabled'
  | 'not-pending-deletion'
  | 'already-pending-deletion'
  | 'rotation-not-enabled'
  | 'rotation-not-disabled'
  | 'latest-version'
  | 'version-disabled'
  | 'asymmetric-rotation'
  | 'symmetric-key'
  | 'asymmetric-key'
  | 'sign-only-key'
  | 'encrypt-only-key'
  | 'too-many-tags';

export interface KmsErrorOptions {
  readonly badRequest?: BadRequestDetail;
  readonly stateRule?: StateRule;
  /**
   * Set only by a dialect's edge when its vendor has an exact code for this case (e.g. Huawei's
   * KMS.1903 for a datakey_length that is not a multiple of 8); the domain never sets it.
   */
  readonly vendorCode?: string;
}

export class KmsError extends Error {
  override readonly name = 'KmsError';
  readonly badRequest: BadRequestDetail | undefined;
  readonly stateRule: StateRule | undefined;
  readonly vendorCode: string | undefined;

  constructor(
    readonly code: KmsErrorCode,
    message: string,
    options: KmsErrorOptions = {},
  ) {
    super(message);
    this.badRequest = options.badRequest;
    this.stateRule = options.stateRule;
    this.vendorCode = options.vendorCode;
  }
}

export function badRequest(message: string, detail: BadRequestDetail, vendorCode?: string): KmsError {
  return new KmsError('BadRequest', message, { badRequest: detail, ...(vendorCode ? { vendorCode } : {}) });
}

export function invalidState(rule: StateRule, message: string): KmsError {
  return new KmsError('InvalidState', message, { stateRule: rule });
}

export function unsupported(rule: StateRule, message: string): KmsError {
  return new KmsError('UnsupportedOperation', message, { stateRule: rule });
}

export function notFound(): KmsError {
  // One message for "does not exist" and "not yours", so a caller learns nothing about other projects.
  return new KmsError('NotFound', 'The key does not exist.');
}

export function invalidCiphertext(): KmsError {
  // One message for every reason a ciphertext does not open (structure, key, version, context, tag).
  return new KmsError('InvalidCiphertext', 'The ciphertext is invalid or does not match the key and context.');
}

export function isKmsError(e: unknown): e is KmsError {
  return e instanceof KmsError;
}
