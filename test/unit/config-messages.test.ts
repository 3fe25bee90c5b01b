/** A wrong setting is answered with the variable and what it accepts, never a schema dump or the value. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load';

function refusal(env: Record<string, string>): string {
  try {
    loadConfig({ KMS_PIN: 'pin-that-must-not-show', ...env });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(!e.message.includes('pin-that-must-not-show'));
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

describe('configuration errors', () => {
  it('when a setting has a value it does not accept, then the message names the variable and the values it accepts', () => {
    assert.equal(refusal({ KMS_LOG_LEVEL: 'verbose' }), 'KMS_LOG_LEVEL must be one of error, warn, info, debug');
    assert.equal(refusal({ KMS_POOL_SIZE: '1000' }), 'KMS_POOL_SIZE must be a whole number from 1 to 256');
    assert.equal(refusal({ PORT: '70000' }), 'PORT must be a whole number from 0 to 65535');
    assert.equal(refusal({ KMS_TOKEN_LABEL: 'x'.repeat(33) }), 'KMS_TOKEN_LABEL must be 1-32 characters');
    assert.equal(refusal({ KMS_ACCESS_LOG: 'maybe' }), 'KMS_ACCESS_LOG must be one of true, false, on, off, 1, 0');
    assert.equal(refusal({ KMS_WORKERS: 'many' }), 'KMS_WORKERS must be a whole number or auto');
    assert.match(refusal({ KMS_LOG_LEVEL: 'verbose', KMS_POOL_SIZE: '0' }), /^KMS_LOG_LEVEL must be one of .*; KMS_POOL_SIZE must be a whole number from 1 to 256$/);
  });

  it('when KMS_ACCESS_LOG is off or on, then the access log follows it (on by default)', () => {
    assert.equal(loadConfig({ KMS_PIN: '1' }).accessLog, true);
    assert.equal(loadConfig({ KMS_PIN: '1', KMS_ACCESS_LOG: 'off' }).accessLog, false);
    assert.equal(loadConfig({ KMS_PIN: '1', KMS_ACCESS_LOG: 'on' }).accessLog, true);
  });
});
