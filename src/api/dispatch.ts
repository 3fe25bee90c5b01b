/**
 * The one route table and dispatcher of every dialect. A dialect declares its routes as data
 * (method, path below its mount, an optional target header value, operation name, token scope,
 * request schemas, handler); the dispatcher is built once from them and finds a request's route by
 * one walk down a tree of path segments, so no route layer is walked per path. The same table feeds
 * the docs and the fuzz test (`describeRoutes`).
 *
 * Paths match as Express matched them: literal segments without ASCII case, `:name` segments
 * percent-decoded, one optional trailing slash, no empty segment; a literal beats a parameter.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Scope } from '../kms/api-tokens';
import { inFlight } from '../in-flight';
import { jsonBody, requireScope } from './http';
import { compile } from './validate';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What a handler receives besides req/res: the body and query, already checked by the route's schemas. */
export interface Input<B, Q> {
  readonly body: B;
  readonly query: Q;
  readonly params: Readonly<Record<string, string>>;
}

export interface RouteDef<B extends TSchema | undefined, Q extends TSchema | undefined> {
  readonly method: Method;
  /** Below the dialect's mount, with `:name` parameters (`/keys/:keyTag/encrypt`). */
  readonly path: string;
  /** For dialects that name the operation in a header (AWS `X-Amz-Target`): that header's value. */
  readonly target?: string;
  /** The operation's name: audit records, grants and docs use it. */
  readonly operation: string;
  readonly scope: Scope;
  /** The request body's schema; absent: the body is not read into the handler's input. */
  readonly body?: B;
  readonly query?: Q;
  /**
   * The success answer's body (the dialect's responses.ts), or `no-content` for a 204: the OpenAPI
   * document publishes it and the suite checks every answer against it.
   */
  readonly response?: TSchema | 'no-content';
  /** Checks that must run on the raw body before its schema (a vendor's finer codes for some fields). */
  readonly precheck?: (raw: unknown) => void;
  readonly handle: (input: Input<B extends TSchema ? Static<B> : undefined, Q extends TSchema ? Static<Q> : undefined>, req: Request, res: Response) => unknown;
}

/** A route as the table holds it: what it declares, and `run` (schemas checked, then the handler). */
export interface Route {
  readonly method: Method;
  readonly path: string;
  readonly target?: string;
  readonly operation: string;
  readonly scope: Scope;
  readonly body?: TSchema;
  readonly query?: TSchema;
  readonly response?: TSchema | 'no-content';
  readonly run: (req: Request, res: Response, params: Readonly<Record<string, string>>) => unknown;
}

export function route<B extends TSchema | undefined = undefined, Q extends TSchema | undefined = undefined>(def: RouteDef<B, Q>): Route {
  const checkBody = def.body ? compile(def.body) : undefined;
  const checkQuery = def.query ? compile(def.query) : undefined;
  type In = Input<B extends TSchema ? Static<B> : undefined, Q extends TSchema ? Static<Q> : undefined>;
  return {
    method: def.method,
    path: def.path,
    ...(def.target === undefined ? {} : { target: def.target }),
    operation: def.operation,
    scope: def.scope,
    ...(def.body ? { body: def.body } : {}),
    ...(def.query ? { query: def.query } : {}),
    ...(def.response ? { response: def.response } : {}),
    run: (req, res, params) => {
      def.precheck?.(req.body);
      const body: unknown = checkBody ? checkBody(req.body) : undefined;
      // Express 5's req.query is a getter over a parsed object: copied so the schema sees a plain one.
      const query: unknown = checkQuery ? checkQuery({ ...(req.query as Record<string, unknown>) }) : undefined;
      return def.handle({ body, query, params } as In, req, res);
    },
  };
}

/** Lower-case ASCII only, as a case-insensitive Express route matched its ASCII path. */
export const asciiLower = (text: string): string => (/^[\x00-\x7f]*$/.test(text) ? text.toLowerCase() : text);

interface Node {
  readonly literals: Map<string, Node>;
  param?: { readonly name: string; readonly node: Node };
  /** Routes ending here, by method; by target when the dialect names operations in a header. */
  readonly routes: Map<Method, Route | Map<string, Route>>;
}

const newNode = (): Node => ({ literals: new Map(), routes: new Map() });

function segmentsOf(path: string): string[] | undefined {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (p === '/') return [];
  const segs = p.slice(1).split('/');
  return segs.includes('') ? undefined : segs;
}

function build(routes: readonly Route[]): Node {
  const root = newNode();
  for (const r of routes) {
    let node = root;
    for (const seg of segmentsOf(r.path) ?? []) {
      if (seg.startsWith(':')) {
        const name = seg.slice(1);
        if (node.param && node.param.name !== name) throw new Error(`route ${r.path}: parameter :${name} clashes with :${node.param.name}`);
        node.param ??= { name, node: newNode() };
        node = node.param.node;
      } else {
        const key = asciiLower(seg);
        let next = node.literals.get(key);
        if (!next) node.literals.set(key, (next = newNode()));
        node = next;
      }
    }
    const here = node.routes.get(r.method);
    if (r.target === undefined) {
      if (here) throw new Error(`route ${r.method} ${r.path} is declared twice`);
      node.routes.set(r.method, r);
    } else {
      const byTarget = here instanceof Map ? here : new Map<string, Route>();
      if (here && !(here instanceof Map)) throw new Error(`route ${r.method} ${r.path} has both a target and none`);
      if (byTarget.has(r.target)) throw new Error(`route ${r.method} ${r.path} ${r.target} is declared twice`);
      byTarget.set(r.target, r);
      node.routes.set(r.method, byTarget);
    }
  }
  return root;
}

