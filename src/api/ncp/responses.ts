/**
 * NCP KMS answers: the `data` of each route's `{"code":"SUCCESS","data":…}` and the error body, as
 * the handlers in key-routes.ts and crypto-routes.ts build them (common.ts for the shared parts).
 * The OpenAPI document (../openapi.ts) publishes them; the suite checks every answer against them.
 */
import { Type, type TSchema } from '@sinclair/typebox';

const Millis = Type.Integer({ minimum: 0, description: 'Milliseconds since the epoch' });
const Ciphertext = Type.String({ pattern: '^ncpkms:v[1-9][0-9]*:', description: 'ncpkms:v{N}:<base64>' });
const KeyStatus = Type.Union([Type.Literal('ENABLE'), Type.Literal('DISABLE'), Type.Literal('REVOKE')]);
const VersionStatus = Type.Union([Type.Literal('ENABLE'), Type.Literal('DISABLE')]);

/** `{"code":"SUCCESS","data":…}` around a route's data. */
function success(data: TSchema) {
  return Type.Object({ code: Type.Literal('SUCCESS'), data }, { additionalProperties: false });
}

const keyListItem = {
  keyId: Type.Integer({ description: 'The key\'s number in the store' }),
  keyTag: Type.String(),
  keyName: Type.String(),
  keyType: Type.Union([Type.Literal('AES256'), Type.Literal('RSA2048')]),
  status: KeyStatus,
  protectionType: Type.Literal('COMMON_HSM'),
  isConvergent: Type.Boolean(),
  registerDate: Millis,
  destroyDate: Type.Union([Millis, Type.Null()]),
};

const KeyInfo = Type.Object(
  {
    ...keyListItem,
    currentVersion: Type.Integer({ minimum: 1 }),
    isAutoRotation: Type.Boolean(),
    rotationPeriod: Type.Integer(),
    nextRotationDate: Type.Union([Millis, Type.Null()]),
    memo: Type.String(),
  },
  { additionalProperties: false },
);

const rotation = {
  keyTag: Type.String(),
  rotationPeriod: Type.Integer(),
  nextRotationDate: Type.Union([Millis, Type.Null()]),
};

const KeyState = Type.Object({ keyTag: Type.String(), status: KeyStatus, statusDate: Millis }, { additionalProperties: false });

const oneOrMany = (item: TSchema, what: string) =>
  Type.Union([item, Type.Array(item)], { description: `One ${what}, or an array in the order of the request's` });

export const CreateKeyResponse = success(KeyInfo);
export const KeyInfoResponse = success(KeyInfo);
export const ListKeysResponse = success(
  Type.Object(
    {
      keyList: Type.Array(Type.Object(keyListItem, { additionalProperties: false })),
      currentPageNo: Type.Integer(),
      totalPageNo: Type.Integer(),
      totalCount: Type.Integer(),
    },
    { additionalProperties: false },
  ),
);
export const DeleteKeyResponse = success(Type.Null());
export const KeyStateResponse = success(KeyState);
export const RequestDeletionResponse = success(
  Type.Object({ keyTag: Type.String(), status: KeyStatus, statusDate: Millis, destroyDate: Type.Union([Millis, Type.Null()]) }, { additionalProperties: false }),
);
export const RotateKeyResponse = success(
  Type.Object({ keyTag: Type.String(), version: Type.Integer({ minimum: 1 }), rotatedDate: Type.Union([Millis, Type.Null()]) }, { additionalProperties: false }),
);
export const KeyVersionsResponse = success(
  Type.Object(
    {
      keyTag: Type.String(),
      currentVersion: Type.Integer({ minimum: 1 }),
      versionList: Type.Array(Type.Object({ version: Type.Integer({ minimum: 1 }), status: VersionStatus, registerDate: Millis }, { additionalProperties: false })),
    },
    { additionalProperties: false },
  ),
);
export const KeyVersionStateResponse = success(
  Type.Object({ version: Type.Integer({ minimum: 1 }), status: VersionStatus, statusDate: Millis }, { additionalProperties: false }),
);
export const RotationPeriodResponse = success(Type.Object(rotation, { additionalProperties: false }));
export const AutoRotationResponse = success(Type.Object({ ...rotation, isAutoRotation: Type.Boolean() }, { additionalProperties: false }));

export const CreateCustomKeyResponse = success(
  Type.Object(
    {
      plaintext: Type.Optional(Type.String({ description: 'Base64 data key; only with requestPlainKey: true' })),
      ciphertext: Ciphertext,
      key_version: Type.Integer({ minimum: 1 }),
    },
    { additionalProperties: false },
  ),
);
export const EncryptResponse = success(Type.Object({ ciphertext: oneOrMany(Ciphertext, 'ciphertext') }, { additionalProperties: false }));
export const DecryptResponse = success(Type.Object({ plaintext: oneOrMany(Type.String({ description: 'Base64' }), 'plaintext') }, { additionalProperties: false }));
export const ReEncryptResponse = EncryptResponse;
export const SignResponse = success(Type.Object({ signature: Ciphertext }, { additionalProperties: false }));
export const VerifyResponse = success(Type.Object({ valid: Type.Boolean() }, { additionalProperties: false }));
export const PublicKeyResponse = success(Type.Object({ publicKey: Type.String({ description: 'PEM (SubjectPublicKeyInfo)' }) }, { additionalProperties: false }));
