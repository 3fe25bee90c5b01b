/**
 * Encryption contexts as bytes. One byte form for every dialect, so a ciphertext made with a
 * context in one dialect opens in another given the same bytes:
 * - NCP `context` is already bytes (base64 on the wire);
 * - Huawei `encryption_context` is a JSON object, made bytes by RFC 8785 canonical JSON, so key
 *   order doesn't matter and `{"a":"bc"}` / `{"ab":"c"}` differ. An empty object is no context,
 *   as in AWS KMS, since clients send `{}` and omit the field interchangeably.
 */
import canonicalize from 'canonicalize';

export type Context = Buffer;
export const NO_CONTEXT: Context = Buffer.alloc(0);

export function contextFromObject(o: Readonly<Record<string, unknown>> | undefined): Context {
  if (o === undefined || Object.keys(o).length === 0) return NO_CONTEXT;
  return Buffer.from(canonicalize(o) ?? '', 'utf8');
}
