/**
 * The OpenAPI 3.1 document of every dialect, generated from the route tables (dispatch.ts): each
 * route's path, method, operation and scope, the request schemas it validates with, the answer
 * schema it declares (the dialect's responses.ts) and the dialect's error shape (errors.ts). Served
 * at GET /openapi.json, so it can't drift from what the routes do.
 *
 * AWS names its operations in the X-Amz-Target header of `POST /`, and an OpenAPI path item has one
 * POST: each target gets a path item of its own, `/#X-Amz-Target=TrentService.<Op>` (the fragment is
 * dropped by HTTP clients, so a tool's "try it" still posts to `/`), whose X-Amz-Target header
 * parameter is that one value.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import type { RequestHandler } from 'express';
import { PACKAGE_ROOT } from '../config/package-root';
import { routeTemplate, type Route } from './dispatch';

/** What the document needs to know of a dialect besides its route table. */
export interface DialectApi {
  /** `ncp`, `huawei`, `aws`: the tag and the operation ids' prefix. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  /** The mount as a path template (DispatchOptions.mount). */
  readonly mount: string;
  readonly routes: readonly Route[];
  /** How a request authenticates: a token in a header, or AWS SigV4 in Authorization. */
  readonly auth: { readonly header: string; readonly description: string };
  /** The error body and the statuses it is sent with (errors.ts). */
  readonly errors: { readonly statuses: readonly number[]; readonly body: TSchema };
  /** The header naming the operation, for routes with a `target`. */
  readonly targetHeader?: string;
  /** The media type of request and success bodies (default application/json); errors are application/json. */
  readonly mediaType?: string;
}

type Json = Record<string, unknown>;

const JSON_TYPE = 'application/json';
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Not authenticated',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict with the key\'s state',
  413: 'Body too large',
  422: 'Not possible in the key\'s state',
  429: 'Rate limited',
  500: 'Internal error',
  503: 'Token or store unavailable (Retry-After)',
};

/** A TypeBox schema as plain JSON Schema (TypeBox's own markers are symbols, dropped here). */
const plain = (schema: TSchema): Json => JSON.parse(JSON.stringify(schema)) as Json;

/** The document path of a route: its template, or for a header-named operation, one path per target. */
export function documentPath(api: Pick<DialectApi, 'mount' | 'targetHeader'>, route: Pick<Route, 'path' | 'target'>): string {
  const p = routeTemplate(api.mount, route.path);
  return route.target === undefined ? p : `${p}#${api.targetHeader ?? 'target'}=${route.target}`;
}

function pathParameters(template: string): Json[] {
  return [...template.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
}

function queryParameters(query: TSchema | undefined): Json[] {
  if (!query) return [];
  const q = plain(query);
  const required = new Set((q['required'] as string[] | undefined) ?? []);
  return Object.entries((q['properties'] as Record<string, Json> | undefined) ?? {}).map(([name, schema]) => ({ name, in: 'query', required: required.has(name), schema }));
}

function operationOf(api: DialectApi, route: Route, operationId: string, errorRef: string): Json {
  const media = api.mediaType ?? JSON_TYPE;
  const responses: Json = {};
  if (route.response === 'no-content') responses['204'] = { description: 'Done (no body)' };
  else if (route.response) responses['200'] = { description: 'Success', content: { [media]: { schema: plain(route.response) } } };
  for (const status of api.errors.statuses) {
    responses[String(status)] = {
      description: STATUS_TEXT[status] ?? 'Error',
      ...(status === 503 || status === 429 ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } } } : {}),
      content: { [JSON_TYPE]: { schema: { $ref: errorRef } } },
    };
  }
  const template = routeTemplate(api.mount, route.path);
  const parameters = [
    ...pathParameters(template),
    ...queryParameters(route.query),
    ...(route.target !== undefined && api.targetHeader ? [{ name: api.targetHeader, in: 'header', required: true, schema: { type: 'string', const: route.target } }] : []),
  ];
  return {
    operationId,
    tags: [api.name],
    summary: route.target ?? route.operation,
    description: `Operation \`${route.operation}\` (audit records, grants); token scope \`${route.scope}\`.`,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body ? { requestBody: { required: route.method === 'POST' || route.method === 'PUT', content: { [media]: { schema: plain(route.body) } } } } : {}),
    responses,
    security: [{ [api.name]: [] }],
  };
}

/** The service's own routes, outside the dialects. */
function servicePaths(): Record<string, Json> {
  const status = (props: Json, required: string[]) => ({ type: 'object', properties: props, required, additionalProperties: false });
  const json = (description: string, schema: Json) => ({ description, content: { [JSON_TYPE]: { schema } } });
  return {
    '/livez': {
      get: {
        operationId: 'livez',
        tags: ['service'],
        summary: 'Liveness: the process answers HTTP (no token call)',
        responses: { '200': json('Live', status({ status: { const: 'live' } }, ['status'])) },
      },
    },
    '/healthz': {
      get: {
        operationId: 'healthz',
        tags: ['service'],
        summary: 'Readiness: a token session works',
        responses: {
          '200': json('Ready', status({ status: { const: 'ok' } }, ['status'])),
          '503': {
            ...json('Not ready', status({ status: { const: 'unavailable' }, reason: { type: 'string' } }, ['status', 'reason'])),
            headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } },
          },
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        tags: ['service'],
        summary: 'This document',
        responses: { '200': json('The OpenAPI 3.1 document', { type: 'object', required: ['openapi', 'paths'] }) },
      },
    },
  };
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

export function openApiDocument(dialects: readonly DialectApi[]): Json {
  const paths: Record<string, Json> = servicePaths();
  const schemas: Json = {};
  const securitySchemes: Json = {};
  const ids = new Set<string>();
  for (const api of dialects) {
    const errorName = `${api.name}Error`;
    schemas[errorName] = plain(api.errors.body);
    securitySchemes[api.name] = { type: 'apiKey', in: 'header', name: api.auth.header, description: api.auth.description };
    for (const route of api.routes) {
      let id = `${api.name}_${route.operation}`;
      for (let n = 2; ids.has(id); n++) id = `${api.name}_${route.operation}_${n}`;
      ids.add(id);
      const item = (paths[documentPath(api, route)] ??= {});
      item[route.method.toLowerCase()] = operationOf(api, route, id, `#/components/schemas/${errorName}`);
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'p11kms',
      version: packageVersion(),
      description: 'A KMS whose master keys live in a PKCS#11 token, speaking the NCP, Huawei Cloud and AWS KMS dialects over the same keys. Generated from the route tables; see docs/api/.',
    },
    tags: [...dialects.map((d) => ({ name: d.name, description: `${d.title}: ${d.description}` })), { name: 'service', description: 'Health and this document' }],
    paths,
    components: { schemas, securitySchemes },
  };
}

/** GET /openapi.json: the document, built on first request from the dialects' tables. */
export function openApiHandler(dialects: () => readonly DialectApi[]): RequestHandler {
  let text: string | undefined;
  return (_req, res) => {
    text ??= JSON.stringify(openApiDocument(dialects()));
    res.type('application/json').send(text);
  };
}
