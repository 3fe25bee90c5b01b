/**
 * Request validation: one ajv instance, every schema compiled once at start-up (a bad schema fails
 * `npm start`, not the first request), and the first failure turned into a typed BadRequest that
 * names the field. No `$data`, no coercion, `additionalProperties` stated on every object.
 */
import Ajv, { type ErrorObject } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { badRequest, type BadRequestReason, type KmsError } from '../errors/kms-error';

const ajv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, strict: true });

export type Validator<T extends TSchema> = (body: unknown) => Static<T>;

function toError(e: ErrorObject): KmsError {
  const top = e.instancePath.split('/')[1];
  if (e.keyword === 'required') {
    const field = String(e.params['missingProperty'] ?? '');
    return badRequest(`Missing parameter: ${field}.`, { field, reason: 'missing' });
  }
  if (e.keyword === 'additionalProperties' && top === undefined) {
    const field = String(e.params['additionalProperty'] ?? '');
    return badRequest(`Unknown parameter: ${field}.`, { field, reason: 'unknown-field' });
  }
  if (top === undefined) return badRequest('The request body must be a JSON object.', { reason: 'invalid' });
  const reason: BadRequestReason = e.keyword === 'maxLength' || e.keyword === 'maxItems' ? 'too-long' : 'invalid';
  return badRequest(`Invalid parameter: ${top}.`, { field: top, reason });
}

export function compile<T extends TSchema>(schema: T): Validator<T> {
  const check = ajv.compile<Static<T>>(schema);
  return (body) => {
    const input = body === undefined ? {} : body;
    if (check(input)) return input;
    const [first] = check.errors ?? [];
    throw first ? toError(first) : badRequest('Invalid request.', { reason: 'invalid' });
  };
}
