/**
 * Where a server process spends its time: a V8 .cpuprofile (node --cpu-prof) reduced to self time
 * by package or source file, and by function. Samples are wall-clock samples of the main thread,
 * so a synchronous system call (fdatasync, a PKCS#11 call) shows up with the time it blocked.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  readonly file: string;
  readonly sampledMs: number;
  /** [name, share 0..1] */
  readonly byPackage: [string, number][];
  readonly byFunction: [string, number][];
}

function packageOf(cf: CallFrame): string {
  const u = cf.url;
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? '')}`;
  }
  if (u.startsWith('node:')) return u;
  const dist = u.indexOf('/dist/');
  if (dist >= 0) return `app:${u.slice(dist + '/dist/'.length)}`;
  // No URL: a native frame (a system call like fdatasync, GC, idle, the C++ side of an addon).
  return cf.functionName ? `(${cf.functionName.replace(/^\(|\)$/g, '')})` : '(native)';
}

function functionOf(cf: CallFrame): string {
  const u = cf.url;
  const nm = u.lastIndexOf('node_modules/');
  const short = nm >= 0 ? u.slice(nm + 'node_modules/'.length) : u.includes('/dist/') ? u.slice(u.indexOf('/dist/') + 6) : u;
  return short ? `${cf.functionName || '(anonymous)'} ${short}:${cf.lineNumber + 1}` : cf.functionName || '(native)';
}

/** The largest .cpuprofile in `dir` (the server's main process), summarised. */
export function summarise(dir: string, top = 15): ProfileSummary {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  const file = files[0];
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const cf = frames.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (!cf) continue;
    total += dt;
    const pk = packageOf(cf);
    const fn = functionOf(cf);
    byPackage.set(pk, (byPackage.get(pk) ?? 0) + dt);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
  }
  const rank = (m: Map<string, number>): [string, number][] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, total > 0 ? v / total : 0]);
  return { file, sampledMs: total / 1000, byPackage: rank(byPackage), byFunction: rank(byFunction) };
}
