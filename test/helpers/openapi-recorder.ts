/**
 * Preloaded (`node --require`) into the servers the tests start (helpers/server.ts) when
 * P11KMS_OPENAPI_RECORD names a directory (scripts/test.sh sets it): every answer the server sends
 * is appended to <dir>/<pid>.jsonl as method, path, X-Amz-Target, status, content type and body.
 * After the suite, scripts/openapi-check.ts validates them all against GET /openapi.json's
 * document and lists the documented routes no test exercised. The product has no hook for this:
 * the answers are read at node:http's ServerResponse, below Express.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

/** One answer as the check reads it. */
export interface RecordedExchange {
  readonly method: string;
  readonly path: string;
  readonly target?: string;
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** The body was longer than what is kept: not validated. */
  readonly truncated?: boolean;
}

const MAX_BODY_BYTES = 1 << 20;

const dir = process.env['P11KMS_OPENAPI_RECORD'];
if (dir) {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}.jsonl`);
  const bodies = new WeakMap<http.ServerResponse, { chunks: Buffer[]; bytes: number; done: boolean }>();
  const proto = http.ServerResponse.prototype;
  const write = proto.write;
  const end = proto.end;

  const keep = (res: http.ServerResponse, chunk: unknown, encoding: unknown): void => {
    let state = bodies.get(res);
    if (!state) bodies.set(res, (state = { chunks: [], bytes: 0, done: false }));
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf = Buffer.isBuffer(chunk) ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk) : Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    state.bytes += buf.length;
    if (state.bytes <= MAX_BODY_BYTES) state.chunks.push(buf);
  };

  const record = (res: http.ServerResponse): void => {
    const state = bodies.get(res);
    if (!state || state.done) return;
    state.done = true;
    const req = res.req as http.IncomingMessage | undefined;
    if (!req || req.method === 'HEAD') return;
    const target = req.headers['x-amz-target'];
    // Express's routers strip their mount from req.url while they run; originalUrl keeps it.
    const url = (req as http.IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
    const exchange: RecordedExchange = {
      method: req.method ?? '',
      path: url.split('?')[0] ?? '',
      ...(typeof target === 'string' ? { target } : {}),
      status: res.statusCode,
      contentType: String(res.getHeader('content-type') ?? ''),
      body: Buffer.concat(state.chunks).toString('utf8'),
      ...(state.bytes > MAX_BODY_BYTES ? { truncated: true } : {}),
    };
    try {
      appendFileSync(file, `${JSON.stringify(exchange)}\n`);
    } catch {
      // Never in the answer's way: a test may limit the server's file sizes (RLIMIT_FSIZE, EFBIG).
    }
  };

  proto.write = function (this: http.ServerResponse, chunk: unknown, ...rest: unknown[]) {
    keep(this, chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof proto.write;

  proto.end = function (this: http.ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    keep(this, chunk, rest[0]);
    record(this);
    return (end as (...a: unknown[]) => http.ServerResponse).call(this, chunk, ...rest);
  } as typeof proto.end;
}
