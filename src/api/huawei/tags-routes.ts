/**
 * Huawei key tags: `POST /kms/{key_id}/tags`, `POST /kms/{key_id}/tags/action`,
 * `DELETE /kms/{key_id}/tags/{key}`, `GET /kms/{key_id}/tags`, `GET /kms/tags`. Changes answer
 * 204 with no body (as the vendor documents) and need the admin scope; reads the read scope.
 */
import type { Request, Response, Router } from 'express';
import { KmsError } from '../../errors/kms-error';
import { MAX_TAGS_PER_KEY } from '../../kms/keys';
import type { KeyRecord, Tag } from '../../store/store';
import type { Scope } from '../../kms/api-tokens';
import { jsonBody, operation, principalOf } from '../http';
import { noteKey } from '../middleware/audit';
import type { Services } from '../services';
import { compile } from '../validate';
import { invalid, notPendingDeletion } from './common';
import { AddTagBody, TagActionBody } from './schemas';

const validateAddTag = compile(AddTagBody);
const validateTagAction = compile(TagActionBody);

const KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;
const MAX_TAG_KEY_CHARS = 36;
const MAX_TAG_VALUE_CHARS = 43;
/** ASCII 0-31 and `*<>\=` are refused in tag keys and values. */
const FORBIDDEN = /[\u0000-\u001f*<>\\=]/;

const chars = (s: string): number => [...s].length;

function checkTagKey(k: unknown, field: string): string {
  if (typeof k !== 'string') throw invalid(field, 'KMS.0406', 'Invalid tag key.');
  if (chars(k) < 1 || chars(k) > MAX_TAG_KEY_CHARS) throw invalid(field, 'KMS.0411', 'Invalid tag key length.');
  if (FORBIDDEN.test(k)) throw invalid(field, 'KMS.0406', 'Invalid tag key.');
  return k;
}

function checkTagValue(v: unknown, field: string, required: boolean): void {
  if (v === undefined && !required) return;
  if (typeof v !== 'string') throw invalid(field, 'KMS.0405', 'Invalid tag value.');
  if (chars(v) > MAX_TAG_VALUE_CHARS) throw invalid(field, 'KMS.0410', 'Invalid tag value length.');
  if (FORBIDDEN.test(v)) throw invalid(field, 'KMS.0405', 'Invalid tag value.');
}

function checkTag(t: unknown, field: string, valueRequired: boolean): void {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw invalid(field, 'KMS.0414', 'Invalid tags.');
  const o = t as Record<string, unknown>;
  checkTagKey(o['key'], field);
  checkTagValue(o['value'], field, valueRequired);
}

/**
 * The vendor's fine-grained tag codes, checked on the raw body before the schema (which then
 * only finds what these don't name: unknown fields, a missing `tag`/`tags`, a bad `action`).
 */
function precheckTags(raw: unknown, mode: 'single' | 'batch'): void {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return;
  const body = raw as Record<string, unknown>;
  if (mode === 'single') {
    if (body['tag'] !== undefined) checkTag(body['tag'], 'tag', true);
    return;
  }
  const tags = body['tags'];
  if (tags === undefined) return;
  if (!Array.isArray(tags)) throw invalid('tags', 'KMS.0412', 'Invalid tag list.');
  if (tags.length === 0) throw invalid('tags', 'KMS.0401', 'Tag list cannot be empty.');
  if (tags.length > MAX_TAGS_PER_KEY) throw invalid('tags', 'KMS.0407', 'Invalid tag list size.');
  const seen = new Set<unknown>();
  for (const t of tags) {
    checkTag(t, 'tags', body['action'] !== 'delete');
    const k = (t as Record<string, unknown>)['key'];
    if (seen.has(k)) throw invalid('tags', 'KMS.0412', 'Invalid tag list.');
    seen.add(k);
  }
}

function param(req: Request, name: string): string {
  const v: unknown = req.params[name];
  return typeof v === 'string' ? v : '';
}

type Handler = (req: Request, res: Response) => Promise<void> | void;

/** A route as registered: method (`ALL` for the 405 answers) and path. */
export interface RouteInfo {
  readonly method: string;
  readonly path: string;
}

/** Registers the tag routes on `r`; returns them (for the fuzz test's list of every route). */
export function tagRoutes(s: Services, r: Router): RouteInfo[] {
  const registered: RouteInfo[] = [];
  const pathKey = async (req: Request, res: Response): Promise<KeyRecord> => {
    const keyId = param(req, 'key_id');
    if (!KEY_ID.test(keyId)) throw invalid('key_id', 'KMS.0205', 'Invalid key ID.');
    const op: unknown = res.locals['operation'];
    const key = await s.keys.forOperation(principalOf(res).projectId, { keyId }, typeof op === 'string' ? op : '');
    noteKey(res, key);
    return key;
  };

  // The scope is checked before the body is read.
  const body = jsonBody();
  const route = (method: 'get' | 'post' | 'delete', path: string, name: string, scope: Scope, handle: Handler) => {
    r[method](path, operation(name, scope), body, async (req, res) => {
      await handle(req, res);
    });
    registered.push({ method: method.toUpperCase(), path });
  };

  route('get', '/tags', 'list-project-tags', 'read', async (_req, res) => {
    res.json({ tags: await s.keys.projectTags(principalOf(res).projectId) });
  });

  route('get', '/:key_id/tags', 'list-key-tags', 'read', async (req, res) => {
    const tags = await s.keys.tags(await pathKey(req, res));
    res.json({ tags: tags.map((t) => ({ key: t.key, value: t.value })), existTagsNum: tags.length });
  });

  route('post', '/:key_id/tags', 'create-key-tag', 'admin', async (req, res) => {
    precheckTags(req.body, 'single');
    const body = validateAddTag(req.body);
    const key = await pathKey(req, res);
    notPendingDeletion(key);
    await s.keys.changeTags(key, [{ key: body.tag.key, value: body.tag.value ?? '' }], []);
    res.status(204).end();
  });

  route('post', '/:key_id/tags/action', 'batch-key-tags', 'admin', async (req, res) => {
    precheckTags(req.body, 'batch');
    const body = validateTagAction(req.body);
    const key = await pathKey(req, res);
    notPendingDeletion(key);
    if (body.action === 'create') {
      await s.keys.changeTags(key, body.tags.map((t): Tag => ({ key: t.key, value: t.value ?? '' })), []);
    } else {
      // As in Huawei's tag service: a tag is deleted by key, or only if its value matches when one is given.
      const current = new Map((await s.keys.tags(key)).map((t) => [t.key, t.value]));
      const remove = body.tags.filter((t) => current.has(t.key) && (t.value === undefined || current.get(t.key) === t.value)).map((t) => t.key);
      await s.keys.changeTags(key, [], remove);
    }
    res.status(204).end();
  });

  route('delete', '/:key_id/tags/:key', 'delete-key-tag', 'admin', async (req, res) => {
    const tagKey = checkTagKey(param(req, 'key'), 'key');
    const key = await pathKey(req, res);
    notPendingDeletion(key);
    if (!(await s.keys.tags(key)).some((t) => t.key === tagKey)) {
      throw new KmsError('NotFound', 'The tag does not exist.', { vendorCode: 'KMS.0416' });
    }
    await s.keys.changeTags(key, [], [tagKey]);
    res.status(204).end();
  });

  for (const path of ['/tags', '/:key_id/tags', '/:key_id/tags/action', '/:key_id/tags/:key']) {
    r.all(path, body, (_req, _res, next) => next(new KmsError('MethodNotAllowed', 'Request method not supported.')));
    registered.push({ method: 'ALL', path });
  }
  return registered;
}
