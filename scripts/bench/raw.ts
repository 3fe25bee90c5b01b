/**
 * The raw token rate: what one request asks of the token, looped in-process with no HTTP.
 * Run by run.ts as a child process while no server is running, so it has the machine to itself:
 *
 *   KMS_DATA_DIR=<dir> node dist/scripts/bench/raw.js '{"seconds":5,"project":"bench","keyId":"…","ops":["datakey-64",…]}'
 *
 * Prints one JSON object (op → {ops, seconds, opsPerSec}) on stdout.
 *
 * Service ops go through the service's own code path, opened the way the CLI opens it
 * (openRuntime(loadConfig(env), log)), so they make exactly the PKCS#11 calls a request makes:
 *   datakey-64        DataKeys.create(key, 64 B)   = Huawei create-datakey (datakey_length 512)
 *   datakey-32        DataKeys.create(key, 32 B)   = NCP create-custom-key (bits 256)
 *   decrypt-datakey   Crypto.open(key, envelope)   = Huawei decrypt-datakey
 *   encrypt-1k        Crypto.encrypt(key, 1 KiB)   = Huawei encrypt-data
 *   create-key        Keys.create(AES_256)         = Huawei create-key (adds keys to the token)
 *   datakey-64-x16    datakey-64 with 16 calls in flight (the pool's overhead under concurrency)
 *   reconcile-pass    one token ↔ store reconciliation pass (what every sweep ends with: a search
 *                     of the whole token, attributes read of objects not seen before), 3 passes
 *                     after a first one that reads every object (reported as reconcile-first-pass)
 * Diagnostics, straight on pkcs11js (outside the service, to size what an optimisation could win;
 * the service itself only ever reaches pkcs11js through src/hsm/binding.ts):
 *   p11-random-64           C_GenerateRandom 64 B
 *   p11-gcm-token-cmk       C_EncryptInit + C_Encrypt AES-GCM 64 B under the token-object CMK
 *   p11-gcm-session-key     the same under a session AES key (CKA_TOKEN=false, otherwise the CMK's
 *                           attributes): what a per-session copy of the CMK would cost. The CMKs
 *                           themselves can't be copied: their template has CKA_MODIFIABLE=false, and
 *                           SoftHSM then refuses C_CopyObject(CKA_TOKEN=false) with
 *                           CKR_ATTRIBUTE_READ_ONLY (recorded in `notes.copyOfCmk`).
 *   p11-dek-token-cmk       C_GenerateRandom 64 B + GCM under the token-object CMK (one DEK, bare)
 *   p11-dek-session-key     the same under the session key
 */
import { randomBytes } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { loadConfig } from '../../src/config/load';
import { objectId } from '../../src/hsm/hsm';
import { NO_CONTEXT } from '../../src/kms/envelope/context';
import { createCliLogger } from '../../src/log/logger';
import { openRuntime, openStore } from '../../src/runtime';

interface Options {
  readonly seconds: number;
  readonly project: string;
  readonly keyId: string;
  readonly ops: readonly string[];
}

export interface RawOutput {
  readonly results: Record<string, RawResult>;
  readonly notes: Record<string, string>;
}

export interface RawResult {
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
}


/** Calls `op` back to back for `seconds` (after a short warm-up) and counts. */
async function loop(seconds: number, op: (i: number) => Promise<unknown> | unknown): Promise<RawResult> {
  const warm = Date.now() + Math.min(500, seconds * 200);
  let i = 0;
  while (Date.now() < warm) await op(i++);
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let now = t0;
  while (now < end) {
    await op(i++);
    n++;
    if ((n & 15) === 0) now = process.hrtime.bigint();
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ops: n, seconds: elapsed, opsPerSec: n / elapsed };
}

/** `inFlight` copies of `op` at once, each awaiting its own result, for `seconds`. */
async function concurrent(seconds: number, inFlight: number, op: () => Promise<unknown>): Promise<RawResult> {
  const t0 = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < end) {
        await op();
        n++;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ops: n, seconds: elapsed, opsPerSec: n / elapsed };
}

