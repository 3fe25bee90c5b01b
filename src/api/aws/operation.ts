/** One AWS operation in the shared route table: `POST /` with `X-Amz-Target: TrentService.<name>`. */
import type { Static, TSchema } from '@sinclair/typebox';
import type { Response } from 'express';
import type { Scope } from '../../kms/api-tokens';
import { route, type Route } from '../dispatch';
import { reply, unsupportedFeature } from './common';

export const TARGET_PREFIX = 'TrentService.';

export function operation<B extends TSchema, R extends TSchema>(
  name: string,
  scope: Scope,
  body: B,
  response: R,
  handle: (body: Static<B>, res: Response) => Promise<Static<R>>,
): Route {
  return route({
    method: 'POST',
    path: '/',
    target: `${TARGET_PREFIX}${name}`,
    operation: name,
    scope,
    body,
    response,
    handle: async (input, _req, res) => {
      const b = input.body as Static<B>;
      if ((b as { DryRun?: unknown }).DryRun === true) throw unsupportedFeature('DryRun', 'DryRun is not supported.');
      reply(res, await handle(b, res));
    },
  });
}
