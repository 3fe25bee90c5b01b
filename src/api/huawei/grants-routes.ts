/**
 * Huawei grants: create-grant, list-grants, list-retirable-grants, revoke-grant, retire-grant.
 * A grant lets another project (the grantee) call the named operations on one key, through the
 * normal routes in its own path (`/v1.0/<grantee>/kms/create-datakey` with the owner's key_id);
 * Keys.forOperation checks grants on every request, so a revoked or retired grant stops working on
 * the next one. Grants are the only way across projects.
 */
import type { KmsError } from '../../errors/kms-error';
import type { GrantRecord } from '../../store/store';
import type { Route } from '../dispatch';
import { principalOf } from '../http';
import type { Services } from '../services';
import { action, decimal, invalid, keyOf } from './common';
import type { ActionScopes } from './routes';
import { CreateGrantBody, GrantIdBody, ListGrantsBody, ListRetirableGrantsBody } from './schemas';
import { CreateGrantResponse, Empty, GrantsResponse } from './responses';

const MAX_PAGE = 100;

const grantNotFound = (): KmsError => invalid('grant_id', 'Invalid grant ID.');
const grantOfOtherKey = (): KmsError => invalid('grant_id', 'grant_id and key_id do not match.', 'other-key');

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
  const limit = limitText === undefined ? MAX_PAGE : decimal(limitText, 1, MAX_PAGE, 'limit', 'Invalid limit.');
  const offset = markerText === undefined ? 0 : decimal(markerText, 0, Number.MAX_SAFE_INTEGER, 'marker', 'Invalid marker.');
  const items = all.slice(offset, offset + limit);
  const next = offset + items.length;
  const truncated = next < all.length;
  return { grants: items.map(grantInfo), next_marker: truncated ? String(next) : '', truncated: String(truncated), total: all.length };
}

export function grantActions(s: Services, scopes: ActionScopes): Route[] {
  return [
    action('create-grant', scopes['create-grant'], CreateGrantBody, CreateGrantResponse, async (body, res) => {
      // The vendor refuses a grant of create-grant alone (it would grant nothing usable).
      if (body.operations.length === 1 && body.operations[0] === 'create-grant') {
        throw invalid('operations', 'Specify an operation in addition to create-grant.', 'only-create-grant');
      }
      const key = (await keyOf(s, res, body.key_id));
      const grant = await s.keys.createGrant(key, {
        granteeProject: body.grantee_principal,
        operations: body.operations,
        name: body.name ?? '',
        retiringProject: body.retiring_principal ?? '',
        issuingProject: principalOf(res).projectId,
      }, 'create-grant');
      return { grant_id: grant.grantId };
    }),

    action('list-grants', scopes['list-grants'], ListGrantsBody, GrantsResponse, async (body, res) => {
      const key = (await keyOf(s, res, body.key_id));
      return page(await s.keys.grantsOf(key), body.limit, body.marker);
    }),

    action('list-retirable-grants', scopes['list-retirable-grants'], ListRetirableGrantsBody, GrantsResponse, async (body, res) =>
      page(await s.keys.retirableGrants(principalOf(res).projectId), body.limit, body.marker),
    ),

    action('revoke-grant', scopes['revoke-grant'], GrantIdBody, Empty, async (body, res) => {
      const key = (await keyOf(s, res, body.key_id));
      const grant = await s.keys.grantOf(key, body.grant_id);
      if (!grant || !(await s.keys.deleteGrant(grant))) throw grantNotFound();
      return {};
    }),

    action('retire-grant', scopes['retire-grant'], GrantIdBody, Empty, async (body, res) => {
      // The grantee or the retiring principal retires; to anyone else the grant (and its key) doesn't exist.
      const project = principalOf(res).projectId;
      const grant = (await s.keys.retirableGrants(project)).find((g) => g.grantId === body.grant_id);
      if (!grant) {
        // Same answer as for a key that doesn't exist when the key_id isn't a key the caller may see.
        (await keyOf(s, res, body.key_id));
        throw grantNotFound();
      }
      const keyId = body.key_id.startsWith('alias/') ? (await keyOf(s, res, body.key_id)).keyId : body.key_id;
      if (grant.keyId !== keyId) throw grantOfOtherKey();
      if (!(await s.keys.deleteGrant(grant))) throw grantNotFound();
      return {};
    }),
  ];
}
