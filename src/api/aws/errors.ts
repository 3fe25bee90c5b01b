/**
 * AWS KMS's error shape: `{"__type": "<Name>Exception", "message": "…"}` (the SDKs read `__type`),
 * with the status codes AWS uses: 404 not found; 409 already exists, disabled, invalid state; 500
 * internal; 503 dependency timeout; 400 the rest. A Record over every KmsErrorCode, refined by the
 * error's subject and state rule.
 */
import { Type } from '@sinclair/typebox';
import type { KmsError, KmsErrorCode, StateRule } from '../../errors/kms-error';
import type { ErrorRenderer } from '../http';

const TABLE: Readonly<Record<KmsErrorCode, { status: number; type: string }>> = {
  BadRequest: { status: 400, type: 'ValidationException' },
  PayloadTooLarge: { status: 400, type: 'ValidationException' },
  Unauthenticated: { status: 400, type: 'UnrecognizedClientException' },
  Forbidden: { status: 400, type: 'AccessDeniedException' },
  NotFound: { status: 404, type: 'NotFoundException' },
  RouteNotFound: { status: 400, type: 'UnknownOperationException' },
  MethodNotAllowed: { status: 400, type: 'UnknownOperationException' },
  KeyDisabled: { status: 409, type: 'DisabledException' },
  KeyPendingDeletion: { status: 409, type: 'KMSInvalidStateException' },
  InvalidState: { status: 409, type: 'KMSInvalidStateException' },
  UnsupportedOperation: { status: 400, type: 'UnsupportedOperationException' },
  AlreadyExists: { status: 409, type: 'AlreadyExistsException' },
  InvalidCiphertext: { status: 400, type: 'InvalidCiphertextException' },
  Throttled: { status: 400, type: 'ThrottlingException' },
  HsmUnavailable: { status: 503, type: 'DependencyTimeoutException' },
  StoreUnavailable: { status: 503, type: 'DependencyTimeoutException' },
  Internal: { status: 500, type: 'KMSInternalException' },
};

/** State rules that AWS reports with another exception than the code's. */
const STATE_RULE: Partial<Record<StateRule, { status: number; type: string }>> = {
  'sign-only-key': { status: 400, type: 'InvalidKeyUsageException' },
  'encrypt-only-key': { status: 400, type: 'InvalidKeyUsageException' },
  'too-many-tags': { status: 400, type: 'TagException' },
  'too-many-grants': { status: 400, type: 'LimitExceededException' },
  'too-many-aliases': { status: 400, type: 'LimitExceededException' },
};

/** Operations for which a symmetric key is a wrong key usage rather than an unsupported operation. */
const SIGNING_OPERATIONS = new Set(['Sign', 'Verify']);

function shape(e: KmsError, operation: string | undefined): { status: number; type: string } {
  if (e.code === 'Unauthenticated') {
    if (e.subject === 'signature' || e.subject === 'request-time') return { status: 400, type: 'InvalidSignatureException' };
    return TABLE.Unauthenticated;
  }
  if (e.code === 'InvalidCiphertext' && e.subject === 'other-key') return { status: 400, type: 'IncorrectKeyException' };
  if (e.code === 'BadRequest') {
    const d = e.badRequest;
    if (d?.reason === 'malformed-json') return { status: 400, type: 'SerializationException' };
    if (e.subject === 'marker') return { status: 400, type: 'InvalidMarkerException' };
    if (e.subject === 'alias') return { status: 400, type: 'InvalidAliasNameException' };
    if (e.subject === 'feature') return { status: 400, type: 'UnsupportedOperationException' };
    if (e.subject === 'invalid-signature') return { status: 400, type: 'KMSInvalidSignatureException' };
    if (e.subject === 'tag') return { status: 400, type: 'TagException' };
    if (e.subject === 'encryption-algorithm' || d?.rule === 'rsa-max') return { status: 400, type: 'ValidationException' };
    if (e.subject === 'key-version') return { status: 404, type: 'NotFoundException' };
    return TABLE.BadRequest;
  }
  if (e.stateRule === 'symmetric-key' && operation !== undefined && SIGNING_OPERATIONS.has(operation)) {
    return { status: 400, type: 'InvalidKeyUsageException' };
  }
  return (e.stateRule && STATE_RULE[e.stateRule]) || TABLE[e.code];
}

export const renderAwsError: ErrorRenderer = (e: KmsError, operation?: string) => {
  const { status, type } = shape(e, operation);
  return { status, body: { __type: type, message: e.message }, code: type };
};

/** The error body's schema and the statuses it comes with, for the OpenAPI document. */
export const AWS_ERRORS = {
  statuses: [...new Set([...Object.values(TABLE), ...Object.values(STATE_RULE)].map((t) => t.status))].sort(),
  body: Type.Object(
    { __type: Type.String({ pattern: 'Exception$', description: 'The exception name the SDKs read' }), message: Type.String() },
    { additionalProperties: false },
  ),
};
