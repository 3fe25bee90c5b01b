/** Strict text encodings for request fields: canonical base64 and hex, nothing lenient. */
export const BASE64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';
export const HEX = '^(?:[0-9a-fA-F]{2})+$';

/** Decodes text already checked against BASE64; re-encoding guards against non-canonical padding bits. */
export function fromBase64(text: string): Buffer | undefined {
  const b = Buffer.from(text, 'base64');
  return b.toString('base64') === text ? b : undefined;
}
