/**
 * The console API's error shape: HTTP status by meaning, body `{"error": "<KmsErrorCode>", "message":
 * "<text>"}`. A Record over every KmsErrorCode, so a new code can't go unmapped.
 */
import type { KmsError, KmsErrorCode } from '../../errors/kms-error';
import type { ErrorRenderer } from '../http';

const STATUS: Readonly<Record<KmsErrorCode, number>> = {
  BadRequest: 400,
  PayloadTooLarge: 413,
  Unauthenticated: 401,
  Forbidden: 403,
  NotFound: 404,
  RouteNotFound: 404,
  MethodNotAllowed: 405,
  KeyDisabled: 422,
  KeyPendingDeletion: 422,
  InvalidState: 422,
  UnsupportedOperation: 400,
  AlreadyExists: 409,
  InvalidCiphertext: 400,
  Throttled: 429,
  HsmUnavailable: 503,
  StoreUnavailable: 503,
  Internal: 500,
};

export const renderConsoleError: ErrorRenderer = (e: KmsError) => ({
  status: STATUS[e.code],
  body: { error: e.code, message: e.message },
  code: e.code,
});
