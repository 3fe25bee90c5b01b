/**
 * GET /openapi.json: a valid OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator)
 * with every route of every dialect's table, the request schemas the routes validate with and an
 * answer schema for each. That every answer of the suite validates against it, and every route is
 * exercised, is checked after the suite by scripts/openapi-check.ts; here, that the check catches
 * a wrong answer, an undocumented status and a route no answer exercised.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { awsApi } from '../../src/api/aws/routes';
import { huaweiApi } from '../../src/api/huawei/routes';
import { ncpApi } from '../../src/api/ncp/routes';
import { documentPath } from '../../src/api/openapi';
import type { Services } from '../../src/api/services';
import { checkRecorded } from '../../scripts/openapi-check';
import { TestServer } from '../helpers/server';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let server: TestServer;
let doc: Json;

before(async () => {
  server = await TestServer.start();
  const r = await server.request('GET', '/openapi.json');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  doc = r.body as Json;
});
after(() => server.stop());

/** The dialects' tables as the fuzz test reads them: the route declarations, with services never called. */
function dialects() {
  const silent = { error() {}, warn() {}, info() {}, debug() {}, enabled: () => false };
  const stub = new Proxy({ log: silent } as Record<string, unknown>, { get: (t, p: string) => t[p] ?? {} }) as unknown as Services;
  return [ncpApi(stub), huaweiApi(stub), awsApi(stub)];
}

/** The schema holder of a request body or response's one media type. */
const firstContent = (o: Json): Json => Object.values(o['content'] as Record<string, Json>)[0]!;

describe('OpenAPI document', () => {
  it('when fetched, then it is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    assert.equal(validator.version, '3.1');
    assert.ok(result.valid, `invalid OpenAPI: ${JSON.stringify(result.errors, null, 2)?.slice(0, 4000)}`);
    assert.equal(doc['openapi'], '3.1.0');
  });

  it('when compared with the route tables, then every route of every dialect is there with its request schemas and an answer schema', () => {
    let n = 0;
    for (const api of dialects()) {
      for (const route of api.routes) {
        const op = doc['paths']?.[documentPath(api, route)]?.[route.method.toLowerCase()] as Json | undefined;
        assert.ok(op, `${api.name} ${route.method} ${route.path} ${route.target ?? ''} is documented`);
        assert.deepEqual(op['tags'], [api.name]);
        if (route.body) assert.deepEqual(firstContent(op['requestBody'])['schema'], JSON.parse(JSON.stringify(route.body)), `${route.operation}: the body schema the route validates with`);
        else assert.equal(op['requestBody'], undefined);
        assert.ok(route.response, `${api.name} ${route.operation} declares its answer`);
        const success = route.response === 'no-content' ? op['responses']['204'] : op['responses']['200'];
        assert.ok(success, `${route.operation}: its success answer`);
        if (route.response !== 'no-content') assert.deepEqual(firstContent(success)['schema'], JSON.parse(JSON.stringify(route.response)));
        for (const status of api.errors.statuses) assert.ok(op['responses'][String(status)]?.['content'], `${route.operation}: error ${status}`);
        if (route.target) assert.deepEqual(op['parameters'].find((p: Json) => p['in'] === 'header'), { name: 'X-Amz-Target', in: 'header', required: true, schema: { type: 'string', const: route.target } });
        n++;
      }
    }
    assert.ok(n > 80, `${n} routes`);
    const ids = Object.values(doc['paths']).flatMap((item) => Object.values(item as Json).map((op) => (op as Json)['operationId']));
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  });

  it('when answers are checked against it, then a wrong body, an undocumented status and an unexercised route fail the check', async () => {
    const token = server.token('oa', true);
    const key = server.key('oa', 'described', 'AES_256');
    const real = await server.request('POST', '/v1.0/oa/kms/describe-key', { headers: { 'X-Auth-Token': token }, body: { key_id: key.key_id } });
    assert.equal(real.status, 200);
    const good = { method: 'POST', path: '/v1.0/oa/kms/describe-key', status: 200, contentType: 'application/json; charset=utf-8', body: real.text };
    const ok = checkRecorded(doc, [good]);
    assert.deepEqual(ok.failures, []);
    assert.equal(ok.checked, 1);
    assert.ok(!ok.unexercised.includes('POST /v1.0/{project_id}/kms/describe-key'));
    assert.ok(ok.unexercised.includes('POST /v1.0/{project_id}/kms/create-datakey'), 'a route with no answer is listed');

    const renamed = real.text.replace('"key_state"', '"state"');
    const bad = checkRecorded(doc, [
      { ...good, body: renamed },
      { ...good, status: 418 },
      { method: 'POST', path: '/', target: 'TrentService.Encrypt', status: 200, contentType: 'application/x-amz-json-1.1', body: '{"KeyId":"nope"}' },
      { method: 'GET', path: '/nowhere', status: 404, contentType: 'application/json', body: '{}' },
    ]);
    assert.equal(bad.failures.length, 3, bad.failures.join('\n'));
    assert.match(bad.failures[0]!, /describe-key -> 200: .*key_state|additional/);
    assert.match(bad.failures[1]!, /status 418 is not documented/);
    assert.match(bad.failures[2]!, /TrentService\.Encrypt/);
    assert.equal(bad.skipped, 1, 'an undocumented path is counted, not checked');
  });
});
