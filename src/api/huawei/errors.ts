/**
 * Huawei's error shape: `{"error":{"error_code":"KMS.xxxx","error_msg":"…"}}` with the vendor's
 * HTTP status (docs/api/huawei.md, Errors). Bad input gets the vendor's code for the field at fault.
 */
import { Type } from '@sinclair/typebox';
import type { ErrorSubject, KmsError, KmsErrorCode, StateRule } from '../../errors/kms-error';
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
  'too-many-grants': 'KMS.2404',
  'too-many-aliases': 'KMS.0308',
};

/** The vendor's code for a field (or, from the domain, a subject) and the narrower rule it broke. */
const FIELD_RULE: Readonly<Record<string, string>> = {
  'datakey_length:multiple-of-8': 'KMS.1903',
  'random_data_length:multiple-of-8': 'KMS.1802',
  'key_spec:unsupported-value': 'KMS.1902',
  'signing_algorithm:unsupported-value': 'KMS.0332',
  'encryption-algorithm:not-for-symmetric-key': 'KMS.2105',
  'encryption-algorithm:not-for-asymmetric-key': 'KMS.2106',
  'plain_text:length-mismatch': 'KMS.2104',
  'plain_text:digest-mismatch': 'KMS.2103',
  'datakey_cipher_length:length-mismatch': 'KMS.2204',
  'operations:only-create-grant': 'KMS.2401',
  'grant_id:other-key': 'KMS.2502',
  'tags:empty': 'KMS.0401',
  'tags:too-many': 'KMS.0407',
};

/** Tag rules have one code whichever field (tag, tags, the path's key) carried the tag. */
const TAG_RULE: Readonly<Record<string, string>> = {
  'tag-key': 'KMS.0406',
  'tag-key-length': 'KMS.0411',
  'tag-value': 'KMS.0405',
  'tag-value-length': 'KMS.0410',
  'tag-list': 'KMS.0412',
};

/** What the domain names, when the vendor has a code for it. */
const SUBJECT: Partial<Record<ErrorSubject, string>> = {
  url: 'KMS.0201',
  grantee: 'KMS.2402',
  tag: 'KMS.0416',
  project: 'KMS.0321',
};

function badRequestCode(e: KmsError, operation: string | undefined): string {
  const d = e.badRequest;
  if (!d) return TABLE.BadRequest.code;
  if (d.reason === 'missing') return 'KMS.0204';
  if (d.reason === 'malformed-json') return 'KMS.0202';
  // Too long for an RSA key: encrypt-data has its own code, data keys (made or given) another.
  if (d.rule === 'rsa-max') return operation === 'encrypt-data' ? 'KMS.2108' : 'KMS.1904';
  if (d.rule === 'digest-length') return 'KMS.0329';
  const name = d.field ?? d.subject;
  if (d.rule) {
    const key = `${name ?? ''}:${d.rule}`;
    const code = TAG_RULE[d.rule] ?? (Object.hasOwn(FIELD_RULE, key) ? FIELD_RULE[key] : undefined);
    if (code) return code;
  }
  // The field's name may be the client's (an unknown field): only the tables' own entries count.
  return (d.field && Object.hasOwn(INVALID_FIELD, d.field) && INVALID_FIELD[d.field]) || (d.subject && SUBJECT[d.subject]) || TABLE.BadRequest.code;
}

function codeOf(e: KmsError, operation: string | undefined): string {
  if (e.code === 'BadRequest') return badRequestCode(e, operation);
  if (e.stateRule) return STATE_RULE[e.stateRule];
  return (e.subject && SUBJECT[e.subject]) || TABLE[e.code].code;
}

export const renderHuaweiError: ErrorRenderer = (e: KmsError, operation?: string) => {
  const code = codeOf(e, operation);
  return { status: TABLE[e.code].status, body: { error: { error_code: code, error_msg: e.message } }, code };
};

/** The error body's schema and the statuses it comes with, for the OpenAPI document. */
export const HUAWEI_ERRORS = {
  statuses: [...new Set(Object.values(TABLE).map((t) => t.status))].sort(),
  body: Type.Object(
    {
      error: Type.Object(
        { error_code: Type.String({ pattern: '^(?:KMS|APIGW)\\.[0-9]{4}$', description: "The vendor's code (docs/api/huawei.md, Errors)" }), error_msg: Type.String() },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  ),
};
