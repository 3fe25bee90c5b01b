/**
 * The domain's error taxonomy. Every failure a client can see is one of
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

/** Why a request was refused as bad input. */
export type BadRequestReason = 'missing' | 'invalid' | 'malformed-json' | 'unknown-field' | 'too-long';

/**
 * What a domain error is about, in the domain's words (never a dialect's field name); each
 * dialect's errors.ts turns it into its own code.
 */
export type ErrorSubject =
  | 'plaintext'
  | 'data-key-length'
  | 'context'
  | 'message'
  | 'key-version'
  | 'encryption-algorithm'
  | 'grantee'
  | 'url'
  | 'key'
  | 'tag'
  /** InvalidCiphertext: the ciphertext is well formed but names another key than the one given. */
  | 'other-key'
  /** Forbidden: the request's path names another project than its credentials. */
  | 'project'
  /** Unauthenticated: the credential (access key) is unknown, revoked or expired. */
  | 'credential'
  /** Unauthenticated: the request's signature is missing, malformed or does not match. */
  | 'signature'
  /** Unauthenticated: the signed request time is too far from the server's clock. */
  | 'request-time'
  /** BadRequest: a paging marker that this service did not hand out. */
  | 'marker'
  /** BadRequest: an alias name that is malformed or reserved. */
  | 'alias'
  /** BadRequest: a feature outside this service (policies, multi-region, custom key stores…). */
  | 'feature'
  /** NotFound: a grant. */
  | 'grant'
  /** BadRequest: a signature that the key did not make (dialects that answer Verify with an error). */
  | 'invalid-signature';

/** A narrower rule that bad input broke; dialects with finer codes map it (with the field or subject). */
export type BadRequestRule =
  | 'rsa-max'
  | 'digest-length'
  | 'multiple-of-8'
  | 'unsupported-value'
  | 'not-for-symmetric-key'
  | 'not-for-asymmetric-key'
  | 'length-mismatch'
  | 'digest-mismatch'
  | 'only-create-grant'
  | 'other-key'
  | 'tag-key'
  | 'tag-key-length'
  | 'tag-value'
  | 'tag-value-length'
  | 'tag-list'
  | 'empty'
  | 'too-many';

export interface BadRequestDetail {
  /** The request field at fault, in the dialect's own spelling: set by a dialect's edge only. */
  readonly field?: string;
  /** What is at fault, in the domain's words: set by the domain (kms/). */
  readonly subject?: ErrorSubject;
  readonly reason: BadRequestReason;
  readonly rule?: BadRequestRule;
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
  | 'too-many-tags'
  | 'too-many-grants'
  /** A dialect that keeps one alias per key was asked for a second. */
  | 'too-many-aliases';

export interface KmsErrorOptions {
  readonly badRequest?: BadRequestDetail;
  readonly stateRule?: StateRule;
  /** What a NotFound, Forbidden or InvalidCiphertext is about (a missing tag, the path's project, …). */
  readonly subject?: ErrorSubject;
}

export class KmsError extends Error {
  override readonly name = 'KmsError';
  readonly badRequest: BadRequestDetail | undefined;
  readonly stateRule: StateRule | undefined;
  readonly subject: ErrorSubject | undefined;

  constructor(
    readonly code: KmsErrorCode,
    message: string,
    options: KmsErrorOptions = {},
  ) {
    super(message);
    this.badRequest = options.badRequest;
    this.stateRule = options.stateRule;
    this.subject = options.subject ?? options.badRequest?.subject;
  }
}

export function badRequest(message: string, detail: BadRequestDetail): KmsError {
  return new KmsError('BadRequest', message, { badRequest: detail });
}

export function invalidState(rule: StateRule, message: string): KmsError {
  return new KmsError('InvalidState', message, { stateRule: rule });
}

export function unsupported(rule: StateRule, message: string): KmsError {
  return new KmsError('UnsupportedOperation', message, { stateRule: rule });
}

export function notFound(): KmsError {
  // One message for "does not exist" and "not yours", so a caller learns nothing about other projects.
  return new KmsError('NotFound', 'The key does not exist.', { subject: 'key' });
}

/**
 * One message for every reason a ciphertext does not open (structure, key, version, context, tag);
 * `other-key` (a well-formed envelope of another key) is told apart for dialects that name it.
 */
export function invalidCiphertext(subject?: 'other-key'): KmsError {
  return new KmsError('InvalidCiphertext', 'The ciphertext is invalid or does not match the key and context.', subject ? { subject } : {});
}

export function keyDisabled(): KmsError {
  return new KmsError('KeyDisabled', 'The key is disabled.');
}

export function keyPendingDeletion(): KmsError {
  return new KmsError('KeyPendingDeletion', 'The key is pending deletion and cannot be used.');
}

export function isKmsError(e: unknown): e is KmsError {
  return e instanceof KmsError;
}
