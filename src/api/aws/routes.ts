/**
 * The AWS KMS dialect: `POST /` with `X-Amz-Target: TrentService.<Operation>` and an
 * `application/x-amz-json-1.1` body, signed with SigV4 (auth.ts). Every operation is a route of
 * the shared table (dispatch.ts) keyed by its target: keys-routes.ts (management, aliases, tags,
 * rotation), crypto-routes.ts and grants-routes.ts. Errors as errors.ts renders them.
 */
import { Router, type Request } from 'express';
import { KmsError } from '../../errors/kms-error';
import { describeRoutes, dispatcher, type Route } from '../dispatch';
import type { DialectApi } from '../openapi';
import { errorHandler } from '../http';
import { auditTrail } from '../middleware/audit';
import { dialect } from '../middleware/outcome';
import { countFailures } from '../middleware/failed-auth';
import type { Edge } from '../middleware/edge';
import { clientCertProject } from '../middleware/mtls';
import { rateLimit } from '../middleware/rate-limit';
import type { Services } from '../services';
import { sigV4 } from './auth';
import { CONTENT_TYPE, type AwsNames } from './common';
import { AwsCredentials } from './credentials';
import { cryptoRoutes } from './crypto-routes';
import { AWS_ERRORS, renderAwsError } from './errors';
import { grantRoutes } from './grants-routes';
import { keyRoutes } from './keys-routes';
import { TARGET_PREFIX } from './operation';

export const DEFAULT_REGION = 'us-east-1';
const DISPATCH = { mount: '', wrongMethod: 'next', targetHeader: 'x-amz-target' } as const;

/** Every AWS operation, built once: the table the dispatcher, the fuzz test and the docs read. */
export function awsRouteTable(s: Services, names: AwsNames = { region: DEFAULT_REGION }): Route[] {
  return [...keyRoutes(s, names), ...cryptoRoutes(s, names), ...grantRoutes(s, names)];
}

export function awsRoutes(s: Services): Array<{ method: string; path: string; target?: string }> {
  return describeRoutes(awsRouteTable(s), DISPATCH);
}

/** The AWS part of the OpenAPI document. */
export function awsApi(s: Services, region: string = DEFAULT_REGION): DialectApi {
  return {
    name: 'aws',
    title: 'AWS KMS (JSON 1.1, TrentService)',
    description: 'POST / naming the operation in X-Amz-Target, signed with SigV4; errors {"__type","message"} (docs/api/aws.md)',
    mount: DISPATCH.mount,
    routes: awsRouteTable(s, { region }),
    auth: { header: 'Authorization', description: 'AWS Signature Version 4 with an access key from npx p11kms token create --aws (service kms)' },
    errors: AWS_ERRORS,
    targetHeader: 'X-Amz-Target',
    mediaType: CONTENT_TYPE,
  };
}

/** Whether a request is for this dialect: `POST /` naming a TrentService operation. */
export function isAwsRequest(req: Request): boolean {
  return req.path === '/' && (req.get('x-amz-target') ?? '').startsWith(TARGET_PREFIX);
}

export function awsRouter(s: Services, edge: Edge = {}): Router {
  const names: AwsNames = { region: edge.awsRegion ?? DEFAULT_REGION };
  const credentials = new AwsCredentials(s, names.region);
  const r = Router();
  r.use((req, _res, next) => next(isAwsRequest(req) ? undefined : 'router'));
  r.use(dialect('aws'));
  if (edge.audit) r.use(auditTrail(edge.audit, 'aws', renderAwsError, s.log));
  r.use(countFailures(sigV4(credentials, s.log), 'aws', edge.failedAuth));
  if (edge.mtls) r.use(clientCertProject());
  if (edge.limits) r.use(rateLimit(edge.limits));
  r.use(dispatcher(awsRouteTable(s, names), DISPATCH));
  r.use((req, _res, next) => {
    if (req.method !== 'POST') next(new KmsError('MethodNotAllowed', 'Only POST is supported.'));
    else next(new KmsError('RouteNotFound', `Unknown operation ${req.get('x-amz-target') ?? ''}.`));
  });
  r.use(errorHandler(renderAwsError, s.log));
  return r;
}
