/**
 * The tests' HTTP client: one new connection per request, closed after its response.
 *
 * Why not fetch (or node:http's keep-alive agent): a pooled idle connection can be closed by the
 * server (its keep-alive timeout) while the test's event loop is busy, e.g. in a synchronous CLI
 * call on a loaded machine. The next request then goes out on a socket whose close the client has
 * not read yet, and fails with `fetch failed` (ECONNRESET / "other side closed"). A fresh
 * connection per request has nothing to race with; on loopback it costs well under a millisecond.
 */
import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // Tests index into replies freely; the assertions are what type them.
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RequestOptions {
  readonly headers?: Record<string, string>;
  /** Sent as JSON (content-type application/json unless `headers` says otherwise). */
  readonly body?: unknown;
  /** Sent as is, instead of `body`. */
  readonly raw?: string;
}

/**
 * Connections open at once per server; more requests wait in the client. A test's burst of a
 * thousand would otherwise all connect at once and overflow the server's accept queue on a busy
 * machine (connections reset before they are accepted).
 */
const MAX_CONNECTIONS = 64;
const agents = new Map<string, http.Agent>();

/** One request on a connection of its own; resolves with the whole reply (the body parsed as JSON when it is JSON). */
export function request(base: string, method: string, p: string, opts: RequestOptions = {}): Promise<Reply> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const url = new URL(base + p);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers, connection: 'close' };
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  let agent = agents.get(url.origin);
  if (!agent) agents.set(url.origin, (agent = new http.Agent({ keepAlive: false, maxSockets: MAX_CONNECTIONS })));
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const out = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: out, text, body });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}
