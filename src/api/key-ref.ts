/**
 * The one key-reference resolver. Each dialect turns its own text for a key (NCP keyTag, Huawei id
 * or `alias/<name>`, AWS id, ARN, alias name or alias ARN) into a KeyRef; this finds the key the
 * caller may use for the route's operation (Keys.forOperation: its own project's, or another's
 * through a grant naming that operation) and notes it for the audit record.
 */
import type { Response } from 'express';
import type { Opener } from '../kms/grant-rules';
import type { KeyRef } from '../kms/keys';
import type { KeyRecord } from '../store/store';
import { principalOf } from './http';
import { noteKey } from './middleware/audit';
import type { Services } from './services';

export interface ResolveOptions {
  /** Whether grants of other projects count (dialects without grants say no). */
  readonly grants: boolean;
  /** The operation a grant must name, when it is not the route's (ReEncrypt's source and destination). */
  readonly operation?: string;
}

export async function resolveKey(s: Services, res: Response, ref: KeyRef, opts: ResolveOptions = { grants: true }): Promise<KeyRecord> {
  const op: unknown = opts.operation ?? res.locals['operation'];
  const key = await s.keys.forOperation(principalOf(res).projectId, ref, opts.grants && typeof op === 'string' ? op : undefined);
  noteKey(res, key);
  return key;
}

/** Who opens a ciphertext: the caller's project, through the route's operation (or `operation`, a grant's name for it). */
export function openerOf(res: Response, operation?: string): Opener {
  const op: unknown = operation ?? res.locals['operation'];
  return { projectId: principalOf(res).projectId, ...(typeof op === 'string' ? { operation: op } : {}) };
}
