/**
 * scripts/setup.sh builds only when something changed (a second `npm start` skips tsc), and a
 * dist/ that was changed behind tsc's back is rebuilt whole: a deleted output comes back and an
 * output whose source is gone is removed. Run on a copy of the repository, so the suite's own
 * dist/ is never touched.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '../helpers/server';

let copy = '';

function setupLog(): string {
  const r = spawnSync('bash', ['scripts/setup.sh', '--no-token'], { cwd: copy, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

before(() => {
  copy = mkdtempSync(path.join(tmpdir(), 'p11kms-setup-'));
  // dist/ too, with its stamp and tsc's build info: the copy starts where the suite's build is.
  for (const item of ['src', 'test', 'scripts', 'console', 'hsm-config', 'tsconfig.json', 'package.json', 'package-lock.json', 'dist']) {
    cpSync(path.join(ROOT, item), path.join(copy, item), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  // The copy shares the suite's node_modules: its set-up must never run `npm ci` through the link.
  // (A second older than the install: utimes rounds to the millisecond, maybe up.)
  const installed = new Date(statSync(path.join(ROOT, 'node_modules/.package-lock.json')).mtimeMs - 1000);
  utimesSync(path.join(copy, 'package-lock.json'), installed, installed);
});
after(() => rmSync(copy, { recursive: true, force: true }));

describe('scripts/setup.sh build step', () => {
  it('when nothing changed since the last build, then it does not run tsc; when dist/ was changed behind its back, then it rebuilds it whole', () => {
    setupLog(); // builds only if the suite's dist/ was not built by setup.sh
    assert.ok(existsSync(path.join(copy, 'dist/src/main.js')));
    assert.doesNotMatch(setupLog(), /building/);

    rmSync(path.join(copy, 'dist/src/cli.js'));
    writeFileSync(path.join(copy, 'dist/test/stale.test.js'), 'throw new Error("a test whose source is gone")\n');
    assert.match(setupLog(), /building \(tsc\)/);
    assert.ok(existsSync(path.join(copy, 'dist/src/cli.js')), 'a deleted output is emitted again');
    assert.ok(!existsSync(path.join(copy, 'dist/test/stale.test.js')), 'an output without a source is removed');
    assert.doesNotMatch(setupLog(), /building/);

    appendFileSync(path.join(copy, 'src/cli.ts'), '\n// changed\n');
    assert.match(setupLog(), /building \(tsc\)/);
    assert.doesNotMatch(setupLog(), /building/);
  });
});
