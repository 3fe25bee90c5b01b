/**
 * AWS Signature Version 4, verified. The canonical request is rebuilt from the request itself: the
 * headers its `SignedHeaders` names (host, x-amz-date and x-amz-target must be among them, and so
 * must every x-amz-* header sent), its path and query, and the SHA-256 of the body bytes as
 * received (never the client's `x-amz-content-sha256`). The signed time must be within 5 minutes
 * of the server's clock, and the signature is compared in constant time.
 *
 * Hand-written rather than taken from @smithy/signature-v4: that library signs an outgoing request
 * choosing its own headers; verifying needs the canonical form of exactly the headers the client
 * chose. The steps follow AWS's "Create a signed AWS API request" (SigV4) specification.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { KmsError } from '../../errors/kms-error';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const MAX_SKEW_MS = 5 * 60_000;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const AUTH = /^AWS4-HMAC-SHA256 +Credential=([^,\s]+), *SignedHeaders=([^,\s]+), *Signature=([0-9a-f]{64})$/;
/** Headers that must be signed: the endpoint, the time and the operation. */
const REQUIRED = ['host', 'x-amz-date', 'x-amz-target'];

export interface Authorization {
  readonly accessKeyId: string;
  /** `YYYYMMDD` of the credential scope. */
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: Buffer;
}

/** What the verification reads of a request. */
export interface SignedRequest {
  readonly method: string;
  /** The path as sent, before any decoding (`/`). */
  readonly path: string;
  /** The query string as sent, without `?` ('' for none). */
  readonly query: string;
  /** node's rawHeaders: name, value, name, value… as received. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

const unauthenticated = (subject: 'signature' | 'request-time' | 'credential', message: string) =>
  new KmsError('Unauthenticated', message, { subject });

/** Parses the Authorization header; malformed is an invalid signature. */
export function parseAuthorization(header: string | undefined): Authorization {
  if (header === undefined) throw unauthenticated('credential', 'Request is missing Authentication Token');
  const m = AUTH.exec(header.trim());
  if (!m) throw unauthenticated('signature', 'The Authorization header is not a valid AWS Signature Version 4 header.');
  const scope = m[1]!.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !/^\d{8}$/.test(scope[1]!)) {
    throw unauthenticated('signature', 'The credential scope of the Authorization header is malformed.');
  }
  const signedHeaders = m[2]!.split(';');
  const sorted = [...signedHeaders].sort();
  if (signedHeaders.some((h, i) => h === '' || h !== h.toLowerCase() || h !== sorted[i]) || new Set(signedHeaders).size !== signedHeaders.length) {
    throw unauthenticated('signature', 'SignedHeaders must be lower-case, sorted and distinct.');
  }
  return { accessKeyId: scope[0]!, date: scope[1]!, region: scope[2]!, service: scope[3]!, signedHeaders, signature: Buffer.from(m[3]!, 'hex') };
}

/** `X-Amz-Date` as ms since epoch, or undefined when malformed. */
export function parseAmzDate(text: string | undefined): number | undefined {
  const m = text === undefined ? null : AMZ_DATE.exec(text);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isFinite(t) ? t : undefined;
}

/** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, everything else %XX upper-case. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Each path segment normalised (decoded, then encoded twice, as the SDKs do for every service but S3). */
function canonicalPath(path: string): string {
  if (path === '' || path === '/') return '/';
  return path
    .split('/')
    .map((seg) => uriEncode(uriEncode(decodeURIComponent(seg))))
    .join('/');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const [k, v] = i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      return [uriEncode(decodeURIComponent(k.replace(/\+/g, ' '))), uriEncode(decodeURIComponent(v.replace(/\+/g, ' ')))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** Every value of each header as received, trimmed and with inner runs of spaces collapsed. */
function headerValues(rawHeaders: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!.trim().replace(/ +/g, ' ');
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  }
  return out;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The canonical request of SigV4, from the request's own signed headers and the hash of its body. */
export function canonicalRequest(req: SignedRequest, signedHeaders: readonly string[], headers: Map<string, string[]> = headerValues(req.rawHeaders)): string {
  const lines = signedHeaders.map((h) => `${h}:${(headers.get(h) ?? []).join(',')}\n`).join('');
  return [req.method, canonicalPath(req.path), canonicalQuery(req.query), lines, signedHeaders.join(';'), sha256Hex(req.body)].join('\n');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

/** kSigning = HMAC chain over the date, region, service and "aws4_request", from the secret. */
export function signingKey(secret: Buffer, date: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', Buffer.concat([Buffer.from('AWS4'), secret])).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

export interface Expectation {
  readonly region: string;
  readonly service: string;
  readonly now: number;
}

/**
 * Everything about the signature that doesn't need the secret: scope, time and signed headers. Runs
 * before the credential is looked up, so a malformed or stale request costs no token call.
 */
export function checkRequest(req: SignedRequest, auth: Authorization, expect: Expectation): { amzDate: string; headers: Map<string, string[]> } {
  const headers = headerValues(req.rawHeaders);
  const amzDate = headers.get('x-amz-date')?.[0];
  const t = parseAmzDate(amzDate);
  if (amzDate === undefined || t === undefined) throw unauthenticated('signature', 'The request must carry a valid X-Amz-Date header.');
  if (Math.abs(expect.now - t) > MAX_SKEW_MS) {
    throw unauthenticated('request-time', `Signature expired: ${amzDate} is not within 5 minutes of the server time ${amzTime(expect.now)}.`);
  }
  if (auth.date !== amzDate.slice(0, 8)) throw unauthenticated('signature', 'The credential scope date does not match X-Amz-Date.');
  if (auth.region !== expect.region) throw unauthenticated('signature', `Credential should be scoped to a valid region, '${expect.region}'.`);
  if (auth.service !== expect.service) throw unauthenticated('signature', `Credential should be scoped to correct service: '${expect.service}'.`);
  for (const h of REQUIRED) {
    if (!auth.signedHeaders.includes(h)) throw unauthenticated('signature', `The ${h} header must be signed.`);
  }
  for (const name of headers.keys()) {
    if (name.startsWith('x-amz-') && !auth.signedHeaders.includes(name)) throw unauthenticated('signature', `The ${name} header must be signed.`);
  }
  for (const h of auth.signedHeaders) {
    if (!headers.has(h)) throw unauthenticated('signature', `The signed header ${h} is not in the request.`);
  }
  return { amzDate, headers };
}

/** Compares the request's signature with the one `key` (kSigning) gives, in constant time. */
export function verifySignature(req: SignedRequest, auth: Authorization, checked: { amzDate: string; headers: Map<string, string[]> }, key: Buffer): void {
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const expected = createHmac('sha256', key).update(stringToSign(checked.amzDate, scope, canonicalRequest(req, auth.signedHeaders, checked.headers))).digest();
  if (!timingSafeEqual(expected, auth.signature)) {
    throw unauthenticated('signature', 'The request signature we calculated does not match the signature you provided.');
  }
}

export function amzTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}
