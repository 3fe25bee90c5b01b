/**
 * The last step of `npm test`: every answer the suite's servers sent (recorded by
 * test/helpers/openapi-recorder.ts into the directory scripts/test.sh gives) is checked against
 * the OpenAPI document they served at GET /openapi.json: its status is documented for the route and
 * its body validates against that status's schema. Every documented route must have been exercised
 * with at least one success. Answers to paths or methods the document doesn't describe (unknown
 * routes, the fuzz test's wrong methods, the console) are counted, not checked.
 *
 *   node dist/scripts/openapi-check.js <dir>     exit 0: all good; 1: failures listed on stderr
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import type { RecordedExchange } from '../test/helpers/openapi-recorder';

type Json = Record<string, unknown>;

interface DocOperation {
  readonly key: string;
  readonly method: string;
  readonly pattern: RegExp;
  /** Literal segments: a more literal path wins over a parameter (as the dispatcher decides). */
  readonly literals: number;
  readonly target?: { readonly header: string; readonly value: string };
  readonly responses: Json;
}

export interface CheckResult {
  readonly checked: number;
  readonly skipped: number;
  readonly failures: string[];
  /** Documented operations with no recorded success, as `METHOD path`. */
  readonly unexercised: string[];
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function operations(doc: Json): DocOperation[] {
  const out: DocOperation[] = [];
  for (const [key, item] of Object.entries((doc['paths'] as Record<string, Json> | undefined) ?? {})) {
    const [template = '', fragment] = key.split('#');
    const eq = fragment?.indexOf('=') ?? -1;
    const target = fragment !== undefined && eq > 0 ? { header: fragment.slice(0, eq).toLowerCase(), value: fragment.slice(eq + 1) } : undefined;
    const segs = template.split('/').filter((x) => x.length > 0);
    const pattern = new RegExp(`^/${segs.map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+' : escape(s))).join('/')}/?$`, 'i');
    const literals = segs.filter((s) => !s.startsWith('{')).length;
    for (const [method, op] of Object.entries(item)) {
      if (typeof op !== 'object' || op === null || !('responses' in op)) continue;
      out.push({ key, method: method.toUpperCase(), pattern, literals, ...(target ? { target } : {}), responses: (op as Json)['responses'] as Json });
    }
  }
  return out;
}

/** The documented operation an answer belongs to, or undefined when the document has none. */
function operationOf(ops: readonly DocOperation[], x: RecordedExchange): DocOperation | undefined {
  let best: DocOperation | undefined;
  for (const op of ops) {
    if (op.method !== x.method || !op.pattern.test(x.path)) continue;
    if (op.target && op.target.value !== x.target) continue;
    if (!best || op.literals > best.literals) best = op;
  }
  return best;
}

function resolve(doc: Json, schema: Json): Json {
  const ref = schema['$ref'];
  if (typeof ref !== 'string') return schema;
  let at: unknown = doc;
  for (const part of ref.replace(/^#\//, '').split('/')) at = (at as Json)[part];
  return at as Json;
}

export function checkRecorded(doc: Json, exchanges: readonly RecordedExchange[]): CheckResult {
  const ops = operations(doc);
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  const compiled = new Map<Json, ValidateFunction>();
  const validatorOf = (schema: Json): ValidateFunction => {
    let v = compiled.get(schema);
    if (!v) compiled.set(schema, (v = ajv.compile(resolve(doc, schema))));
    return v;
  };
  const failures: string[] = [];
  const succeeded = new Set<DocOperation>();
  let checked = 0;
  let skipped = 0;
  for (const x of exchanges) {
    const op = operationOf(ops, x);
    if (!op) {
      skipped++;
      continue;
    }
    checked++;
    const where = `${x.method} ${x.path}${x.target ? ` (${x.target})` : ''} -> ${x.status}`;
    const response = (op.responses[String(x.status)] ?? op.responses[`${String(x.status)[0]}XX`] ?? op.responses['default']) as Json | undefined;
    if (!response) {
      failures.push(`${where}: status ${x.status} is not documented for ${op.method} ${op.key}`);
      continue;
    }
    if (x.status >= 200 && x.status < 300) succeeded.add(op);
    const content = response['content'] as Record<string, Json> | undefined;
    if (!content) {
      if (x.body.length > 0) failures.push(`${where}: documented without a body, answered ${x.body.length} bytes`);
      continue;
    }
    if (x.truncated) continue;
    const media = x.contentType.split(';')[0]?.trim() ?? '';
    const entry = content[media];
    if (!entry) {
      failures.push(`${where}: content type ${media || '(none)'} is not documented (${Object.keys(content).join(', ')})`);
      continue;
    }
    let body: unknown;
    try {
      body = JSON.parse(x.body);
    } catch {
      failures.push(`${where}: the body is not JSON`);
      continue;
    }
    const validate = validatorOf(entry['schema'] as Json);
    if (!validate(body)) failures.push(`${where}: ${ajv.errorsText(validate.errors)} in ${x.body.slice(0, 300)}`);
  }
  const unexercised = ops.filter((op) => !succeeded.has(op)).map((op) => `${op.method} ${op.key}`);
  return { checked, skipped, failures, unexercised };
}

/** Every answer recorded in `dir`, and the document a server served. */
export function readRecorded(dir: string): { doc: Json | undefined; exchanges: RecordedExchange[] } {
  const exchanges: RecordedExchange[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        exchanges.push(JSON.parse(line) as RecordedExchange);
      } catch {
        // The last line of a server the test killed (crash tests) may be cut short.
      }
    }
  }
  const served = exchanges.find((x) => x.method === 'GET' && x.path === '/openapi.json' && x.status === 200 && !x.truncated);
  return { doc: served ? (JSON.parse(served.body) as Json) : undefined, exchanges };
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/scripts/openapi-check.js <dir of recorded answers>\n');
    process.exit(2);
  }
  const { doc, exchanges } = readRecorded(dir);
  if (!doc) {
    process.stderr.write(`[openapi] no GET /openapi.json answer among the ${exchanges.length} recorded: nothing to check against\n`);
    process.exit(1);
  }
  const r = checkRecorded(doc, exchanges);
  process.stderr.write(`[openapi] ${r.checked} answers checked against /openapi.json, ${r.skipped} to undocumented paths or methods\n`);
  for (const f of r.failures.slice(0, 50)) process.stderr.write(`[openapi] FAIL ${f}\n`);
  if (r.failures.length > 50) process.stderr.write(`[openapi] … and ${r.failures.length - 50} more\n`);
  for (const u of r.unexercised) process.stderr.write(`[openapi] NOT EXERCISED (no success answer in the suite) ${u}\n`);
  if (r.failures.length > 0 || r.unexercised.length > 0) process.exit(1);
}

if (require.main === module) main();
