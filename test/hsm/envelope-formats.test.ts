/**
 * Envelopes of format version 1 (written before envelopes said what they hold) still open on a real
 * token: for the key's own project through any route, for a grantee only with both decrypt-data and
 * decrypt-datakey granted. Format 2 envelopes open for a grantee only as what they hold.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { KmsError } from '../../src/errors/kms-error';
import { NO_CONTEXT } from '../../src/kms/envelope/context';
import { aad, encodeEnvelope, encodeHeader } from '../../src/kms/envelope/format';
import { createLogger } from '../../src/log/logger';
import { openRuntime, type Runtime } from '../../src/runtime';
import type { KeyRecord } from '../../src/store/store';
import { ROOT } from '../helpers/server';

let dataDir: string;
let runtime: Runtime;
let key: KeyRecord;

const forbidden = (e: unknown) => e instanceof KmsError && e.code === 'Forbidden';

before(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-formats-'));
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir, KMS_SWEEP_INTERVAL_MS: '86400000' };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  runtime = openRuntime(loadConfig(env), createLogger('warn', new PassThrough()));
  key = await runtime.services.keys.create({ projectId: 'p1', alias: 'k', description: '', spec: 'AES_256', usage: 'ENCRYPT_DECRYPT', convergent: false });
});

after(async () => {
  await runtime?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** What the service wrote before format 2: a 22-byte header, no contents byte, as additional data. */
async function formatOne(plaintext: Buffer): Promise<Buffer> {
  const header = { alg: 'aes-gcm', contents: 'unmarked', keyId: key.keyId, keyVersion: 1 } as const;
  const iv = randomBytes(12);
  const sealed = await runtime.hsm.gcmEncrypt({ keyId: key.keyId, version: 1 }, iv, aad(encodeHeader(header), NO_CONTEXT), plaintext);
  const envelope = encodeEnvelope({ ...header, iv, sealed });
  assert.equal(envelope.length, 22 + 12 + plaintext.length + 16);
  return envelope;
}

async function grantP2(operations: string[]): Promise<string> {
  const g = await runtime.services.keys.createGrant(key, { granteeProject: 'p2', operations, name: '', retiringProject: '', issuingProject: 'p1' }, 'create-grant');
  return g.grantId;
}

describe('envelope formats', () => {
  it("when a format 1 envelope is opened by the key's project, as data or as a data key, then it opens", async () => {
    const p = randomBytes(32);
    const v1 = await formatOne(p);
    for (const as of ['data', 'data-key'] as const) {
      const opened = await runtime.services.crypto.open(key, v1, NO_CONTEXT, { projectId: 'p1', operation: as === 'data' ? 'decrypt-data' : 'decrypt-datakey' });
      assert.deepEqual(opened.plaintext, p);
      assert.equal(opened.contents, 'unmarked');
    }
  });

  it('when a grantee holds only decrypt-data, then a format 1 envelope does not open for it; with decrypt-datakey too, it does', async () => {
    const p = randomBytes(32);
    const v1 = await formatOne(p);
    const g = await grantP2(['decrypt-data']);
    await assert.rejects(runtime.services.crypto.open(key, v1, NO_CONTEXT, { projectId: 'p2', operation: 'decrypt-data' }), forbidden);
    const g2 = await grantP2(['decrypt-datakey']);
    assert.deepEqual((await runtime.services.crypto.open(key, v1, NO_CONTEXT, { projectId: 'p2', operation: 'decrypt-data' })).plaintext, p);
    await runtime.services.keys.deleteGrant((await runtime.services.keys.grantOf(key, g))!);
    await runtime.services.keys.deleteGrant((await runtime.services.keys.grantOf(key, g2))!);
  });

  it('when format 2 envelopes are opened by a grantee, then each opens only as what it holds, and a flipped contents byte fails the tag', async () => {
    const dk = await runtime.services.dataKeys.create(key, 32, NO_CONTEXT);
    const data = await runtime.services.crypto.encrypt(key, Buffer.from('hello'), NO_CONTEXT);
    assert.equal(dk.ciphertext[2], 2);
    assert.equal(data.ciphertext[2], 1);
    const grantee = (operation: 'decrypt-data' | 'decrypt-datakey') => ({ projectId: 'p2', operation }) as const;
    await assert.rejects(runtime.services.crypto.open(key, dk.ciphertext, NO_CONTEXT, grantee('decrypt-data')), forbidden);
    await assert.rejects(runtime.services.crypto.open(key, data.ciphertext, NO_CONTEXT, grantee('decrypt-datakey')), forbidden);
    assert.deepEqual((await runtime.services.crypto.open(key, dk.ciphertext, NO_CONTEXT, grantee('decrypt-datakey'))).plaintext, dk.plaintext);
    assert.equal((await runtime.services.crypto.open(key, data.ciphertext, NO_CONTEXT, grantee('decrypt-data'))).plaintext.toString(), 'hello');
    const relabelled = Buffer.from(dk.ciphertext);
    relabelled[2] = 1;
    await assert.rejects(runtime.services.crypto.open(key, relabelled, NO_CONTEXT, grantee('decrypt-data')), (e: unknown) => e instanceof KmsError && e.code === 'InvalidCiphertext');
    dk.plaintext.fill(0);
  });
});
