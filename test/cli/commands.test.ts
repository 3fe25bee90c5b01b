/**
 * The command line as a user meets it: help and version, errors that name what is missing, keys
 * found by any of their names without HTTP, and the same data dir from any working directory.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { ROOT } from '../helpers/server';

const BIN = path.join(ROOT, 'bin/p11kms.js');
let dataDir = '';
let env: NodeJS.ProcessEnv = {};

function cli(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? env, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: readonly string[]): string {
  const r = cli(args);
  assert.equal(r.code, 0, `p11kms ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'p11kms-cli-'));
  env = { ...process.env, KMS_DATA_DIR: dataDir };
  delete env['SOFTHSM2_CONF'];
  execFileSync('bash', [path.join(ROOT, 'scripts/dev-token.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe('p11kms help and version', () => {
  it('when asked for help in any of its forms, then it lists every command on stdout and exits 0', () => {
    for (const args of [['--help'], ['help'], ['-h'], []]) {
      const r = cli(args);
      assert.equal(r.code, 0, args.join(' '));
      for (const name of ['token create', 'token list', 'token revoke', 'key create', 'key list', 'key describe', 'audit verify', 'audit head']) {
        assert.ok(r.stdout.includes(`p11kms ${name}`), `${args.join(' ')} lists ${name}`);
      }
    }
    assert.match(cli(['help']).stdout, /p11kms token create --project <project_id> .*\[--aws\]/);
    assert.match(cli(['help']).stdout, /p11kms audit verify \[file\] \[--head <head>\]/);
    const one = cli(['help', 'key', 'describe']);
    assert.equal(one.code, 0);
    assert.match(one.stdout, /^usage: p11kms key describe <key_id \| keyTag \| alias\/NAME> --project/);
    assert.equal(cli(['key', 'list', '--help']).code, 0);
  });

  it('when asked for the version, then it prints package.json\'s and exits 0', () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['version'], ['-V']]) assert.equal(ok(args), `p11kms ${version}\n`);
  });

  it('when run from another directory, then it works and finds the data dir npm start uses', () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'p11kms-cwd-'));
    try {
      assert.equal(cli(['--version'], { cwd: elsewhere }).code, 0);
      const cwd = process.cwd();
      process.chdir(elsewhere);
      try {
        assert.equal(loadConfig({ KMS_PIN: '1234' }).dataDir, path.join(ROOT, 'data'));
      } finally {
        process.chdir(cwd);
      }
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe('p11kms errors', () => {
  it('when a required option is missing, then the error names it (not "malformed"), with the usage, exit 2', () => {
    const noAlias = cli(['key', 'create', '--project', 'demo', '--spec', 'AES_256']);
    assert.equal(noAlias.code, 2);
    assert.match(noAlias.stderr, /^p11kms: missing --alias\nusage: p11kms key create --project/);
    assert.match(cli(['key', 'create']).stderr, /missing --project, --alias/);
    assert.match(cli(['key', 'list']).stderr, /missing --project/);
    assert.match(cli(['key', 'describe', '--project', 'demo']).stderr, /missing <key>/);
    assert.match(cli(['token', 'revoke']).stderr, /missing <token_id>/);
    const unknown = cli(['key', 'create', '--project', 'demo', '--alias', 'a', '--colour', 'red']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--colour/);
    assert.equal(cli(['key', 'create', '--project', 'demo', '--alias', 'a!']).code, 2);
  });

  it('when the command is unknown, then it says so with the list of commands, exit 2', () => {
    const r = cli(['key', 'frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command: key frobnicate/);
    assert.match(r.stderr, /p11kms key list/);
  });
});

describe('p11kms key list and describe', () => {
  it('when keys exist, then list shows each of the project\'s keys once as a JSON line, and describe finds one by key_id, keyTag or alias', () => {
    const a = JSON.parse(ok(['key', 'create', '--project', 'p1', '--alias', 'orders'])) as { key_id: string; keyTag: string };
    const b = JSON.parse(ok(['key', 'create', '--project', 'p1', '--alias', 'signer', '--spec', 'RSA_2048'])) as { key_id: string };
    ok(['key', 'create', '--project', 'p2', '--alias', 'orders']);

    const lines = ok(['key', 'list', '--project', 'p1']).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l['key_id']),
      [a.key_id, b.key_id],
    );
    assert.deepEqual(lines[0], { key_id: a.key_id, keyTag: a.keyTag, alias: 'orders', spec: 'AES_256', state: 'Enabled', version: 1 });
    assert.equal(lines[1]?.['spec'], 'RSA_2048');
    assert.equal(ok(['key', 'list', '--project', 'nobody']), '');

    for (const ref of [a.key_id, a.key_id.toUpperCase(), a.keyTag, 'alias/orders']) {
      const d = JSON.parse(ok(['key', 'describe', ref, '--project', 'p1'])) as Record<string, unknown>;
      assert.equal(d['key_id'], a.key_id, ref);
      assert.equal(d['keyTag'], a.keyTag);
      assert.equal(d['state'], 'Enabled');
      assert.deepEqual((d['versions'] as Array<Record<string, unknown>>).map((v) => v['version']), [1]);
    }
  });

  it("when the key is another project's or does not exist, then describe says there is no such key, exit 1", () => {
    const c = JSON.parse(ok(['key', 'create', '--project', 'p3', '--alias', 'mine'])) as { key_id: string };
    for (const ref of [c.key_id, 'alias/mine', 'alias/none', '0'.repeat(64)]) {
      const r = cli(['key', 'describe', ref, '--project', 'p4']);
      assert.equal(r.code, 1, ref);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`no key ${ref} in project p4`));
    }
  });
});
