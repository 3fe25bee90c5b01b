/**
 * AWS KMS request schemas (the JSON 1.1 protocol: binary fields base64, numbers as numbers), one per
 * operation, with the fields of AWS's API reference. Fields this service doesn't serve (policies,
 * custom key stores, Recipient, …) are declared, so an SDK that sends them gets a clear
 * UnsupportedOperationException from the handler rather than a schema error; undeclared fields are
 * refused.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { BASE64 } from '../base64';

const str = (max: number, description: string, min = 1) => Type.String({ minLength: min, maxLength: max, description });
const opt = <T extends TSchema>(t: T) => Type.Optional(t);
const obj = <P extends Record<string, TSchema>>(props: P) => Type.Object(props, { additionalProperties: false });

const KeyId = str(2048, 'Key id, key ARN, alias name (alias/…) or alias ARN');
const Blob = (max: number, description: string) => Type.String({ minLength: 1, maxLength: Math.ceil(max / 3) * 4, pattern: BASE64, description });
const EncryptionContext = Type.Object({}, {
  additionalProperties: Type.String({ maxLength: 8192 }),
  maxProperties: 64,
  description: 'Key-value pairs bound to the ciphertext (exact, case-sensitive)',
});
const GrantTokens = Type.Array(str(8192, 'Grant token'), { maxItems: 10, description: 'Accepted and ignored: grants take effect at once here' });
const Limit = Type.Integer({ minimum: 1, maximum: 1000, description: 'Items per page' });
const Marker = str(1024, 'NextMarker of the previous page');
const DryRun = Type.Boolean({ description: 'Not supported: true is refused' });
const EncryptionAlgorithm = str(32, 'SYMMETRIC_DEFAULT (AES keys), RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 (RSA keys)');
const Recipient = Type.Object({}, { additionalProperties: true, description: 'Nitro Enclaves attestation: not supported' });
const Tag = obj({ TagKey: str(128, 'Tag key'), TagValue: str(256, 'Tag value', 0) });
const Tags = Type.Array(Tag, { maxItems: 50, description: 'Tags' });
const AliasName = str(256, 'alias/<name>');
const NumberOfBytes = Type.Integer({ minimum: 1, maximum: 1024, description: 'Bytes, 1 to 1024' });

export const CreateKeyBody = obj({
  Policy: opt(str(131072, 'Not supported: key policies are not evaluated')),
  Description: opt(str(8192, 'Free text', 0)),
  KeyUsage: opt(str(32, 'ENCRYPT_DECRYPT (default) or SIGN_VERIFY (RSA_2048)')),
  CustomerMasterKeySpec: opt(str(32, 'Deprecated name of KeySpec')),
  KeySpec: opt(str(32, 'SYMMETRIC_DEFAULT (default) or RSA_2048')),
  Origin: opt(str(32, 'AWS_KMS only')),
  CustomKeyStoreId: opt(str(64, 'Not supported')),
  BypassPolicyLockoutSafetyCheck: opt(Type.Boolean({ description: 'Ignored: no key policies' })),
  Tags: opt(Tags),
  MultiRegion: opt(Type.Boolean({ description: 'Only false' })),
  XksKeyId: opt(str(128, 'Not supported')),
});

export const KeyIdBody = obj({ KeyId, GrantTokens: opt(GrantTokens) });
export const ListKeysBody = obj({ Limit: opt(Limit), Marker: opt(Marker) });
export const UpdateKeyDescriptionBody = obj({ KeyId, Description: str(8192, 'Free text', 0) });
export const ScheduleKeyDeletionBody = obj({ KeyId, PendingWindowInDays: opt(Type.Integer({ minimum: 7, maximum: 30, description: 'Days, 7 to 30 (default 30)' })) });
export const AliasBody = obj({ AliasName, TargetKeyId: KeyId });
export const DeleteAliasBody = obj({ AliasName });
export const ListAliasesBody = obj({ KeyId: opt(KeyId), Limit: opt(Limit), Marker: opt(Marker) });
export const TagResourceBody = obj({ KeyId, Tags });
export const UntagResourceBody = obj({ KeyId, TagKeys: Type.Array(str(128, 'Tag key'), { maxItems: 50 }) });
export const ListPagedByKeyBody = obj({ KeyId, Limit: opt(Limit), Marker: opt(Marker), IncludeKeyMaterial: opt(str(32, 'Ignored')) });

export const EncryptBody = obj({
  KeyId,
  Plaintext: Blob(4096, 'Data, 1 to 4096 bytes'),
  EncryptionContext: opt(EncryptionContext),
  GrantTokens: opt(GrantTokens),
  EncryptionAlgorithm: opt(EncryptionAlgorithm),
  DryRun: opt(DryRun),
});

export const DecryptBody = obj({
  CiphertextBlob: Blob(6144, 'A CiphertextBlob of Encrypt, GenerateDataKey or ReEncrypt (any dialect)'),
  EncryptionContext: opt(EncryptionContext),
  GrantTokens: opt(GrantTokens),
  KeyId: opt(KeyId),
  EncryptionAlgorithm: opt(EncryptionAlgorithm),
  Recipient: opt(Recipient),
  DryRun: opt(DryRun),
  DryRunModifiers: opt(Type.Array(str(64, 'Not supported'), { maxItems: 8 })),
});

export const ReEncryptBody = obj({
  CiphertextBlob: Blob(6144, 'The ciphertext to move'),
  SourceEncryptionContext: opt(EncryptionContext),
  SourceKeyId: opt(KeyId),
  DestinationKeyId: KeyId,
  DestinationEncryptionContext: opt(EncryptionContext),
  SourceEncryptionAlgorithm: opt(EncryptionAlgorithm),
  DestinationEncryptionAlgorithm: opt(EncryptionAlgorithm),
  GrantTokens: opt(GrantTokens),
  DryRun: opt(DryRun),
  DryRunModifiers: opt(Type.Array(str(64, 'Not supported'), { maxItems: 8 })),
});

export const GenerateDataKeyBody = obj({
  KeyId,
  EncryptionContext: opt(EncryptionContext),
  NumberOfBytes: opt(NumberOfBytes),
  KeySpec: opt(str(16, 'AES_256 or AES_128')),
  GrantTokens: opt(GrantTokens),
  Recipient: opt(Recipient),
  DryRun: opt(DryRun),
});

export const GenerateDataKeyWithoutPlaintextBody = obj({
  KeyId,
  EncryptionContext: opt(EncryptionContext),
  KeySpec: opt(str(16, 'AES_256 or AES_128')),
  NumberOfBytes: opt(NumberOfBytes),
  GrantTokens: opt(GrantTokens),
  DryRun: opt(DryRun),
});

export const GenerateRandomBody = obj({ NumberOfBytes: opt(NumberOfBytes), CustomKeyStoreId: opt(str(64, 'Not supported')), Recipient: opt(Recipient) });

export const SignBody = obj({
  KeyId,
  Message: Blob(4096, 'Message (RAW) or digest (DIGEST), up to 4096 bytes'),
  MessageType: opt(Type.Union([Type.Literal('RAW'), Type.Literal('DIGEST')], { description: 'RAW (default) or DIGEST' })),
  GrantTokens: opt(GrantTokens),
  SigningAlgorithm: str(32, 'RSASSA_PKCS1_V1_5_SHA_256/384/512 or RSASSA_PSS_SHA_256/384/512'),
  DryRun: opt(DryRun),
});

export const VerifyBody = obj({
  KeyId,
  Message: Blob(4096, 'Message (RAW) or digest (DIGEST), up to 4096 bytes'),
  MessageType: opt(Type.Union([Type.Literal('RAW'), Type.Literal('DIGEST')], { description: 'RAW (default) or DIGEST' })),
  Signature: Blob(6144, 'The signature'),
  SigningAlgorithm: str(32, 'The algorithm that signed'),
  GrantTokens: opt(GrantTokens),
  DryRun: opt(DryRun),
});

export const EnableKeyRotationBody = obj({ KeyId, RotationPeriodInDays: opt(Type.Integer({ minimum: 90, maximum: 2560, description: 'Days, 90 to 2560 (default 365)' })) });

export const CreateGrantBody = obj({
  KeyId,
  GranteePrincipal: str(256, 'The grantee: its account id, or arn:aws:iam::<account>:root'),
  RetiringPrincipal: opt(str(256, 'Who may retire the grant: account id or arn:aws:iam::<account>:root')),
  Operations: Type.Array(str(64, 'An operation name (Encrypt, Decrypt, GenerateDataKey, …)'), { minItems: 1, maxItems: 20 }),
  Constraints: opt(Type.Object({}, { additionalProperties: true, description: 'Not supported' })),
  GrantTokens: opt(GrantTokens),
  Name: opt(str(256, 'A name for the grant')),
  DryRun: opt(DryRun),
});

export const ListGrantsBody = obj({
  Limit: opt(Limit),
  Marker: opt(Marker),
  KeyId,
  GrantId: opt(str(128, 'Only this grant')),
  GranteePrincipal: opt(str(256, 'Only grants to this principal')),
  GranteeServicePrincipal: opt(str(256, 'Not supported')),
});

export const RetireGrantBody = obj({ GrantToken: opt(str(8192, 'The grant token (this service: the grant id)')), KeyId: opt(KeyId), GrantId: opt(str(128, 'The grant id')), DryRun: opt(DryRun) });
export const RevokeGrantBody = obj({ KeyId, GrantId: str(128, 'The grant id'), DryRun: opt(DryRun) });
