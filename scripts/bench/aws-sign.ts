/**
 * A SigV4-signed AWS request for autocannon, which sends the same bytes every time: the signature
 * stays valid for the server's 5-minute window (SigV4 does not forbid replay within it), so each
 * cell signs afresh when its target is built. Host is a fixed name, sent and signed as given.
 */
import { createHmac } from 'node:crypto';
import { amzTime, canonicalRequest, signingKey, stringToSign } from '../../src/api/aws/sigv4';

export const AWS_BENCH_HOST = 'p11kms-bench';

export interface AwsCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

export function signedAwsHeaders(cred: AwsCredential, operation: string, body: string, now = Date.now()): Record<string, string> {
  const amzDate = amzTime(now);
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.1',
    host: AWS_BENCH_HOST,
    'x-amz-date': amzDate,
    'x-amz-target': `TrentService.${operation}`,
  };
  const signed = Object.keys(headers).sort();
  const rawHeaders = signed.flatMap((h) => [h, headers[h]!]);
  const canonical = canonicalRequest({ method: 'POST', path: '/', query: '', rawHeaders, body: Buffer.from(body) }, signed);
  const scope = `${date}/${cred.region}/kms/aws4_request`;
  const key = signingKey(Buffer.from(cred.secretAccessKey), date, cred.region, 'kms');
  const signature = createHmac('sha256', key).update(stringToSign(amzDate, scope, canonical)).digest('hex');
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${cred.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}` };
}
