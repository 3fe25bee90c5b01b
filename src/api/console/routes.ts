/**
 * The admin console under /console: the page and its files (no token needed: they hold no data),
 * and the read endpoints the page needs that no dialect offers, under /console/api (token header
 * `X-Auth-Token`, `read` scope, the token's own project only, audited as `console:<operation>`
 * and rate-limited like the dialects). Every change the console makes goes through the dialects'
 * own routes, so it obeys their rules and leaves the same audit records.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import type { KeyState } from '../../store/store';
import { verifyAuditFile } from '../../log/audit';
import type { Scope } from '../../kms/api-tokens';
import { authenticate, errorHandler, principalOf, requireScope } from '../http';
import { auditTrail, noteKey } from '../middleware/audit';
import { countFailures } from '../middleware/failed-auth';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import { CONSOLE_CSP, loadAssets, type Asset } from './assets';
import { readAuditRecords, type AuditFilter } from './audit-records';
import { renderConsoleError } from './errors';
import { grantView, keyView, tagView, versionView } from './views';

const KEY_STATES: readonly KeyState[] = ['Enabled', 'Disabled', 'PendingDeletion'];
const PAGE = 500;
/** Most keys the key list answers (the page filters; a bigger project narrows with `q`/`state`). */
const MAX_KEYS = 1000;

/** The query's parameters, refused when one is unknown or given twice. */
function query(req: Request, allowed: readonly string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
  for (const [name, value] of Object.entries(req.query)) {
    if (!allowed.includes(name)) throw badRequest(`Unknown query parameter ${name}.`, { field: name, reason: 'unknown-field' });
    if (typeof value !== 'string' || value.length > 256) throw badRequest(`Invalid query parameter ${name}.`, { field: name, reason: 'invalid' });
    out[name] = value === '' ? undefined : value;
  }
  return out;
}

function isoTime(text: string | undefined, field: string): string | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || !Number.isFinite(t)) throw badRequest(`${field} must be an ISO 8601 time.`, { field, reason: 'invalid' });
  return new Date(t).toISOString();
}

function send(res: Response, asset: Asset | undefined): void {
  if (!asset) throw new KmsError('RouteNotFound', 'Not found.');
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.type(asset.type).send(asset.body);
}

/** Declares the operation (for the audit record) and checks the token's scope before anything runs. */
function operation(name: string, scope: Scope): RequestHandler {
  return (_req, res, next) => {
    res.locals['operation'] = name;
    try {
      requireScope(res, scope);
    } catch (e) {
      next(e);
      return;
    }
    next();
  };
}

type Handler = (req: Request, res: Response) => Promise<unknown>;
const json = (handle: Handler): RequestHandler => (req, res, next) => {
  handle(req, res).then((body) => res.json(body), next);
};

