/**
 * Ending the process. process.exit (and a natural exit) joins every worker thread first, and a
 * session thread inside a PKCS#11 call that never returns (a silent network HSM) can't be joined:
 * the process would hang. Such a call can't be cancelled either, so when one is still inside the
 * module after a short wait, the process ends through WASI's proc_exit, which is the C library's
 * exit(): same exit code, no joining of threads.
 */
import { callsInside } from './threads';

/** How long calls still inside the module get to return before the process stops waiting. */
const DRAIN_MS = 1000;
const POLL_MS = 20;
/**
 * A WebAssembly module whose export `exit(code)` calls WASI's proc_exit(code):
 * (module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
 *         (memory (export "memory") 0) (func (export "exit") (param i32) local.get 0 call 0))
 */
const PROC_EXIT_WASM = 'AGFzbQEAAAABBQFgAX8AAiQBFndhc2lfc25hcHNob3RfcHJldmlldzEJcHJvY19leGl0AAADAgEABQMBAAAHEQIGbWVtb3J5AgAEZXhpdAABCggBBgAgABAACw==';

/** The part of the WebAssembly global used here (this project's TypeScript libs don't declare it). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: { exit(code: number): void } };
}
const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

/** Ends the process with `code` once stdout and stderr are written out. */
export function exitProcess(code: number): void {
  void flushed()
    .then(drained)
    .then(() => finish(code));
}

function finish(code: number): void {
  const stuck = callsInside();
  if (stuck === 0) process.exit(code);
  process.stderr.write(`p11kms: ${stuck} PKCS#11 call(s) never returned; exiting without waiting for them\n`, () => {
    try {
      // Loaded only here: loading node:wasi prints an experimental-feature warning.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { WASI } = require('node:wasi') as typeof import('node:wasi');
      const wasi = new WASI({ version: 'preview1', returnOnExit: false });
      const instance = new wasm.Instance(new wasm.Module(Buffer.from(PROC_EXIT_WASM, 'base64')), wasi.getImportObject());
      wasi.initialize(instance);
      instance.exports.exit(code);
    } finally {
      process.kill(process.pid, 'SIGKILL');
    }
  });
}

function flushed(): Promise<void> {
  const out = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => s.write('', () => resolve()));
  const cap = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_MS).unref());
  return Promise.race([Promise.all([out(process.stdout), out(process.stderr)]).then(() => undefined), cap]);
}

async function drained(): Promise<void> {
  for (let waited = 0; callsInside() > 0 && waited < DRAIN_MS; waited += POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
