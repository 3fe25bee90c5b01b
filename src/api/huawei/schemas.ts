/**
 * Huawei Cloud / Open Telekom Cloud KMS v1.0 request schemas (docs/api/huawei.md). Numbers travel as
 * JSON strings where the vendor's examples do (`"datakey_length": "512"`).
 */
import { Type } from '@sinclair/typebox';
import { BASE64, HEX } from '../base64';

export const ProjectIdParam = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

/** A key id (36-character UUID) or `alias/<key_alias>`. */
const KeyId = Type.String({
  minLength: 1,
  maxLength: 261,
  pattern: '^(?:[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}|alias/[a-zA-Z0-9:/_-]{1,255})$',
  description: 'Key id, or alias/<key_alias>',
});
const Sequence = Type.String({ minLength: 1, maxLength: 36, pattern: '^[0-9a-zA-Z-]+$', description: 'Request serial number (36 bytes), echoed nowhere' });
/**
 * A flat map of strings to strings, as the vendor defines it; anything else (numbers, nesting) is
 * refused here, before it is canonicalised. At most 8192 characters as JSON text (checked in the
 * handler; a schema can't count that).
 */
const EncryptionContext = Type.Record(Type.String(), Type.String(), { description: 'Key-value pairs (strings) bound to the ciphertext' });
const DecimalString = (description: string) => Type.String({ minLength: 1, maxLength: 5, pattern: '^[0-9]+$', description });

