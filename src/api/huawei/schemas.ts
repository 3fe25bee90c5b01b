/**
 * Huawei Cloud / Open Telekom Cloud KMS v1.0 request schemas (shared/API.md §2). Numbers travel as
 * JSON strings where the vendor's examples do (`"datakey_length": "512"`).
 */
import { Type } from '@sinclair/typebox';
import { HEX } from '../base64';

export const ProjectIdParam = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

/** A key id (36-character UUID) or `alias/<key_alias>`. */
const KeyId = Type.String({
  minLength: 1,
  maxLength: 261,
  pattern: '^(?:[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}|alias/[a-zA-Z0-9:/_-]{1,255})$',
  description: 'Key id, or alias/<key_alias>',
});
const Sequence = Type.String({ minLength: 1, maxLength: 36, pattern: '^[0-9a-zA-Z-]+$', description: 'Request serial number (36 bytes), echoed nowhere' });
/** Object of at most 8192 characters as JSON text (checked in the handler; a schema can't count that). */
const EncryptionContext = Type.Object({}, { additionalProperties: true, description: 'Key-value pairs bound to the ciphertext' });
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
