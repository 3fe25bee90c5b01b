/**
 * Turns the config schema's validation errors into what an operator can act on: the environment
 * variable and the values it accepts ("KMS_LOG_LEVEL must be one of error, warn, info, debug"),
 * never a schema dump and never the value given (the PIN is a setting too).
 */
import type { ErrorObject } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './schema';

const PROPERTIES = ConfigSchema.properties as Readonly<Record<string, TSchema>>;

/** The variable a setting comes from: its description starts with it (`KMS_POOL_SIZE: …`). */
function variableOf(setting: string): string {
  const description = PROPERTIES[setting]?.['description'];
  const m = typeof description === 'string' ? /^([A-Z][A-Z0-9_]*)/.exec(description) : null;
  return m?.[1] ?? setting;
}

/** What a setting accepts, from its schema. */
function accepted(schema: TSchema | undefined): string | undefined {
  if (!schema) return undefined;
  const literals = (schema['anyOf'] as TSchema[] | undefined)?.map((s) => s['const'] as unknown);
  if (literals && literals.every((v) => typeof v === 'string')) return `one of ${literals.join(', ')}`;
  const min = schema['minimum'] as number | undefined;
  const max = schema['maximum'] as number | undefined;
  if (schema['type'] === 'integer' && min !== undefined && max !== undefined) return `a whole number from ${min} to ${max}`;
  const minLength = schema['minLength'] as number | undefined;
  const maxLength = schema['maxLength'] as number | undefined;
  if (schema['type'] === 'string' && maxLength !== undefined) return `${minLength ?? 0}-${maxLength} characters`;
  if (schema['type'] === 'string' && minLength) return 'not empty';
  return undefined;
}

export function configProblems(errors: readonly ErrorObject[]): string {
  const lines = new Map<string, string>();
  for (const e of errors) {
    const setting = e.instancePath.split('/')[1] ?? '';
    if (lines.has(setting)) continue;
    const wants = accepted(PROPERTIES[setting]);
    lines.set(setting, `${variableOf(setting)} must be ${wants ?? (e.message ?? 'valid').replace(/^must be /, '')}`);
  }
  return [...lines.values()].join('; ');
}
