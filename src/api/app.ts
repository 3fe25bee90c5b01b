/** createApp(services): the Express app without listen(), so tests and main.ts build it the same way. */
import express, { type Express } from 'express';
import { errorHandler, requestId, requestLog, securityHeaders } from './http';
import { huaweiRouter } from './huawei/routes';
import { ncpRouter } from './ncp/routes';
import type { Services } from './services';
import { KmsError } from '../errors/kms-error';

export function createApp(s: Services): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(requestId(), securityHeaders(), requestLog(s.log));

  app.get('/healthz', async (_req, res) => {
    const ok = await s.healthy();
    res.status(ok ? 200 : 503).json(ok ? { status: 'ok' } : { status: 'unavailable', reason: 'no working HSM session' });
  });

  app.use('/kms/v1', ncpRouter(s));
  app.use('/v1.0/:project_id/kms', huaweiRouter(s));

  app.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'Not found.')));
  app.use(
    errorHandler((e) => ({ status: e.code === 'RouteNotFound' ? 404 : 500, body: { error: e.code, message: e.message } }), s.log),
  );
  return app;
}
