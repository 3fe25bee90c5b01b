/** One load run: autocannon over loopback against one route, reduced to the figures the report needs. */
import autocannon from 'autocannon';
import { LatencyRecorder, type LatencySummary } from './latency';

export interface Target {
  /** Row name in the report. */
  readonly name: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Several bodies instead: each connection sends them in turn, round and round. */
  readonly bodies?: readonly string[];
  /** Replace `[<id>]` in the body with a unique id per request (create-key aliases). */
  readonly uniqueIds?: boolean;
  /** The status every response must have. */
  readonly expectStatus: number;
}

export interface LoadResult {
  readonly connections: number;
  readonly seconds: number;
  readonly requests: number;
  readonly reqPerSec: number;
  /** Of every response, to the microsecond (latency.ts). */
  readonly latencyMs: LatencySummary;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly non2xx: number;
  /** Responses whose status is not the expected one (must be 0). */
  readonly unexpected: number;
  readonly statusCodes: Record<string, number>;
}

export interface LoadOptions {
  readonly connections: number;
  /** Run for this long… */
  readonly seconds?: number;
  /** …or until this many requests were answered. */
  readonly amount?: number;
}

export async function drive(baseUrl: string, t: Target, o: LoadOptions): Promise<LoadResult> {
  const latency = new LatencyRecorder();
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon(
      {
        url: baseUrl + t.path,
        method: t.method,
        headers: { 'content-type': 'application/json', ...t.headers },
        ...(t.body === undefined ? {} : { body: t.body }),
        ...(t.bodies === undefined ? {} : { requests: t.bodies.map((body) => ({ method: t.method, path: t.path, body })) }),
        ...(t.uniqueIds ? { idReplacement: true } : {}),
        connections: o.connections,
        pipelining: 1,
        timeout: 30,
        ...(o.amount === undefined ? { duration: o.seconds ?? 5 } : { amount: o.amount }),
      },
      (err: unknown, result: autocannon.Result) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(result)),
    );
    run.on('response', (_client, _status, _bytes, ms) => latency.record(ms));
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count ?? 0;
  const answered = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  const expected = statusCodes[String(t.expectStatus)] ?? 0;
  return {
    connections: o.connections,
    seconds: r.duration,
    requests: answered,
    reqPerSec: answered / r.duration,
    latencyMs: latency.summary(),
    errors: r.errors,
    non2xx: r.non2xx,
    unexpected: answered - expected,
    statusCodes,
  };
}
