/**
 * NCP KMS (API 2.0) request schemas: the contract of each route, and the source of its types.
 * Field names and limits follow the vendor's API 2.0 pages (docs/api/ncp.md says where p11kms differs).
 */
import { Type } from '@sinclair/typebox';
import { BASE64 } from '../base64';

/** `context`: base64 of at most 50 bytes (68 characters; the byte count is checked after decoding). */
const Context = Type.String({
  minLength: 1,
  maxLength: 68,
  pattern: BASE64,
  description: 'Base64 context, at most 50 bytes; required for convergent keys, bound to the ciphertext otherwise too',
});

/** `ncpkms:v{N}:<base64>`; a 32 KB plaintext gives about 44 000 characters. */
const Ciphertext = Type.String({
  minLength: 1,
  maxLength: 60000,
  pattern: '^ncpkms:v[1-9][0-9]{0,8}:[A-Za-z0-9+/=]+$',
  description: 'A ciphertext exactly as returned by p11kms, with its ncpkms:v{N}: prefix',
});

export const KeyTagParam = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' });

export const CreateCustomKeyBody = Type.Object(
  {
    requestPlainKey: Type.Optional(Type.Boolean({ description: 'Return the plaintext key too (default false)' })),
    bits: Type.Optional(
      Type.Union([Type.Literal(128), Type.Literal(256), Type.Literal(512)], { description: 'Key length in bits (default 256)' }),
    ),
    context: Type.Optional(Context),
  },
  { additionalProperties: false },
);

export const DecryptBody = Type.Object(
  {
    ciphertext: Type.Union([Ciphertext, Type.Array(Ciphertext, { minItems: 1, maxItems: 1000 })], {
      description: 'One ciphertext, or an array of them (answered in the same order)',
    }),
    context: Type.Optional(Context),
  },
  { additionalProperties: false },
);

/** A request with no fields: an absent body or `{}`. */
export const EmptyBody = Type.Object({}, { additionalProperties: false });

/** Path `version` of the version routes: 1–100 as on the vendor's pages. */
export const VersionParam = Type.String({ minLength: 1, maxLength: 3, pattern: '^(?:[1-9][0-9]?|100)$' });

const RotationPeriod = Type.Integer({ minimum: 1, maximum: 730, description: 'Automatic rotation period in days, 1–730' });

export const CreateKeyBody = Type.Object(
  {
    keyName: Type.String({
      minLength: 3,
      maxLength: 15,
      pattern: '^[A-Za-z][A-Za-z0-9_-]{2,14}$',
      description: 'Key name: 3–15 letters, digits, "-" or "_", starting with a letter; unique among the project\'s live keys',
    }),
    keyType: Type.Union([Type.Literal('AES256'), Type.Literal('RSA2048'), Type.Literal('ECDSA')], {
      description: 'AES256 or RSA2048 (ECDSA is refused: not supported)',
    }),
    protectionType: Type.Optional(
      Type.Union([Type.Literal('BASIC'), Type.Literal('COMMON_HSM')], { description: 'Accepted; every key lives in the HSM (reported COMMON_HSM)' }),
    ),
    isAutoRotation: Type.Optional(Type.Boolean({ description: 'Rotate automatically every rotationPeriod days (default false)' })),
    rotationPeriod: Type.Optional(RotationPeriod),
    isConvergent: Type.Optional(Type.Boolean({ description: 'Deterministic encryption under a required context (AES256 only, default false)' })),
    memo: Type.Optional(Type.String({ maxLength: 100, description: 'Free text, at most 100 characters' })),
  },
  { additionalProperties: false },
);

/** Query of GET /keys; values arrive as strings and are checked as decimal integers. */
export const ListKeysQuery = Type.Object(
  {
    pageNo: Type.Optional(Type.String({ minLength: 1, maxLength: 9, pattern: '^[1-9][0-9]*$', description: 'Page number, from 1 (default 1)' })),
    pageSize: Type.Optional(Type.String({ minLength: 1, maxLength: 3, pattern: '^[1-9][0-9]*$', description: 'Keys per page, 1–200 (default 100)' })),
  },
  { additionalProperties: false },
);

export const RotationPeriodBody = Type.Object({ rotationPeriod: RotationPeriod }, { additionalProperties: false });

export const GetPubKeyBody = Type.Object(
  { keyVersion: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Key version, 1–100 (default the current one)' })) },
  { additionalProperties: false },
);

/** One plaintext: base64 of 1 byte to 32 KB (43 692 characters; the byte count is checked after decoding). */
const Plaintext = Type.String({ minLength: 1, maxLength: 43692, pattern: BASE64, description: 'Base64 plaintext, at most 32 KB (RSA2048: 190 bytes)' });

export const EncryptBody = Type.Object(
  {
    plaintext: Type.Union([Plaintext, Type.Array(Plaintext, { minItems: 1, maxItems: 1000 })], {
      description: 'One plaintext, or an array of them (answered in the same order)',
    }),
    context: Type.Optional(Context),
  },
  { additionalProperties: false },
);

/** Re-encrypt takes the same fields as decrypt. */
export const ReEncryptBody = DecryptBody;

/** Data to sign: base64 of at most 8 KB (10 924 characters). */
const SignData = Type.String({ minLength: 1, maxLength: 10924, pattern: BASE64, description: 'Base64 data, at most 8 KB, signed as is (RSASSA-PKCS1-v1_5 with SHA-256)' });

export const SignBody = Type.Object({ data: SignData }, { additionalProperties: false });

export const VerifyBody = Type.Object(
  {
    data: SignData,
    signature: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^ncpkms:v[1-9][0-9]{0,8}:[A-Za-z0-9+/=]+$',
      description: 'A signature exactly as returned by sign, with its ncpkms:v{N}: prefix',
    }),
  },
  { additionalProperties: false },
);