async function serviceOps(o: Options, out: Record<string, RawResult>): Promise<void> {
  const runtime = openRuntime(loadConfig(process.env), createCliLogger('warn'));
  try {
    const s = runtime.services;
    const key = await s.keys.byId(o.project, o.keyId);
    const sample = await s.dataKeys.create(key, 64, NO_CONTEXT);
    const plaintext1k = Buffer.alloc(1024, 0x61);
    const tag = randomBytes(4).toString('hex');
    const ops: Record<string, (i: number) => Promise<unknown>> = {
      'datakey-64': async () => (await s.dataKeys.create(key, 64, NO_CONTEXT)).plaintext.fill(0),
      'datakey-32': async () => (await s.dataKeys.create(key, 32, NO_CONTEXT)).plaintext.fill(0),
      'decrypt-datakey': async () => (await s.crypto.open(key, sample.ciphertext, NO_CONTEXT, { projectId: key.projectId })).plaintext.fill(0),
      'encrypt-1k': () => s.crypto.encrypt(key, plaintext1k, NO_CONTEXT),
      'create-key': (i) =>
        s.keys.create({ projectId: o.project, alias: `raw-${tag}-${i}`, description: '', spec: 'AES_256', usage: 'ENCRYPT_DECRYPT', convergent: false }),
    };
    for (const name of o.ops) {
      const op = ops[name];
      if (op) out[name] = await loop(o.seconds, op);
      else if (name === 'reconcile-pass') {
        // A process's first listing reads every object's attributes; later ones only new objects'.
        const timed = async (n: number): Promise<RawResult> => {
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < n; i++) await runtime.reconciler.pass();
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          return { ops: n, seconds, opsPerSec: n / seconds };
        };
        out['reconcile-first-pass'] = await timed(1);
        out[name] = await timed(3);
      }
      else if (name === 'datakey-64-x16') {
        out[name] = await concurrent(o.seconds, 16, async () => (await s.dataKeys.create(key, 64, NO_CONTEXT)).plaintext.fill(0));
      }
    }
  } finally {
    // The loops below initialise the module themselves: the runtime must have finalized it.
    await runtime.close();
  }
}

/** Bare pkcs11js loops, after the service's runtime has finalized the module. */
async function diagnostics(o: Options, out: Record<string, RawResult>, notes: Record<string, string>): Promise<void> {
  const wanted = o.ops.filter((n) => n.startsWith('p11-'));
  if (wanted.length === 0) return;
  const config = loadConfig(process.env);
  const version = await currentVersion(o.keyId);
  if (config.softhsmConf) process.env['SOFTHSM2_CONF'] = config.softhsmConf;
  const lib = new pkcs11js.PKCS11();
  lib.load(config.pkcs11Module);
  lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  try {
    const slot = lib.C_GetSlotList(true).find((sl) => lib.C_GetTokenInfo(sl).label.trim() === config.tokenLabel);
    if (!slot) throw new Error('token not found');
    const s = lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    lib.C_Login(s, pkcs11js.CKU_USER, config.pin);
    lib.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_ID, value: objectId({ keyId: o.keyId, version }, 'cmk') },
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    ]);
    const [tokenCmk] = lib.C_FindObjects(s, 1);
    lib.C_FindObjectsFinal(s);
    if (!tokenCmk) throw new Error('CMK object not found');
    try {
      const copy = lib.C_CopyObject(s, tokenCmk, [{ type: pkcs11js.CKA_TOKEN, value: false }]);
      lib.C_DestroyObject(s, copy);
      notes['copyOfCmk'] = 'ok';
    } catch (e) {
      notes['copyOfCmk'] = e instanceof Error ? (e.message.split(':')[0] ?? 'failed') : 'failed';
    }
    const sessionKey = lib.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
    ]);
    const aad = Buffer.alloc(32, 1);
    const gcm = (key: pkcs11js.Handle, data: Buffer) => {
      const parameter: pkcs11js.GcmParams = { type: pkcs11js.CK_PARAMS_GCM, iv: randomBytes(12), ivBits: 96, aad, tagBits: 128 };
      lib.C_EncryptInit(s, { mechanism: pkcs11js.CKM_AES_GCM, parameter }, key);
      return lib.C_Encrypt(s, data, Buffer.alloc(data.length + 16));
    };
    const data = Buffer.alloc(64, 7);
    const ops: Record<string, () => unknown> = {
      'p11-random-64': () => lib.C_GenerateRandom(s, Buffer.alloc(64)),
      'p11-gcm-token-cmk': () => gcm(tokenCmk, data),
      'p11-gcm-session-key': () => gcm(sessionKey, data),
      'p11-dek-token-cmk': () => gcm(tokenCmk, lib.C_GenerateRandom(s, Buffer.alloc(64))),
      'p11-dek-session-key': () => gcm(sessionKey, lib.C_GenerateRandom(s, Buffer.alloc(64))),
    };
    for (const name of wanted) {
      const op = ops[name];
      if (op) out[name] = await loop(o.seconds, op);
    }
    lib.C_DestroyObject(s, sessionKey);
    lib.C_Logout(s);
    lib.C_CloseSession(s);
  } finally {
    lib.C_Finalize();
  }
}

/** The key's current version, read from the store. */
async function currentVersion(keyId: string): Promise<number> {
  const store = openStore(loadConfig(process.env));
  try {
    const key = await store.keyById(keyId);
    if (!key) throw new Error('key not found in the store');
    return key.currentVersion;
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as Options;
  const results: Record<string, RawResult> = {};
  const notes: Record<string, string> = {};
  if (o.ops.some((n) => !n.startsWith('p11-'))) await serviceOps(o, results);
  await diagnostics(o, results, notes);
  const out: RawOutput = { results, notes };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`raw benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
