import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { loadConfig } from '../../src/config/load';
import { createServer } from '../../src/transport';

describe('the HTTP server makes requests and responses with the app\'s prototypes (src/api/http-classes.ts)', () => {
  const app = express();
  const seen: boolean[] = [];
  app.get('/x', (req, res) => {
    res.json({ reqApp: req.app === app, resApp: res.app === app, ip: req.ip, path: req.path });
  });
  const server = createServer(app, loadConfig({ KMS_DATA_DIR: '/nonexistent', KMS_PIN: '1234', KMS_PKCS11_MODULE: '/nonexistent.so' }));
  // Runs before Express's own listener: what node:http made, before Express touched it.
  server.prependListener('request', (req, res) => {
    seen.push(Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response);
  });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('when a request comes in, then its objects already have the prototypes Express would set, and Express works on them as usual', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${base}/x?q=1`);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { reqApp: true, resApp: true, ip: '127.0.0.1', path: '/x' });
    }
    assert.deepEqual(seen, [true, true, true]);
  });
});
