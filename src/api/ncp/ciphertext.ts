/** NCP's text form of an envelope: `ncpkms:v{version}:` + base64; the prefix must name the envelope's version. */
import { badRequest, invalidCiphertext } from '../../errors/kms-error';
import { decodeEnvelope } from '../../kms/envelope/format';
import { fromBase64 } from '../base64';

export function renderNcp(ciphertext: Buffer, keyVersion: number): string {
  return `ncpkms:v${keyVersion}:${ciphertext.toString('base64')}`;
}

const FORM = /^ncpkms:v([1-9][0-9]{0,8}):([A-Za-z0-9+/=]+)$/;

export function parseNcp(text: string): Buffer {
  const m = FORM.exec(text);
  const bytes = m ? fromBase64(m[2]!) : undefined;
  if (!m || !bytes) throw invalidCiphertext();
  if (decodeEnvelope(bytes).keyVersion !== Number(m[1])) throw invalidCiphertext();
  return bytes;
}

/** A signature's text form `ncpkms:v{version}:<base64>`: the version that signed and the raw signature. */
export function parseNcpSignature(text: string): { keyVersion: number; signature: Buffer } {
  const m = FORM.exec(text);
  const signature = m ? fromBase64(m[2]!) : undefined;
  if (!m || !signature) throw badRequest('The signature is malformed.', { field: 'signature', reason: 'invalid' });
  return { keyVersion: Number(m[1]), signature };
}
