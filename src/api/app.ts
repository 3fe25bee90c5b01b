/** createApp(services): the Express app without listen(), so tests and main.ts build it the same way. */
import express, { type Express } from 'express';
import { errorHandler, requestId, securityHeaders, UNAVAILABLE_RETRY_AFTER_S } from './http';
import { observeOutcomes } from './middleware/outcome';
import { huaweiApi, huaweiRouter } from './huawei/routes';
import { ncpApi, ncpRouter } from './ncp/routes';
import { openApiHandler } from './openapi';
import { consoleRouter } from './console/routes';
import { awsApi, awsRouter } from './aws/routes';
import type { Edge } from './middleware/edge';
import type { Services } from './services';
import { KmsError } from '../errors/kms-error';
import { renderHuaweiError } from './huawei/errors';

export function createApp(s: Services, edge: Edge = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(requestId(), securityHeaders(), observeOutcomes(edge.observers ?? []));

  // Liveness: the process is up and answers HTTP, with no HSM call (for load balancers that probe
  // often, and the benchmark's HTTP ceiling). Readiness is /healthz: a token session works.
  app.get('/livez', (_req, res) => {
    res.json({ status: 'live' });
  });

  app.get('/healthz', async (_req, res) => {
    const ok = await s.healthy();
    if (!ok) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S));
    res
      .status(ok ? 200 : 503)
      .json(ok ? { status: 'ok' } : { status: 'unavailable', reason: s.healthReason?.() ?? 'no working HSM session' });
  });

  // Every dialect's routes, request and answer schemas and errors, from the route tables (openapi.ts).
  app.get('/openapi.json', openApiHandler(() => [ncpApi(s), huaweiApi(s), awsApi(s, edge.awsRegion)]));

  app.use('/kms/v1', ncpRouter(s, edge));
  app.use('/v1.0/:project_id/kms', huaweiRouter(s, edge));
  app.use('/console', consoleRouter(s, edge));

  // A project id that doesn't percent-decode fails in the mount path, before the dialect's router:
  // still the client's mistake, answered in Huawei's shape.
  app.use('/v1.0', errorHandler(renderHuaweiError, s.log));
  // AWS: `POST /` naming a TrentService operation in X-Amz-Target; anything else passes by.
  app.use(awsRouter(s, edge));
  app.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'Not found.')));
  app.use(
    errorHandler((e) => ({ status: e.code === 'RouteNotFound' ? 404 : 500, body: { error: e.code, message: e.message } }), s.log),
  );
  return app;
}