export function consoleRouter(s: Services, edge: Edge = {}): Router {
  const r = Router();
  const assets = loadAssets();
  r.get(['/', '/index.html'], (_req, res) => send(res, assets.page));
  r.get('/assets/:name', (req, res) => send(res, assets.files.get(String(req.params['name']))));

  const api = Router();
  if (edge.audit) api.use(auditTrail(edge.audit, 'console', renderConsoleError, s.log));
  api.use(countFailures(authenticate(s.tokens, 'x-auth-token'), 'console', edge.failedAuth));
  if (edge.mtls) api.use(clientCertProject());
  if (edge.limits) api.use(rateLimit(edge.limits));

  api.get(
    '/session',
    operation('session', 'read'),
    json(async (req, res) => {
      query(req, []);
      const p = principalOf(res);
      return { project: p.projectId, tokenId: p.tokenId, scopes: [...p.scopes] };
    }),
  );

  api.get(
    '/keys',
    operation('list-keys', 'read'),
    json(async (req, res) => {
      const q = query(req, ['q', 'state']);
      if (q['state'] !== undefined && !(KEY_STATES as readonly string[]).includes(q['state'])) {
        throw badRequest('state must be Enabled, Disabled or PendingDeletion.', { field: 'state', reason: 'invalid' });
      }
      const text = q['q']?.toLowerCase();
      const project = principalOf(res).projectId;
      const keys = [];
      let matched = 0;
      let total = 0;
      for (let offset = 0; ; offset += PAGE) {
        const page = await s.keys.list(project, { ...(q['state'] ? { state: q['state'] as KeyState } : {}), offset, limit: PAGE });
        total = page.total;
        for (const k of page.keys) {
          if (text !== undefined && ![k.alias, k.keyId, k.keyTag, k.description].some((f) => f.toLowerCase().includes(text))) continue;
          matched++;
          if (keys.length < MAX_KEYS) keys.push(keyView(k));
        }
        if (page.keys.length < PAGE) break;
      }
      return { keys, matched, total };
    }),
  );

  api.get(
    '/keys/:keyId',
    operation('describe-key', 'read'),
    json(async (req, res) => {
      query(req, []);
      const key = await s.keys.byId(principalOf(res).projectId, String(req.params['keyId']));
      noteKey(res, key);
      return {
        key: keyView(key),
        versions: (await s.keys.versions(key)).map(versionView),
        tags: (await s.keys.tags(key)).map(tagView),
        grants: (await s.keys.grantsOf(key)).map(grantView),
      };
    }),
  );

  api.get(
    '/audit',
    operation('read-audit', 'read'),
    json(async (req, res) => {
      const q = query(req, ['operation', 'keyId', 'outcome', 'from', 'to', 'limit']);
      if (q['outcome'] !== undefined && q['outcome'] !== 'success' && q['outcome'] !== 'failure') {
        throw badRequest('outcome must be success or failure.', { field: 'outcome', reason: 'invalid' });
      }
      const limit = q['limit'] === undefined ? 200 : Number(q['limit']);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest('limit must be an integer 1-1000.', { field: 'limit', reason: 'invalid' });
      const filter: AuditFilter = {
        project: principalOf(res).projectId,
        limit,
        ...(q['operation'] !== undefined ? { operation: q['operation'] } : {}),
        ...(q['keyId'] !== undefined ? { keyId: q['keyId'] } : {}),
        ...(q['outcome'] !== undefined ? { outcome: q['outcome'] as 'success' | 'failure' } : {}),
        ...(q['from'] !== undefined ? { from: isoTime(q['from'], 'from')! } : {}),
        ...(q['to'] !== undefined ? { to: isoTime(q['to'], 'to')! } : {}),
      };
      if (!s.auditTrail) return { records: [], files: [] };
      return readAuditRecords(s.auditTrail.files(), filter);
    }),
  );

  api.get(
    '/audit/verify',
    operation('verify-audit', 'read'),
    json(async (req) => {
      query(req, []);
      if (!s.auditTrail) return { ok: true, files: [] };
      const files = [];
      // The check of `npx p11kms audit verify`: chain and the token's MACs, file by file.
      for (const file of s.auditTrail.files()) files.push({ file: file.slice(file.lastIndexOf('/') + 1), ...(await verifyAuditFile(file, { key: s.auditTrail.key })) });
      return { ok: files.every((f) => f.ok), files };
    }),
  );

  api.get(
    '/hsm',
    operation('hsm-status', 'read'),
    json(async (req) => {
      query(req, []);
      const healthy = await s.healthy();
      return {
        ...(s.hsmStatus ? s.hsmStatus() : {}),
        health: { ok: healthy, ...(healthy ? {} : { reason: s.healthReason?.() ?? 'no working HSM session' }), checkedAt: Date.now() },
      };
    }),
  );

  api.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'Not found.')));
  api.use(errorHandler(renderConsoleError, s.log));
  r.use('/api', api);
  r.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'Not found.')));
  r.use(errorHandler(renderConsoleError, s.log));
  return r;
}
