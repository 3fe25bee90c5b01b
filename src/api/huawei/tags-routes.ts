/**
 * Huawei key tags: `POST /kms/{key_id}/tags`, `POST /kms/{key_id}/tags/action`,
 * `DELETE /kms/{key_id}/tags/{key}`, `GET /kms/{key_id}/tags`, `GET /kms/tags`. Changes answer
 * 204 with no body (as the vendor documents) and need the admin scope; reads the read scope.
 */
import type { Response } from 'express';
import type { KeyRecord, Tag } from '../../store/store';
import { MAX_TAGS_PER_KEY } from '../../kms/keys';
import { route, type Route } from '../dispatch';
import { principalOf } from '../http';
import { resolveKey } from '../key-ref';
import type { Services } from '../services';
import { invalid } from './common';
import type { ActionScopes } from './routes';
import { AddTagBody, TagActionBody } from './schemas';
import { KeyTagsResponse, ProjectTagsResponse } from './responses';

const KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;
const MAX_TAG_KEY_CHARS = 36;
const MAX_TAG_VALUE_CHARS = 43;
/** ASCII 0-31 and `*<>\=` are refused in tag keys and values. */
const FORBIDDEN = /[\u0000-\u001f*<>\\=]/;

const chars = (s: string): number => [...s].length;

function checkTagKey(k: unknown, field: string): string {
  if (typeof k !== 'string') throw invalid(field, 'Invalid tag key.', 'tag-key');
  if (chars(k) < 1 || chars(k) > MAX_TAG_KEY_CHARS) throw invalid(field, 'Invalid tag key length.', 'tag-key-length');
  if (FORBIDDEN.test(k)) throw invalid(field, 'Invalid tag key.', 'tag-key');
  return k;
}

function checkTagValue(v: unknown, field: string, required: boolean): void {
  if (v === undefined && !required) return;
  if (typeof v !== 'string') throw invalid(field, 'Invalid tag value.', 'tag-value');
  if (chars(v) > MAX_TAG_VALUE_CHARS) throw invalid(field, 'Invalid tag value length.', 'tag-value-length');
  if (FORBIDDEN.test(v)) throw invalid(field, 'Invalid tag value.', 'tag-value');
}

function checkTag(t: unknown, field: string, valueRequired: boolean): void {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw invalid(field, 'Invalid tags.');
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
  if (!Array.isArray(tags)) throw invalid('tags', 'Invalid tag list.', 'tag-list');
  if (tags.length === 0) throw invalid('tags', 'Tag list cannot be empty.', 'empty');
  if (tags.length > MAX_TAGS_PER_KEY) throw invalid('tags', 'Invalid tag list size.', 'too-many');
  const seen = new Set<unknown>();
  for (const t of tags) {
    checkTag(t, 'tags', body['action'] !== 'delete');
    const k = (t as Record<string, unknown>)['key'];
    if (seen.has(k)) throw invalid('tags', 'Invalid tag list.', 'tag-list');
    seen.add(k);
  }
}

/** The tag routes, for routes.ts's table (other methods on their paths: 405). */
export function tagRoutes(s: Services, scopes: ActionScopes): Route[] {
  const pathKey = async (params: Readonly<Record<string, string>>, res: Response): Promise<KeyRecord> => {
    const keyId = params['key_id'] ?? '';
    if (!KEY_ID.test(keyId)) throw invalid('key_id', 'Invalid key ID.');
    return resolveKey(s, res, { keyId });
  };

  return [
    route({
      method: 'GET',
      path: '/tags',
      operation: 'list-project-tags',
      response: ProjectTagsResponse,
      scope: scopes['list-project-tags'],
      handle: async (_input, _req, res) => {
        res.json({ tags: await s.keys.projectTags(principalOf(res).projectId) });
      },
    }),

    route({
      method: 'GET',
      path: '/:key_id/tags',
      operation: 'list-key-tags',
      response: KeyTagsResponse,
      scope: scopes['list-key-tags'],
      handle: async ({ params }, _req, res) => {
        const tags = await s.keys.tags(await pathKey(params, res));
        res.json({ tags: tags.map((t) => ({ key: t.key, value: t.value })), existTagsNum: tags.length });
      },
    }),

    route({
      method: 'POST',
      path: '/:key_id/tags',
      operation: 'create-key-tag',
      response: 'no-content',
      scope: scopes['create-key-tag'],
      precheck: (raw) => precheckTags(raw, 'single'),
      body: AddTagBody,
      handle: async ({ body, params }, _req, res) => {
        await s.keys.changeTags(await pathKey(params, res), [{ key: body.tag.key, value: body.tag.value ?? '' }], []);
        res.status(204).end();
      },
    }),

    route({
      method: 'POST',
      path: '/:key_id/tags/action',
      operation: 'batch-key-tags',
      response: 'no-content',
      scope: scopes['batch-key-tags'],
      precheck: (raw) => precheckTags(raw, 'batch'),
      body: TagActionBody,
      handle: async ({ body, params }, _req, res) => {
        const key = await pathKey(params, res);
        if (body.action === 'create') {
          await s.keys.changeTags(key, body.tags.map((t): Tag => ({ key: t.key, value: t.value ?? '' })), []);
        } else {
          // As in Huawei's tag service: a tag is deleted by key, or only if its value matches when one is given.
          const current = new Map((await s.keys.tags(key)).map((t) => [t.key, t.value]));
          const remove = body.tags.filter((t) => current.has(t.key) && (t.value === undefined || current.get(t.key) === t.value)).map((t) => t.key);
          await s.keys.changeTags(key, [], remove);
        }
        res.status(204).end();
      },
    }),

    route({
      method: 'DELETE',
      path: '/:key_id/tags/:key',
      operation: 'delete-key-tag',
      response: 'no-content',
      scope: scopes['delete-key-tag'],
      handle: async ({ params }, _req, res) => {
        const tagKey = checkTagKey(params['key'] ?? '', 'key');
        await s.keys.deleteTag(await pathKey(params, res), tagKey);
        res.status(204).end();
      },
    }),
  ];
}