export const CreateKeyBody = Type.Object(
  {
    key_alias: Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9:/_-]+$', description: 'Alias, unique in the project' }),
    key_spec: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'AES_256 (default) or RSA_2048' })),
    key_usage: Type.Optional(
      Type.Union([Type.Literal('ENCRYPT_DECRYPT'), Type.Literal('SIGN_VERIFY')], { description: 'Default ENCRYPT_DECRYPT for AES; RSA keys default to both' }),
    ),
    key_description: Type.Optional(Type.String({ maxLength: 255, description: 'Free text, at most 255 characters' })),
    origin: Type.Optional(Type.Literal('kms', { description: 'Only kms: key material made in the HSM' })),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const CreateDatakeyBody = Type.Object(
  {
    key_id: KeyId,
    datakey_length: Type.Optional(DecimalString('Bits, 8 to 8192, a multiple of 8')),
    key_spec: Type.Optional(Type.String({ minLength: 1, maxLength: 16, description: 'AES_128 or AES_256, used when datakey_length is absent' })),
    encryption_context: Type.Optional(EncryptionContext),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const DecryptDatakeyBody = Type.Object(
  {
    key_id: KeyId,
    cipher_text: Type.String({ minLength: 2, maxLength: 8192, pattern: HEX, description: 'Hex ciphertext from create-datakey' }),
    datakey_cipher_length: DecimalString('Bytes of the data key, 1 to 1024'),
    encryption_context: Type.Optional(EncryptionContext),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

/** Bodies that name only a key (describe, enable/disable, cancel deletion, rotation, public key). */
export const KeyIdBody = Type.Object({ key_id: KeyId, sequence: Type.Optional(Sequence) }, { additionalProperties: false });

export const ListKeysBody = Type.Object(
  {
    limit: Type.Optional(DecimalString('Keys per page, 1 to 1000 (default 1000)')),
    marker: Type.Optional(Type.String({ minLength: 1, maxLength: 10, pattern: '^[0-9]+$', description: 'Offset from next_marker, >= 0' })),
    key_state: Type.Optional(Type.String({ minLength: 1, maxLength: 1, pattern: '^[1-5]$', description: '1 pending activation, 2 enabled, 3 disabled, 4 pending deletion, 5 pending import' })),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const ScheduleDeletionBody = Type.Object(
  { key_id: KeyId, pending_days: DecimalString('Days before deletion, 7 to 1096'), sequence: Type.Optional(Sequence) },
  { additionalProperties: false },
);

export const KeyAlias = Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9:/_-]+$', description: 'Alias, unique in the project' });
export const KeyDescription = Type.String({ maxLength: 255, description: 'Free text, at most 255 characters' });

export const UpdateAliasBody = Type.Object({ key_id: KeyId, key_alias: KeyAlias, sequence: Type.Optional(Sequence) }, { additionalProperties: false });

export const UpdateDescriptionBody = Type.Object(
  { key_id: KeyId, key_description: KeyDescription, sequence: Type.Optional(Sequence) },
  { additionalProperties: false },
);

export const RotationIntervalBody = Type.Object(
  { key_id: KeyId, rotation_interval: Type.Integer({ minimum: 30, maximum: 365, description: 'Days, 30 to 365' }), sequence: Type.Optional(Sequence) },
  { additionalProperties: false },
);

const EncryptionAlgorithm = Type.Union(
  [Type.Literal('SYMMETRIC_DEFAULT'), Type.Literal('RSAES_OAEP_SHA_256'), Type.Literal('RSAES_OAEP_SHA_1')],
  { description: 'SYMMETRIC_DEFAULT for AES keys, RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1 for RSA keys' },
);

export const EncryptDataBody = Type.Object(
  {
    key_id: KeyId,
    plain_text: Type.String({ minLength: 1, maxLength: 4096, description: 'Text to encrypt, 1 to 4096 bytes as UTF-8' }),
    encryption_context: Type.Optional(EncryptionContext),
    encryption_algorithm: Type.Optional(EncryptionAlgorithm),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const DecryptDataBody = Type.Object(
  {
    cipher_text: Type.String({ minLength: 4, maxLength: 5648, pattern: BASE64, description: 'Base64 ciphertext from encrypt-data' }),
    key_id: Type.Optional(KeyId),
    encryption_context: Type.Optional(EncryptionContext),
    encryption_algorithm: Type.Optional(EncryptionAlgorithm),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const EncryptDatakeyBody = Type.Object(
  {
    key_id: KeyId,
    plain_text: Type.String({ minLength: 2, maxLength: 2112, pattern: HEX, description: 'hex(DEK ‖ SHA-256(DEK))' }),
    datakey_plain_length: DecimalString('Bytes of the DEK, 1 to 1024'),
    encryption_context: Type.Optional(EncryptionContext),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const GenRandomBody = Type.Object(
  { random_data_length: DecimalString('Bits, 8 to 8192, a multiple of 8'), sequence: Type.Optional(Sequence) },
  { additionalProperties: false },
);

const SigningAlgorithm = Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Z0-9_]+$', description: 'RSASSA_PSS_SHA_256/384/512 or RSASSA_PKCS1_V1_5_SHA_256/384/512' });
const MessageType = Type.Union([Type.Literal('DIGEST'), Type.Literal('RAW')], { description: 'DIGEST (default) or RAW' });
/** Base64 of fewer than 4096 bytes. */
const Message = Type.String({ minLength: 4, maxLength: 5460, pattern: BASE64, description: 'Base64 message or digest, under 4096 bytes' });

export const SignBody = Type.Object(
  { key_id: KeyId, message: Message, signing_algorithm: SigningAlgorithm, message_type: Type.Optional(MessageType), sequence: Type.Optional(Sequence) },
  { additionalProperties: false },
);

export const VerifyBody = Type.Object(
  {
    key_id: KeyId,
    message: Message,
    signature: Type.String({ minLength: 4, maxLength: 1024, pattern: BASE64, description: 'Base64 signature from sign' }),
    signing_algorithm: SigningAlgorithm,
    message_type: Type.Optional(MessageType),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

const TagItem = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 36, description: 'Tag key, 1 to 36 characters, none of ASCII 0-31 and *<>\\=' }),
    value: Type.Optional(Type.String({ maxLength: 43, description: 'Tag value, 0 to 43 characters, none of ASCII 0-31 and *<>\\=' })),
  },
  { additionalProperties: false },
);

export const AddTagBody = Type.Object({ tag: TagItem, sequence: Type.Optional(Sequence) }, { additionalProperties: false });

export const TagActionBody = Type.Object(
  {
    action: Type.Union([Type.Literal('create'), Type.Literal('delete')], { description: 'create or delete' }),
    tags: Type.Array(TagItem, { minItems: 1, maxItems: 10, description: 'At most 10 tags' }),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

/** Operations a grant may name (the vendor's list, with Huawei's encrypt-data and decrypt-data). */
export const GRANT_OPERATIONS = [
  'create-datakey',
  'create-datakey-without-plaintext',
  'encrypt-datakey',
  'decrypt-datakey',
  'describe-key',
  'create-grant',
  'retire-grant',
  'encrypt-data',
  'decrypt-data',
] as const;

const Principal = (description: string) => Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description });
const GrantId = Type.String({ minLength: 64, maxLength: 64, pattern: '^[0-9a-f]{64}$', description: 'Grant id, 64 hex characters' });

export const CreateGrantBody = Type.Object(
  {
    key_id: KeyId,
    grantee_principal: Principal('The project that may use the key'),
    grantee_principal_type: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('domain')], { description: 'Accepted; the grantee is always a project here' })),
    operations: Type.Array(Type.Union(GRANT_OPERATIONS.map((o) => Type.Literal(o))), {
      minItems: 1,
      maxItems: GRANT_OPERATIONS.length,
      uniqueItems: true,
      description: 'Operations the grantee may call on the key',
    }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9:/_-]+$', description: 'Grant name' })),
    retiring_principal: Type.Optional(Principal('A project that may retire the grant')),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const GrantIdBody = Type.Object({ key_id: KeyId, grant_id: GrantId, sequence: Type.Optional(Sequence) }, { additionalProperties: false });

export const ListGrantsBody = Type.Object(
  {
    key_id: KeyId,
    limit: Type.Optional(DecimalString('Grants per page, 1 to 100 (default 100)')),
    marker: Type.Optional(Type.String({ minLength: 1, maxLength: 10, pattern: '^[0-9]+$', description: 'Offset from next_marker' })),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);

export const ListRetirableGrantsBody = Type.Object(
  {
    limit: Type.Optional(DecimalString('Grants per page, 1 to 100 (default 100)')),
    marker: Type.Optional(Type.String({ minLength: 1, maxLength: 10, pattern: '^[0-9]+$', description: 'Offset from next_marker' })),
    sequence: Type.Optional(Sequence),
  },
  { additionalProperties: false },
);
