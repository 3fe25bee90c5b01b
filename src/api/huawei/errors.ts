/**
 * Huawei's error shape: `{"error":{"error_code":"KMS.xxxx","error_msg":"…"}}` with the vendor's
 * HTTP status (shared/API.md §2.5). Bad input gets the vendor's code for the field at fault.
 */
import type { KmsError, KmsErrorCode, StateRule } from '../../errors/kms-error';
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
  InvalidState: { status: 400, code: 'KMS.0308' },
  UnsupportedOperation: { status: 400, code: 'KMS.0308' },
  AlreadyExists: { status: 400, code: 'KMS.1104' },
  InvalidCiphertext: { status: 400, code: 'KMS.2201' },
  // What Huawei's API gateway answers when a throttling threshold is reached.
  Throttled: { status: 429, code: 'APIGW.0308' },
  HsmUnavailable: { status: 503, code: 'KMS.0104' },
  StoreUnavailable: { status: 503, code: 'KMS.0104' },
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
  plain_text: 'KMS.2101',
  datakey_plain_length: 'KMS.2102',
  pending_days: 'KMS.1401',
  limit: 'KMS.1601',
  marker: 'KMS.1602',
  random_data_length: 'KMS.1801',
  rotation_interval: 'KMS.3001',
  action: 'KMS.0404',
  tag: 'KMS.0414',
  tags: 'KMS.0414',
  grant_id: 'KMS.2501',
  grantee_principal: 'KMS.2402',
  retiring_principal: 'KMS.2402',
};

/** The vendor's code for each broken state rule (InvalidState and UnsupportedOperation). */
const STATE_RULE: Readonly<Record<StateRule, string>> = {
  'not-disabled': 'KMS.1201',
  'not-enabled': 'KMS.1301',
  'not-pending-deletion': 'KMS.1501',
  'already-pending-deletion': 'KMS.1402',
  'rotation-not-enabled': 'KMS.0313',
  'rotation-not-disabled': 'KMS.2901',
  'latest-version': 'KMS.0308',
  'version-disabled': 'KMS.0209',
  'asymmetric-rotation': 'KMS.0324',
  'symmetric-key': 'KMS.1115',
  'asymmetric-key': 'KMS.0325',
  'sign-only-key': 'KMS.0335',
  'encrypt-only-key': 'KMS.0334',
  'too-many-tags': 'KMS.0409',
};

function badRequestCode(e: KmsError): string {
  const d = e.badRequest;
  if (!d) return TABLE.BadRequest.code;
  if (d.reason === 'missing') return 'KMS.0204';
  if (d.reason === 'malformed-json') return 'KMS.0202';
  if (d.rule === 'rsa-max') return d.field === 'plain_text' ? 'KMS.2108' : 'KMS.1904';
  if (d.rule === 'digest-length') return 'KMS.0329';
  // The field's name may be the client's (an unknown field): only the table's own entries count.
  return (d.field && Object.hasOwn(INVALID_FIELD, d.field) && INVALID_FIELD[d.field]) || TABLE.BadRequest.code;
}

function codeOf(e: KmsError): string {
  if (e.vendorCode) return e.vendorCode;
  if (e.code === 'BadRequest') return badRequestCode(e);
  if (e.stateRule) return STATE_RULE[e.stateRule];
  return TABLE[e.code].code;
}

export const renderHuaweiError: ErrorRenderer = (e: KmsError) => {
  const code = codeOf(e);
  return { status: TABLE[e.code].status, body: { error: { error_code: code, error_msg: e.message } }, code };
};
