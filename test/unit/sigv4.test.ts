/**
 * SigV4 verification without a server: what the SDK tests can't provoke, because the SDK always
 * signs well (an unsigned x-amz-target, a lying x-amz-content-sha256, a scope for another region).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { amzTime, canonicalRequest, checkRequest, parseAuthorization, sha256Hex, signingKey, stringToSign, verifySignature, type SignedRequest } from '../../src/api/aws/sigv4';
import { KmsError } from '../../src/errors/kms-error';

const SECRET = Buffer.from('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

/** A request signed over `signed` headers (names, sorted) of `headers`, for `body`. */
function signed(headers: Record<string, string>, signedNames: string[], body: string, region = 'us-east-1', bodySent = body): { req: SignedRequest; auth: string } {
  const rawHeaders = Object.entries(headers).flat();
  const date = headers['x-amz-date']!.slice(0, 8);
  const canonical = canonicalRequest({ method: 'POST', path: '/', query: '', rawHeaders, body: Buffer.from(body) }, signedNames);
  const scope = `${date}/${region}/kms/aws4_request`;
  const sig = createHmac('sha256', signingKey(SECRET, date, region, 'kms')).update(stringToSign(headers['x-amz-date']!, scope, canonical)).digest('hex');
  return {
    req: { method: 'POST', path: '/', query: '', rawHeaders, body: Buffer.from(bodySent) },
    auth: `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/${scope}, SignedHeaders=${signedNames.join(';')}, Signature=${sig}`,
  };
}

function verify(req: SignedRequest, authHeader: string, now = NOW): void {
  const auth = parseAuthorization(authHeader);
  const checked = checkRequest(req, auth, { region: 'us-east-1', service: 'kms', now });
  verifySignature(req, auth, checked, signingKey(SECRET, auth.date, auth.region, auth.service));
}

const refused = (f: () => void, subject: string) =>
  assert.throws(f, (e: unknown) => e instanceof KmsError && e.code === 'Unauthenticated' && e.subject === subject);

const base = { host: 'kms.local', 'x-amz-date': amzTime(NOW), 'x-amz-target': 'TrentService.Encrypt', 'content-type': 'application/x-amz-json-1.1' };
const ALL = ['content-type', 'host', 'x-amz-date', 'x-amz-target'];

describe('SigV4 verification', () => {
  it('when a request is signed over its headers and body, then it verifies (and fails with any byte of the body changed)', () => {
    const { req, auth } = signed(base, ALL, '{"KeyId":"k"}');
    verify(req, auth);
    refused(() => verify({ ...req, body: Buffer.from('{"KeyId":"K"}') }, auth), 'signature');
  });

  it('when x-amz-target (or any x-amz-* header, or host) is not signed, then refused: the operation could be swapped', () => {
    refused(() => verify(signed(base, ['content-type', 'host', 'x-amz-date'], '{}').req, signed(base, ['content-type', 'host', 'x-amz-date'], '{}').auth), 'signature');
    const extra = { ...base, 'x-amz-user-agent': 'x' };
    const s = signed(extra, ALL, '{}');
    refused(() => verify(s.req, s.auth), 'signature');
    const noHost = signed(base, ['content-type', 'x-amz-date', 'x-amz-target'], '{}');
    refused(() => verify(noHost.req, noHost.auth), 'signature');
  });

  it('when x-amz-content-sha256 names the signed body but another body is sent, then refused: the server hashes what it received', () => {
    const body = '{"Plaintext":"AAAA"}';
    const headers = { ...base, 'x-amz-content-sha256': sha256Hex(body) };
    const names = [...ALL, 'x-amz-content-sha256'].sort();
    const s = signed(headers, names, body, 'us-east-1', '{"Plaintext":"BBBB"}');
    refused(() => verify(s.req, s.auth), 'signature');
  });

  it('when the signed time is 5 minutes off it passes, past that it is refused as expired', () => {
    const { req, auth } = signed(base, ALL, '{}');
    verify(req, auth, NOW + 5 * 60_000);
    refused(() => verify(req, auth, NOW + 5 * 60_000 + 1000), 'request-time');
    refused(() => verify(req, auth, NOW - 10 * 60_000), 'request-time');
  });

  it('when the scope names another region, or the header is malformed or unsorted, then refused', () => {
    const s = signed(base, ALL, '{}', 'eu-west-1');
    refused(() => verify(s.req, s.auth), 'signature');
    refused(() => parseAuthorization('AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00'), 'signature');
    const { auth } = signed(base, ALL, '{}');
    refused(() => parseAuthorization(auth.replace('content-type;host', 'host;content-type')), 'signature');
    refused(() => parseAuthorization(undefined), 'credential');
  });
});
