/**
 * NCP's error shape: HTTP status by meaning, body `{"code": "<CODE>", "msg": "<text>"}`
 * (docs/api/ncp.md, Errors). A Record over every KmsErrorCode, so a new code can't go unmapped.
 */
import { Type } from '@sinclair/typebox';
import type { KmsError, KmsErrorCode } from '../../errors/kms-error';
import type { ErrorRenderer } from '../http';

const TABLE: Readonly<Record<KmsErrorCode, { status: number; code: string }>> = {
  BadRequest: { status: 400, code: 'INVALID_REQUEST' },
  PayloadTooLarge: { status: 413, code: 'INVALID_REQUEST' },
  Unauthenticated: { status: 401, code: 'UNAUTHORIZED' },
  Forbidden: { status: 403, code: 'FORBIDDEN' },
  NotFound: { status: 404, code: 'NOT_FOUND' },
  RouteNotFound: { status: 404, code: 'NOT_FOUND' },
  MethodNotAllowed: { status: 405, code: 'INVALID_REQUEST' },
  KeyDisabled: { status: 422, code: 'UNPROCESSABLE_ENTITY' },
  KeyPendingDeletion: { status: 422, code: 'UNPROCESSABLE_ENTITY' },
  InvalidState: { status: 422, code: 'UNPROCESSABLE_ENTITY' },
  UnsupportedOperation: { status: 400, code: 'INVALID_REQUEST' },
  AlreadyExists: { status: 400, code: 'INVALID_REQUEST' },
  InvalidCiphertext: { status: 400, code: 'INVALID_REQUEST' },
  Throttled: { status: 429, code: 'TOO_MANY_REQUESTS' },
  HsmUnavailable: { status: 503, code: 'SERVICE_UNAVAILABLE' },
  StoreUnavailable: { status: 503, code: 'SERVICE_UNAVAILABLE' },
  Internal: { status: 500, code: 'INTERNAL_SERVER_ERROR' },
};

export const renderNcpError: ErrorRenderer = (e: KmsError) => {
  const { status, code } = TABLE[e.code];
  return { status, body: { code, msg: e.message }, code };
};

/** The error body's schema and the statuses it comes with, for the OpenAPI document. */
export const NCP_ERRORS = {
  statuses: [...new Set(Object.values(TABLE).map((t) => t.status))].sort(),
  body: Type.Object(
    { code: Type.Union([...new Set(Object.values(TABLE).map((t) => t.code))].map((c) => Type.Literal(c))), msg: Type.String() },
    { additionalProperties: false },
  ),
};
