/**
 * Permanent token errors end the server at start with one line naming the cause: a rejected PIN
 * (tried once: netshim's trace counts the logins), a module that won't load, a label that isn't
 * there (with the labels that are). On both ways of calling the token: inline (softhsm2) and on
 * session threads (generic).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { throughNetshim } from '../helpers/netshim';
import { TestServer } from '../helpers/server';

/** The server's exit: its code and the lines it logged at level error. */
async function startFails(env: Record<string, string>, envFor?: (dataDir: string) => Record<string, string>): Promise<{ code: string; errors: string[] }> {
  try {
    const s = await TestServer.start(env, undefined, envFor ? { envFor } : {});
    await s.stop();
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    const m = /^server exited with (\S+):\n([\s\S]*)$/.exec(text);
    assert.ok(m, text);
    return { code: m[1]!, errors: m[2]!.split('\n').filter((l) => /"level":"error"/.test(l)) };
  }
  throw new Error('the server started');
}

for (const profile of ['softhsm2', 'generic'] as const) {
  describe(`permanent token errors at start (${profile})`, () => {
    it('when the PIN is wrong, then the process exits at once with one line naming it, after a single login attempt', async () => {
      let trace = '';
      const { code, errors } = await startFails({ KMS_TOKEN_PROFILE: profile }, (dataDir) => {
        trace = path.join(dataDir, 'logins');
        // After the dev token was made (its script would take KMS_PIN for the token's PIN).
        return { ...throughNetshim(dataDir, { delayUs: 0, trace }), KMS_PIN: 'not-the-pin' };
      });
      assert.equal(code, '1');
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0]!, /CKR_PIN_INCORRECT/);
      assert.ok(!errors[0]!.includes('not-the-pin'));
      const logins = existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n') : [];
      assert.deepEqual(logins, ['C_Login rv=0xa0'], 'one login attempt, rejected');
    });

    it('when the module file is missing, then the process exits with one line naming its path', async () => {
      const missing = `/nonexistent/p11kms-test/lib${profile === 'softhsm2' ? 'softhsm2' : 'vendor'}.so`;
      const { code, errors } = await startFails({ KMS_TOKEN_PROFILE: profile, KMS_PKCS11_MODULE: missing, KMS_PIN: '1234' });
      assert.equal(code, '1');
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.ok(errors[0]!.includes(missing), errors[0]);
    });

    it('when no token has the label, then the process exits with one line naming the label and the labels present', async () => {
      const { code, errors } = await startFails({ KMS_TOKEN_PROFILE: profile }, (dataDir) => ({
        ...throughNetshim(dataDir, { delayUs: 0 }),
        KMS_TOKEN_LABEL: 'p11kms-absent',
      }));
      assert.equal(code, '1');
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0]!, /p11kms-absent/);
      assert.match(errors[0]!, /'p11kms-dev'/);
    });
  });
}
