/**
 * Huawei grants: create-grant, list-grants, list-retirable-grants, revoke-grant, retire-grant.
 * A grant lets another project (the grantee) call the named operations on one key, through the
 * normal routes in its own path (`/v1.0/<grantee>/kms/create-datakey` with the owner's key_id);
 * Keys.forOperation checks grants on every request, so a revoked or retired grant stops working on
 * the next one. Grants are the only way across projects.
 */
import { KmsError } from '../../errors/kms-error';
import type { GrantRecord } from '../../store/store';
import { principalOf } from '../http';
import type { Services } from '../services';
import { compile } from '../validate';
import { decimal, invalid, keyOf, notPendingDeletion, type Action } from './common';
import { CreateGrantBody, GrantIdBody, ListGrantsBody, ListRetirableGrantsBody } from './schemas';

const validateCreate = compile(CreateGrantBody);
const validateGrantId = compile(GrantIdBody);
const validateList = compile(ListGrantsBody);
const validateRetirable = compile(ListRetirableGrantsBody);

/** The vendor's quota of grants per CMK. */
export const MAX_GRANTS_PER_KEY = 100;
const MAX_PAGE = 100;

/** The vendor's answer for a grant id it doesn't know (KMS.2501) or that is another key's (KMS.2502). */
const grantNotFound = (): KmsError => invalid('grant_id', 'KMS.2501', 'Invalid grant ID.');
const grantOfOtherKey = (): KmsError => invalid('grant_id', 'KMS.2502', 'grant_id and key_id do not match.');

function grantInfo(g: GrantRecord) {
  return {
    key_id: g.keyId,
    grant_id: g.grantId,
    grantee_principal: g.granteeProject,
    grantee_principal_type: 'domain',
    operations: [...g.operations],
    issuing_principal: g.issuingProject,
    creation_date: String(g.createdAt),
    name: g.name,
    retiring_principal: g.retiringProject,
  };
}

function page(all: GrantRecord[], limitText: string | undefined, markerText: string | undefined) {
  const limit = limitText === undefined ? MAX_PAGE : decimal(limitText, 1, MAX_PAGE, 'limit', 'KMS.1601', 'Invalid limit.');
  const offset = markerText === undefined ? 0 : decimal(markerText, 0, Number.MAX_SAFE_INTEGER, 'marker', 'KMS.1602', 'Invalid marker.');
  const items = all.slice(offset, offset + limit);
  const next = offset + items.length;
  const truncated = next < all.length;
  return { grants: items.map(grantInfo), next_marker: truncated ? String(next) : '', truncated: String(truncated), total: all.length };
}

export function grantActions(s: Services): Record<string, Action> {
  return {
    'create-grant': async (raw, res) => {
      const body = validateCreate(raw);
      // The vendor refuses a grant of create-grant alone (it would grant nothing usable).
      if (body.operations.length === 1 && body.operations[0] === 'create-grant') {
        throw invalid('operations', 'KMS.2401', 'Specify an operation in addition to create-grant.');
      }
      const key = await keyOf(s, res, body.key_id);
      notPendingDeletion(key);
      if (body.grantee_principal === key.projectId) throw invalid('grantee_principal', 'KMS.2402', 'The key\'s own project needs no grant.');
      if ((await s.keys.grantsOf(key)).length >= MAX_GRANTS_PER_KEY) throw invalid('grant', 'KMS.2404', 'Too many CMK grants.');
      const grant = await s.keys.createGrant(key, {
        granteeProject: body.grantee_principal,
        operations: body.operations,
        name: body.name ?? '',
        retiringProject: body.retiring_principal ?? '',
        issuingProject: principalOf(res).projectId,
      });
      return { grant_id: grant.grantId };
    },

    'list-grants': async (raw, res) => {
      const body = validateList(raw);
      const key = await keyOf(s, res, body.key_id);
      return page(await s.keys.grantsOf(key), body.limit, body.marker);
    },

    'list-retirable-grants': async (raw, res) => {
      const body = validateRetirable(raw);
      return page(await s.keys.retirableGrants(principalOf(res).projectId), body.limit, body.marker);
    },

    'revoke-grant': async (raw, res) => {
      const body = validateGrantId(raw);
      const key = await keyOf(s, res, body.key_id);
      const grant = await s.keys.grantOf(key, body.grant_id);
      if (!grant || !(await s.keys.deleteGrant(grant))) throw grantNotFound();
      return {};
    },

    'retire-grant': async (raw, res) => {
      const body = validateGrantId(raw);
      // The grantee or the retiring principal retires; to anyone else the grant (and its key) doesn't exist.
      const project = principalOf(res).projectId;
      const grant = (await s.keys.retirableGrants(project)).find((g) => g.grantId === body.grant_id);
      if (!grant) {
        // Same answer as for a key that doesn't exist when the key_id isn't a key the caller may see.
        await keyOf(s, res, body.key_id);
        throw grantNotFound();
      }
      const keyId = body.key_id.startsWith('alias/') ? (await keyOf(s, res, body.key_id)).keyId : body.key_id;
      if (grant.keyId !== keyId) throw grantOfOtherKey();
      if (!(await s.keys.deleteGrant(grant))) throw grantNotFound();
      return {};
    },
  };
}
