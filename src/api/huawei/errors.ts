/**
 * Huawei's error shape: `{"error":{"error_code":"KMS.xxxx","error_msg":"…"}}` with the vendor's
 * HTTP status (shared/API.md §2.5). Bad input gets the vendor's code for the field at fault.
 */
import type { KmsError, KmsErrorCode } from '../../errors/kms-error';
import type { ErrorRenderer } from '../http';

const TABLE: Readonly<Record<KmsErrorCode, { status: number; code: string }>> = {
  BadRequest: { status: 400, code: 'KMS.0308' },
  PayloadTooLarge: { status: 413, code: 'KMS.0203' },
  Unauthenticated: { status: 401, code: 'KMS.0301' },
  Forbidden: { status: 403, code: 'KMS.0306' },
  NotFound: { status: 404, code: 'KMS.0207' },
  RouteNotFound: { status: 400, code: 'KMS.0201' },
  MethodNotAllowed: { status: 405, code: 'KMS.0215' },
  KeyDisabled: { status: 400, code: 'KMS.0209' },
  KeyPendingDeletion: { status: 400, code: 'KMS.0210' },
  UnsupportedOperation: { status: 400, code: 'KMS.0308' },
  AlreadyExists: { status: 400, code: 'KMS.1104' },
  InvalidCiphertext: { status: 400, code: 'KMS.2201' },
  // What Huawei's API gateway answers when a throttling threshold is reached.
  Throttled: { status: 429, code: 'APIGW.0308' },
  HsmUnavailable: { status: 503, code: 'KMS.0104' },
  Internal: { status: 500, code: 'KMS.0103' },
};

/** The vendor's code for an invalid value of a field. */
const INVALID_FIELD: Readonly<Record<string, string>> = {
  key_id: 'KMS.0205',
  sequence: 'KMS.0206',
  encryption_context: 'KMS.0208',
  key_alias: 'KMS.1101',
  key_description: 'KMS.1103',
  datakey_length: 'KMS.1901',
  cipher_text: 'KMS.2201',
};

function badRequestCode(e: KmsError): string {
  const d = e.badRequest;
  if (!d) return TABLE.BadRequest.code;
  if (d.reason === 'missing') return 'KMS.0204';
  if (d.reason === 'malformed-json') return 'KMS.0202';
  if (d.rule === 'rsa-max') return 'KMS.1904';
  return (d.field && INVALID_FIELD[d.field]) || TABLE.BadRequest.code;
}

export const renderHuaweiError: ErrorRenderer = (e: KmsError) => {
  const { status } = TABLE[e.code];
  const code = e.vendorCode ?? (e.code === 'BadRequest' ? badRequestCode(e) : TABLE[e.code].code);
  return { status, body: { error: { error_code: code, error_msg: e.message } } };
};
