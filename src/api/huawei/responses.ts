/**
 * Huawei KMS answers, as the actions in keys-routes.ts, crypto-routes.ts, grants-routes.ts and
 * tags-routes.ts build them (common.ts keyInfo for key_info). Numbers and timestamps (ms) travel as
 * strings, as in the vendor's examples. The OpenAPI document (../openapi.ts) publishes them; the
 * suite checks every answer against them.
 */
import { Type, type TProperties } from '@sinclair/typebox';

const obj = (props: TProperties) => Type.Object(props, { additionalProperties: false });
const KeyId = Type.String({ description: 'A key id (UUID)' });
const Digits = Type.String({ pattern: '^[0-9]+$' });
const MillisText = Type.String({ pattern: '^[0-9]*$', description: 'Milliseconds since the epoch, as a string ("" when none)' });
const Hex = Type.String({ pattern: '^[0-9A-F]*$', description: 'Upper-case hex' });
const Base64 = Type.String({ description: 'Base64' });
const KeyStateCode = Type.Union(['2', '3', '4'].map((c) => Type.Literal(c)), { description: '2 enabled, 3 disabled, 4 pending deletion' });
const BoolText = Type.Union([Type.Literal('true'), Type.Literal('false')]);

const KeyInfo = obj({
  key_id: KeyId,
  domain_id: Type.String({ description: 'The project' }),
  key_alias: Type.String(),
  realm: Type.String(),
  key_spec: Type.String(),
  key_usage: Type.Union([Type.Literal('ENCRYPT_DECRYPT'), Type.Literal('SIGN_VERIFY')]),
  key_description: Type.String(),
  creation_date: MillisText,
  scheduled_deletion_date: MillisText,
  key_state: KeyStateCode,
  default_key_flag: Type.String(),
  key_type: Type.String(),
  expiration_time: Type.String(),
  origin: Type.String(),
  key_rotation_enabled: BoolText,
});

export const Empty = obj({});
export const CreateKeyResponse = obj({ key_info: obj({ key_id: KeyId, domain_id: Type.String() }) });
export const DescribeKeyResponse = obj({ key_info: KeyInfo });
export const ListKeysResponse = obj({
  keys: Type.Array(KeyId),
  key_details: Type.Array(KeyInfo),
  next_marker: Type.String(),
  truncated: BoolText,
  total: Type.Integer({ minimum: 0 }),
});
export const KeyStateResponse = obj({ key_info: obj({ key_id: KeyId, key_state: KeyStateCode }) });
export const DeletionResponse = obj({ key_id: KeyId, key_state: KeyStateCode });
export const AliasResponse = obj({ key_info: obj({ key_id: KeyId, key_alias: Type.String() }) });
export const DescriptionResponse = obj({ key_info: obj({ key_id: KeyId, key_description: Type.String() }) });
export const RotationStatusResponse = obj({
  key_rotation_enabled: Type.Boolean(),
  rotation_interval: Type.Integer(),
  last_rotation_time: MillisText,
  number_of_rotations: Type.Integer({ minimum: 0 }),
});

export const CreateDatakeyResponse = obj({ key_id: KeyId, plain_text: Hex, cipher_text: Hex });
export const CreateDatakeyWithoutPlaintextResponse = obj({ key_id: KeyId, cipher_text: Hex });
export const EncryptDatakeyResponse = obj({ key_id: KeyId, cipher_text: Hex, datakey_length: Digits });
export const DecryptDatakeyResponse = obj({ data_key: Hex, datakey_length: Digits, datakey_dgst: Hex });
export const EncryptDataResponse = obj({ key_id: KeyId, cipher_text: Base64 });
export const DecryptDataResponse = obj({ key_id: KeyId, plain_text: Type.String(), plain_text_base64: Base64 });
export const GenRandomResponse = obj({ random_data: Hex });
export const PublicKeyResponse = obj({ key_id: KeyId, public_key: Type.String({ description: 'PEM (SubjectPublicKeyInfo)' }) });
export const SignResponse = obj({ key_id: KeyId, signature: Base64 });
export const VerifyResponse = obj({ key_id: KeyId, signature_valid: BoolText });

const Grant = obj({
  key_id: KeyId,
  grant_id: Type.String(),
  grantee_principal: Type.String(),
  grantee_principal_type: Type.Literal('domain'),
  operations: Type.Array(Type.String()),
  issuing_principal: Type.String(),
  creation_date: MillisText,
  name: Type.String(),
  retiring_principal: Type.String(),
});
export const CreateGrantResponse = obj({ grant_id: Type.String() });
export const GrantsResponse = obj({ grants: Type.Array(Grant), next_marker: Type.String(), truncated: BoolText, total: Type.Integer({ minimum: 0 }) });

const TagItem = obj({ key: Type.String(), value: Type.String() });
export const KeyTagsResponse = obj({ tags: Type.Array(TagItem), existTagsNum: Type.Integer({ minimum: 0 }) });
export const ProjectTagsResponse = obj({ tags: Type.Array(obj({ key: Type.String(), values: Type.Array(Type.String()) })) });
