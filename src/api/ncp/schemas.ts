/**
 * NCP KMS (API 2.0) request schemas: the contract of each route, and the source of its types.
 * Field names and limits follow the vendor's pages (shared/API.md §1).
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
