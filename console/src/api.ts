/**
 * Calls to the service with the signed-in token. The token lives in this tab's sessionStorage only
 * (never a cookie, never a URL); it goes out in the dialects' own token headers. Errors come back
 * as ApiError with the service's words and code, whichever dialect answered.
 */

const TOKEN_KEY = 'p11kms.token';

export interface Session {
  readonly project: string;
  readonly tokenId: string;
  readonly scopes: readonly string[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (t: string): void => sessionStorage.setItem(TOKEN_KEY, t),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

/** Called when the service no longer accepts the token (401). */
let onUnauthenticated: () => void = () => undefined;
export function whenSignedOut(fn: () => void): void {
  onUnauthenticated = fn;
}

function errorOf(status: number, body: unknown): ApiError {
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const huawei = o['error'];
  if (typeof huawei === 'object' && huawei !== null) {
    const e = huawei as Record<string, unknown>;
    return new ApiError(status, String(e['error_code'] ?? status), String(e['error_msg'] ?? 'The request was refused.'));
  }
  if (typeof o['error'] === 'string') return new ApiError(status, o['error'], String(o['message'] ?? 'The request was refused.'));
  if (typeof o['code'] === 'string') return new ApiError(status, o['code'], String(o['msg'] ?? 'The request was refused.'));
  return new ApiError(status, String(status), `The service answered HTTP ${status}.`);
}

async function call(method: string, path: string, header: string, body?: unknown, presented?: string): Promise<unknown> {
  const t = presented ?? token.get();
  if (!t) throw new ApiError(401, 'Unauthenticated', 'Not signed in.');
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { [header]: t, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'Network', 'The service could not be reached.');
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const e = errorOf(res.status, parsed);
    if (res.status === 401 && presented === undefined) onUnauthenticated();
    throw e;
  }
  return parsed;
}

/** The console's own read endpoints (/console/api). */
export function consoleGet<T>(path: string, params: Record<string, string | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const qs = q.toString();
  return call('GET', `/console/api${path}${qs ? `?${qs}` : ''}`, 'X-Auth-Token') as Promise<T>;
}

/** Checks a token before keeping it. */
export function signIn(presented: string): Promise<Session> {
  return call('GET', '/console/api/session', 'X-Auth-Token', undefined, presented) as Promise<Session>;
}

/** A Huawei action of the signed-in project (`POST /v1.0/{project}/kms/<action>`). */
export function huawei<T>(project: string, action: string, body: Record<string, unknown>): Promise<T> {
  return call('POST', `/v1.0/${encodeURIComponent(project)}/kms/${action}`, 'X-Auth-Token', body) as Promise<T>;
}

/** An NCP route (`/kms/v1/...`); answers its `data`. */
export async function ncp<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = (await call(method, `/kms/v1${path}`, 'x-ncp-ocapi-token', body)) as { data: T };
  return r.data;
}
