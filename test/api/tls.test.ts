/** Transport: HTTPS from files, mTLS bound to the token's project, no plain HTTP off loopback, headers. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Secrets } from '../helpers/secrets';
import { TestServer } from '../helpers/server';

const dir = mkdtempSync(path.join(tmpdir(), 'p11kms-tls-'));
const file = (name: string) => path.join(dir, name);
const secrets = new Secrets();

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate with subject CN `cn`, signed by the test CA. */
function issue(name: string, cn: string, ext: string): void {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  writeFileSync(file(`${name}.ext`), ext);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, p: string, headers: Record<string, string>, client?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: 'GET',
        headers,
        ca: readFileSync(file('ca.pem')),
        agent: false,
        ...(client ? { cert: readFileSync(file(`${client}.pem`)), key: readFileSync(file(`${client}.key`)) } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const portOf = (s: TestServer): number => Number(new URL(s.url).port);

before(() => {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=p11kms test CA');
  issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('p1', 'p1', 'extendedKeyUsage=clientAuth\n');
  issue('p2', 'p2', 'extendedKeyUsage=clientAuth\n');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS', () => {
  let server: TestServer;
  let token = '';
  before(async () => {
    server = await TestServer.start({ KMS_TLS_CERT: file('server.pem'), KMS_TLS_KEY: file('server.key'), HOST: '0.0.0.0' });
    token = server.token('p1', true);
    secrets.add(token);
  });
  after(async () => {
    await server?.stop();
  });

  it('when KMS_TLS_CERT and KMS_TLS_KEY are set, then the service speaks HTTPS on any host, echoes request ids and sets security headers', async () => {
    const r = await get(portOf(server), '/kms/v1/keys', { 'x-ncp-ocapi-token': token, 'x-request-id': 'tls-1' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-request-id'], 'tls-1');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['x-powered-by'], undefined);
  });

  it('when a plain HTTP request reaches the HTTPS port, then it gets no answer from the API', async () => {
    let status = 0;
    try {
      const res = await fetch(`http://127.0.0.1:${portOf(server)}/kms/v1/keys`, { headers: { 'x-ncp-ocapi-token': token } });
      status = res.status;
    } catch {
      status = -1;
    }
    assert.notEqual(status, 200);
  });

  it('when a request fails, then the error body has no stack trace', async () => {
    const r = await server.request('GET', '/healthz').catch(() => undefined);
    assert.equal(r, undefined, 'the test client speaks plain HTTP: it must not get through');
    const bad = await get(portOf(server), '/kms/v1/keys/zz', { 'x-ncp-ocapi-token': token });
    assert.ok(bad.status >= 400 && bad.status < 500);
    assert.doesNotMatch(bad.body, /\bat .*\.js:\d+/);
  });

  it('then nothing secret was logged', () => {
    secrets.assertNotLogged(server);
  });
});

describe('mTLS', () => {
  let server: TestServer;
  let p1 = '';
  before(async () => {
    server = await TestServer.start({ KMS_TLS_CERT: file('server.pem'), KMS_TLS_KEY: file('server.key'), KMS_TLS_CA: file('ca.pem') });
    p1 = server.token('p1', true);
    secrets.add(p1);
  });
  after(async () => {
    await server?.stop();
  });

  it('when the client presents no certificate, then the connection is refused', async () => {
    await assert.rejects(get(portOf(server), '/kms/v1/keys', { 'x-ncp-ocapi-token': p1 }));
  });

  it('when the certificate\'s CN is the token\'s project, then the request is served', async () => {
    const r = await get(portOf(server), '/kms/v1/keys', { 'x-ncp-ocapi-token': p1 }, 'p1');
    assert.equal(r.status, 200, r.body);
    const h = await get(portOf(server), '/v1.0/p1/kms/list-keys', { 'x-auth-token': p1 }, 'p1');
    assert.notEqual(h.status, 403);
  });

  it('when a certificate of another project carries the token, then 403 in each dialect', async () => {
    const r = await get(portOf(server), '/kms/v1/keys', { 'x-ncp-ocapi-token': p1 }, 'p2');
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).code, 'FORBIDDEN');
    const h = await get(portOf(server), '/v1.0/p1/kms/list-keys', { 'x-auth-token': p1 }, 'p2');
    assert.equal(h.status, 403);
    assert.equal(JSON.parse(h.body).error.error_code, 'KMS.0306');
  });

  it('then nothing secret was logged', () => {
    secrets.assertNotLogged(server);
  });
});

describe('plain HTTP', () => {
  it('when HOST is not loopback and there is no TLS, then the service refuses to start', async () => {
    await assert.rejects(TestServer.start({ HOST: '0.0.0.0' }), /not a loopback address/);
  });

  it('when KMS_ALLOW_PLAIN_HTTP=true, then it starts on a non-loopback host', async () => {
    const s = await TestServer.start({ HOST: '0.0.0.0', KMS_ALLOW_PLAIN_HTTP: 'true' });
    try {
      assert.equal((await s.request('GET', '/livez')).status, 200);
    } finally {
      await s.stop();
    }
  });

  it('when only one of KMS_TLS_CERT and KMS_TLS_KEY is set, then the service refuses to start', async () => {
    await assert.rejects(TestServer.start({ KMS_TLS_CERT: file('server.pem') }), /go together/);
  });
});
