/**
 * AWS KMS answers (JSON 1.1 bodies), as the operations in keys-routes.ts, crypto-routes.ts and
 * grants-routes.ts build them (common.ts keyMetadata for KeyMetadata). Blobs are base64,
 * timestamps epoch seconds. The OpenAPI document (../openapi.ts) publishes them; the suite checks
 * every answer against them.
 */
import { Type, type TProperties, type TSchema } from '@sinclair/typebox';

const obj = (props: TProperties) => Type.Object(props, { additionalProperties: false });
const Arn = Type.String({ pattern: '^arn:aws:kms:' });
const Blob = Type.String({ description: 'Base64' });
const Epoch = Type.Number({ description: 'Seconds since the epoch' });
const KeyState = Type.Union(['Enabled', 'Disabled', 'PendingDeletion'].map((s) => Type.Literal(s)));
const KeySpec = Type.Union([Type.Literal('SYMMETRIC_DEFAULT'), Type.Literal('RSA_2048')]);
const KeyUsage = Type.Union([Type.Literal('ENCRYPT_DECRYPT'), Type.Literal('SIGN_VERIFY')]);
const Names = Type.Array(Type.String());

/** A page of `item`s under `name`, with Truncated and (when there is more) NextMarker. */
const paged = (name: string, item: TSchema) => obj({ [name]: Type.Array(item), Truncated: Type.Boolean(), NextMarker: Type.Optional(Type.String()) });

const KeyMetadata = obj({
  AWSAccountId: Type.String({ pattern: '^[0-9]{12}$' }),
  KeyId: Type.String(),
  Arn,
  CreationDate: Epoch,
  Enabled: Type.Boolean(),
  Description: Type.String(),
  KeyUsage,
  KeyState,
  DeletionDate: Type.Optional(Epoch),
  Origin: Type.Literal('AWS_KMS'),
  KeyManager: Type.Literal('CUSTOMER'),
  CustomerMasterKeySpec: KeySpec,
  KeySpec,
  EncryptionAlgorithms: Type.Optional(Names),
  SigningAlgorithms: Type.Optional(Names),
  MultiRegion: Type.Boolean(),
});

export const Empty = obj({});
export const KeyMetadataResponse = obj({ KeyMetadata });
export const ListKeysResponse = paged('Keys', obj({ KeyId: Type.String(), KeyArn: Arn }));
export const ScheduleKeyDeletionResponse = obj({ KeyId: Arn, DeletionDate: Epoch, KeyState, PendingWindowInDays: Type.Integer() });
export const KeyArnResponse = obj({ KeyId: Arn });
export const ListAliasesResponse = paged('Aliases', obj({ AliasName: Type.String(), AliasArn: Arn, TargetKeyId: Type.String() }));
export const ListResourceTagsResponse = paged('Tags', obj({ TagKey: Type.String(), TagValue: Type.String() }));
export const KeyRotationStatusResponse = obj({
  KeyRotationEnabled: Type.Boolean(),
  KeyId: Arn,
  RotationPeriodInDays: Type.Optional(Type.Integer()),
  NextRotationDate: Type.Optional(Epoch),
});
export const ListKeyRotationsResponse = paged('Rotations', obj({ KeyId: Arn, RotationDate: Epoch }));

export const EncryptResponse = obj({ CiphertextBlob: Blob, KeyId: Arn, EncryptionAlgorithm: Type.String() });
export const DecryptResponse = obj({ KeyId: Arn, Plaintext: Blob, EncryptionAlgorithm: Type.String() });
export const ReEncryptResponse = obj({
  CiphertextBlob: Blob,
  SourceKeyId: Arn,
  KeyId: Arn,
  SourceEncryptionAlgorithm: Type.String(),
  DestinationEncryptionAlgorithm: Type.String(),
});
export const GenerateDataKeyResponse = obj({ CiphertextBlob: Blob, Plaintext: Blob, KeyId: Arn });
export const GenerateDataKeyWithoutPlaintextResponse = obj({ CiphertextBlob: Blob, KeyId: Arn });
export const GenerateRandomResponse = obj({ Plaintext: Blob });
export const SignResponse = obj({ KeyId: Arn, Signature: Blob, SigningAlgorithm: Type.String() });
export const VerifyResponse = obj({ KeyId: Arn, SignatureValid: Type.Literal(true), SigningAlgorithm: Type.String() });
export const GetPublicKeyResponse = obj({
  KeyId: Arn,
  PublicKey: Blob,
  CustomerMasterKeySpec: KeySpec,
  KeySpec,
  KeyUsage,
  EncryptionAlgorithms: Type.Optional(Names),
  SigningAlgorithms: Type.Optional(Names),
});

export const CreateGrantResponse = obj({ GrantToken: Type.String(), GrantId: Type.String() });
export const ListGrantsResponse = paged(
  'Grants',
  obj({
    KeyId: Arn,
    GrantId: Type.String(),
    Name: Type.Optional(Type.String()),
    CreationDate: Epoch,
    GranteePrincipal: Type.String(),
    RetiringPrincipal: Type.Optional(Type.String()),
    IssuingAccount: Type.String(),
    Operations: Names,
  }),
);
