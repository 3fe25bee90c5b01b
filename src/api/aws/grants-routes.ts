/**
 * AWS grants: CreateGrant, ListGrants, RetireGrant, RevokeGrant. A grantee is a project, named as
 * AWS names an account: its 12-digit account id or `arn:aws:iam::<account>:…`. A grant's operations
 * are AWS operation names, and the AWS routes check them (Keys.forOperation); the grant takes
 * effect at once, so its GrantToken is just its id.
 */
import { badRequest, KmsError } from '../../errors/kms-error';
import type { GrantRecord } from '../../store/store';
import type { Route } from '../dispatch';
import { principalOf } from '../http';
import type { Services } from '../services';
import { epoch, keyArn, keyOf, page, unsupportedFeature, type AwsNames } from './common';
import { accountOf } from './credentials';
import { operation } from './operation';
import { CreateGrantBody, ListGrantsBody, RetireGrantBody, RevokeGrantBody } from './schemas';
import { CreateGrantResponse, Empty, ListGrantsResponse } from './responses';

/** The grant operations AWS defines that this service has routes for. */
export const GRANT_OPERATIONS = [
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'Sign',
  'Verify',
  'GetPublicKey',
  'CreateGrant',
  'RetireGrant',
  'DescribeKey',
] as const;

const PRINCIPAL = /^(?:(\d{12})|arn:aws:iam::(\d{12}):[\x21-\x7e]{1,200})$/;

const grantNotFound = (): KmsError => new KmsError('NotFound', 'The grant does not exist.', { subject: 'grant' });
const rootOf = (projectId: string): string => `arn:aws:iam::${accountOf(projectId)}:root`;

export function grantRoutes(s: Services, names: AwsNames): Route[] {
  /** The project an AWS principal names (its account), among the projects that have credentials. */
  const projectOf = async (principal: string, field: string): Promise<string> => {
    const m = PRINCIPAL.exec(principal);
    const account = m?.[1] ?? m?.[2];
    const project = account === undefined ? undefined : [...new Set((await s.tokens.list()).map((t) => t.project))].find((p) => accountOf(p) === account);
    if (project === undefined) throw badRequest(`${field} must name an account of this service (its id or arn:aws:iam::<account>:root).`, { field, reason: 'invalid' });
    return project;
  };

  const entry = (g: GrantRecord, arn: string) => ({
    KeyId: arn,
    GrantId: g.grantId,
    ...(g.name ? { Name: g.name } : {}),
    CreationDate: epoch(g.createdAt),
    GranteePrincipal: rootOf(g.granteeProject),
    ...(g.retiringProject ? { RetiringPrincipal: rootOf(g.retiringProject) } : {}),
    IssuingAccount: rootOf(g.issuingProject),
    Operations: [...g.operations],
  });

  return [
    operation('CreateGrant', 'admin', CreateGrantBody, CreateGrantResponse, async (body, res) => {
      if (body.Constraints !== undefined) throw unsupportedFeature('Constraints', 'Grant constraints are not supported.');
      for (const op of body.Operations) {
        if (!(GRANT_OPERATIONS as readonly string[]).includes(op)) {
          throw badRequest(`Operations must be among ${GRANT_OPERATIONS.join(', ')}.`, { field: 'Operations', reason: 'invalid' });
        }
      }
      const grantee = await projectOf(body.GranteePrincipal, 'GranteePrincipal');
      const retiring = body.RetiringPrincipal === undefined ? '' : await projectOf(body.RetiringPrincipal, 'RetiringPrincipal');
      const k = await keyOf(s, names, res, body.KeyId);
      const grant = await s.keys.createGrant(k, {
        granteeProject: grantee,
        operations: [...new Set(body.Operations)],
        name: body.Name ?? '',
        retiringProject: retiring,
        issuingProject: principalOf(res).projectId,
      }, 'CreateGrant');
      return { GrantToken: grant.grantId, GrantId: grant.grantId };
    }),

    operation('ListGrants', 'read', ListGrantsBody, ListGrantsResponse, async (body, res) => {
      if (body.GranteeServicePrincipal !== undefined) throw unsupportedFeature('GranteeServicePrincipal', 'Service principals are not supported.');
      const k = await keyOf(s, names, res, body.KeyId);
      const grantee = body.GranteePrincipal === undefined ? undefined : await projectOf(body.GranteePrincipal, 'GranteePrincipal');
      const all = (await s.keys.grantsOf(k)).filter((g) => (body.GrantId === undefined || g.grantId === body.GrantId) && (grantee === undefined || g.granteeProject === grantee));
      const p = page(all, body.Limit, body.Marker, 100, 50);
      const arn = keyArn(names, k);
      return { Grants: p.items.map((g) => entry(g, arn)), Truncated: p.truncated, ...(p.nextMarker ? { NextMarker: p.nextMarker } : {}) };
    }),

    operation('RetireGrant', 'admin', RetireGrantBody, Empty, async (body, res) => {
      const grantId = body.GrantToken ?? body.GrantId;
      if (grantId === undefined) throw badRequest('Specify GrantToken, or KeyId and GrantId.', { field: 'GrantToken', reason: 'missing' });
      // The grantee or the retiring principal retires; to anyone else the grant doesn't exist.
      const grant = (await s.keys.retirableGrants(principalOf(res).projectId)).find((g) => g.grantId === grantId);
      // The grantee may not see the key itself: its id (or key ARN) is compared, not looked up.
      if (body.KeyId !== undefined && grant && !body.KeyId.endsWith(grant.keyId)) throw grantNotFound();
      if (!grant || !(await s.keys.deleteGrant(grant))) throw grantNotFound();
      return {};
    }),

    operation('RevokeGrant', 'admin', RevokeGrantBody, Empty, async (body, res) => {
      const grant = await s.keys.grantOf(await keyOf(s, names, res, body.KeyId), body.GrantId);
      if (!grant || !(await s.keys.deleteGrant(grant))) throw grantNotFound();
      return {};
    }),
  ];
}
