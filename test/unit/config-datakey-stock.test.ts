/** KMS_DATAKEY_STOCK: off unless asked for, 'auto' leaves the seal thread a CPU to spare, and the bounds are enforced. */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load';

const base = { KMS_DATA_DIR: '/tmp/p11kms-config-test', KMS_PIN: '1234' };
const stock = (env: Record<string, string>) => loadConfig({ ...base, ...env }).dataKeyStock;

describe('KMS_DATAKEY_STOCK', () => {
  it('when unset, then 0 (plaintext data keys exist only once asked for)', () => {
    assert.equal(stock({}), 0);
    assert.equal(stock({ KMS_WORKERS: '1' }), 0);
  });

  it('when auto, then 128 when the workers leave a CPU to spare, else 0', () => {
    const spare = availableParallelism() > 1 ? 128 : 0;
    assert.equal(stock({ KMS_DATAKEY_STOCK: 'auto' }), spare);
    assert.equal(stock({ KMS_DATAKEY_STOCK: 'auto', KMS_WORKERS: 'auto' }), 0);
    assert.equal(stock({ KMS_DATAKEY_STOCK: 'auto', KMS_WORKERS: String(availableParallelism()) }), 0);
  });

  it('when a number, then that many, 0 = off, whatever the workers', () => {
    assert.equal(stock({ KMS_DATAKEY_STOCK: '0' }), 0);
    assert.equal(stock({ KMS_DATAKEY_STOCK: '16', KMS_WORKERS: 'auto' }), 16);
  });

  it('when not a whole number or above 4096, then a ConfigError naming the setting', () => {
    for (const v of ['x', '-1', '1.5']) assert.throws(() => stock({ KMS_DATAKEY_STOCK: v }), (e: unknown) => e instanceof ConfigError && e.message.includes('KMS_DATAKEY_STOCK'));
    assert.throws(() => stock({ KMS_DATAKEY_STOCK: '4097' }), (e: unknown) => e instanceof ConfigError && e.message === 'KMS_DATAKEY_STOCK must be a whole number from 0 to 4096');
  });
});