/** The node a path ends at and its raw parameters; literal segments are tried before a parameter. */
function find(node: Node, segs: readonly string[], i: number, raw: Array<[string, string]>): Node | undefined {
  if (i === segs.length) return node.routes.size > 0 ? node : undefined;
  const seg = segs[i]!;
  const lit = node.literals.get(asciiLower(seg));
  const viaLiteral = lit && find(lit, segs, i + 1, raw);
  if (viaLiteral) return viaLiteral;
  if (!node.param) return undefined;
  raw.push([node.param.name, seg]);
  const viaParam = find(node.param.node, segs, i + 1, raw);
  if (!viaParam) raw.pop();
  return viaParam;
}

export interface DispatchOptions {
  /** The dialect's mount as a path template (`/v1.0/{project_id}/kms`): routes' templates in access lines and metrics. */
  readonly mount: string;
  /** A path that is a route's with another method: passed on (`next`, the dialect's not-found) or answered 405. */
  readonly wrongMethod: 'next' | 'method-not-allowed';
  /** The header that names the operation for routes with a `target`. */
  readonly targetHeader?: string;
  /** The error for a route's path with the wrong method (when wrongMethod is `method-not-allowed`). */
  readonly methodNotAllowed?: () => Error;
}

const routeBody = jsonBody();

/**
 * Runs a route: the operation is declared and the scope checked before the body is read, so a
 * refused request changes nothing; a thrown error or rejected promise goes to `next`.
 */
function runRoute(route: Route, template: string, params: Readonly<Record<string, string>>, req: Request, res: Response, next: NextFunction): void {
  res.locals['operation'] = route.operation;
  res.locals['route'] = template;
  try {
    requireScope(res, route.scope);
  } catch (e) {
    next(e);
    return;
  }
  routeBody(req, res, (err?: unknown) => {
    if (err) {
      next(err);
      return;
    }
    try {
      const ret = route.run(req, res, params);
      if (ret instanceof Promise) {
        inFlight.track(ret);
        ret.catch((e: unknown) => next(e ?? new Error('Rejected promise')));
      }
    } catch (e) {
      next(e);
    }
  });
}

/** Express middleware that answers every route of `routes` and passes anything else on. */
export function dispatcher(routes: readonly Route[], opts: DispatchOptions): RequestHandler {
  const root = build(routes);
  const templates = new Map(routes.map((r) => [r, routeTemplate(opts.mount, r.path)]));
  return (req, res, next) => {
    const segs = segmentsOf(req.path);
    const raw: Array<[string, string]> = [];
    const node = segs && find(root, segs, 0, raw);
    if (!node) {
      next();
      return;
    }
    // The path is a route's (whatever the method): its parameters decode or the request is refused.
    const params: Record<string, string> = {};
    try {
      for (const [name, value] of raw) params[name] = value.includes('%') ? decodeURIComponent(value) : value;
    } catch (e) {
      next(e);
      return;
    }
    const method = req.method as Method;
    const entry = node.routes.get(method) ?? (req.method === 'HEAD' ? node.routes.get('GET') : undefined);
    let found: Route | undefined;
    if (entry instanceof Map) {
      const target = opts.targetHeader ? req.get(opts.targetHeader) : undefined;
      found = target === undefined ? undefined : entry.get(target);
      if (!found) {
        next();
        return;
      }
    } else {
      found = entry;
    }
    if (!found) {
      if (opts.wrongMethod === 'next' || !opts.methodNotAllowed) {
        next();
        return;
      }
      const refuse = opts.methodNotAllowed;
      // A body that doesn't parse is reported first, as when every request's body was read up front.
      routeBody(req, res, (err?: unknown) => next(err ?? refuse()));
      return;
    }
    // Kept for the mount's own parameters (Huawei's project_id) and for middleware that reads req.params.
    req.params = Object.assign(req.params ?? {}, params);
    runRoute(found, templates.get(found) ?? '', params, req, res, next);
  };
}

/** A route's full path as a template: `:name` segments become `{name}` (OpenAPI's form). */
export function routeTemplate(mount: string, path: string): string {
  const full = `${mount}${path === '/' && mount !== '' ? '' : path}`;
  return full.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/** Each route's method, path and target (with `ALL` for paths that answer 405 to other methods), for the fuzz test and docs. */
export function describeRoutes(routes: readonly Route[], opts: Pick<DispatchOptions, 'wrongMethod'>): Array<{ method: string; path: string; target?: string }> {
  const out: Array<{ method: string; path: string; target?: string }> = routes.map((r) => ({ method: r.method, path: r.path, ...(r.target ? { target: r.target } : {}) }));
  if (opts.wrongMethod === 'method-not-allowed') for (const path of new Set(routes.map((r) => r.path))) out.push({ method: 'ALL', path });
  return out;
}
