/**
 * NCP KMS API 2.0 under /kms/v1 (token header `x-ncp-ocapi-token`). One handler per vendor route;
 * each parses its body with the schema beside it and answers `{"code":"SUCCESS","data":{…}}`.
 */
import { Router, type Request, type Response } from 'express';
import { badRequest, KmsError } from '../../errors/kms-error';
import { NO_CONTEXT, type Context } from '../../kms/envelope/context';
import type { Services } from '../services';
import { fromBase64 } from '../base64';
import { authenticate, errorHandler, jsonBody, principalOf } from '../http';
import { compile } from '../validate';
import { parseNcp, renderNcp } from './ciphertext';
import { renderNcpError } from './errors';
import { CreateCustomKeyBody, DecryptBody, KeyTagParam } from './schemas';

const validateCreateCustomKey = compile(CreateCustomKeyBody);
const validateDecrypt = compile(DecryptBody);
const validateKeyTag = compile(KeyTagParam);

function context(text: string | undefined): Context {
  if (text === undefined) return NO_CONTEXT;
  const bytes = fromBase64(text);
  if (!bytes || bytes.length > 50) throw badRequest('context must be base64 of at most 50 bytes.', { field: 'context', reason: 'invalid' });
  return bytes;
}

function ok(res: Response, data: unknown): void {
  res.json({ code: 'SUCCESS', data });
}

export function ncpRouter(s: Services): Router {
  const r = Router();
  r.use(authenticate(s.tokens, 'x-ncp-ocapi-token'));
  r.use(jsonBody());

  const keyOf = (req: Request, res: Response) => {
    const tag = req.params['keyTag'];
    try {
      validateKeyTag(tag);
    } catch {
      throw badRequest('Invalid keyTag.', { field: 'keyTag', reason: 'invalid' });
    }
    return s.keys.byTag(principalOf(res).projectId, String(tag));
  };

  r.post('/keys/:keyTag/create-custom-key', async (req, res) => {
    const body = validateCreateCustomKey(req.body);
    const key = keyOf(req, res);
    const dk = await s.dataKeys.create(key, (body.bits ?? 256) / 8, context(body.context), { length: 'bits', context: 'context' });
    ok(res, {
      ...(body.requestPlainKey === true ? { plaintext: dk.plaintext.toString('base64') } : {}),
      ciphertext: renderNcp(dk.ciphertext, dk.keyVersion),
      key_version: dk.keyVersion,
    });
  });

  r.post('/keys/:keyTag/decrypt', async (req, res) => {
    const body = validateDecrypt(req.body);
    const key = keyOf(req, res);
    const ctx = context(body.context);
    const open = async (text: string) => (await s.crypto.open(key, parseNcp(text), ctx, 'context')).plaintext.toString('base64');
    if (Array.isArray(body.ciphertext)) {
      const plaintexts: string[] = [];
      for (const c of body.ciphertext) plaintexts.push(await open(c));
      ok(res, { plaintext: plaintexts });
    } else {
      ok(res, { plaintext: await open(body.ciphertext) });
    }
  });

  r.use((_req, _res, next) => next(new KmsError('RouteNotFound', 'No such API.')));
  r.use(errorHandler(renderNcpError, s.log));
  return r;
}
