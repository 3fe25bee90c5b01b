/**
 * What a grant lets its grantee do beyond calling the operations it names, for every dialect:
 * which grants a grantee may pass on, and which envelopes a grantee may open through which
 * operation. A grant's operations are its dialect's names (Huawei `decrypt-data`, AWS `Decrypt`),
 * so one table below covers both dialects that have grants; an operation missing from it opens
 * nothing for a grantee.
 */
import { KmsError } from '../errors/kms-error';
import type { GrantRecord, KeyRecord, MetadataStore } from '../store/store';
import type { EnvelopeContents } from './envelope/format';

/** What a new envelope holds, as its header says (see envelope/format.ts). */
export type Contents = Exclude<EnvelopeContents, 'unmarked'>;
const ALL_CONTENTS: readonly Contents[] = ['data', 'data-key'];

/**
 * What each grant operation opens for a grantee. Huawei has one operation per kind, so a grantee
 * gets exactly the kind it was granted. AWS has no separate data-key decryption: a data key from
 * GenerateDataKey is opened with Decrypt, so Decrypt (and ReEncryptFrom, whose plaintext never
 * leaves) opens both kinds, as AWS users expect; an AWS grant is given in AWS operation names and
 * never through a Huawei grant.
 */
const OPENS: ReadonlyMap<string, readonly Contents[]> = new Map([
  ['decrypt-data', ['data']],
  ['decrypt-datakey', ['data-key']],
  ['Decrypt', ALL_CONTENTS],
  ['ReEncryptFrom', ALL_CONTENTS],
]);

/** Who opens an envelope: the caller's project, and the grant operation of the route it came through. */
export interface Opener {
  readonly projectId: string;
  readonly operation?: string;
}

const forbidden = (message: string): KmsError => new KmsError('Forbidden', message);

/**
 * The key's own project opens any envelope of its keys through any route. A grantee opens an
 * envelope only when the operation it came through opens what the envelope holds; an envelope of
 * format version 1 ('unmarked', it doesn't say) only when the grantee holds operations that
 * together open both kinds. Called before the token is asked: a changed contents byte then fails
 * the tag, since the header is additional data.
 */
export async function assertMayOpen(store: MetadataStore, key: KeyRecord, contents: EnvelopeContents, opener: Opener): Promise<void> {
  if (opener.projectId === key.projectId) return;
  const opens = (opener.operation !== undefined && OPENS.get(opener.operation)) || [];
  if (contents !== 'unmarked') {
    if (opens.includes(contents)) return;
    throw forbidden(
      contents === 'data-key'
        ? 'This ciphertext holds a data key: a grantee opens it only through an operation granted for data keys (Huawei decrypt-datakey).'
        : 'This ciphertext holds data: a grantee opens it only through an operation granted for data (Huawei decrypt-data).',
    );
  }
  for (const kind of ALL_CONTENTS.filter((c) => !opens.includes(c))) {
    let held = false;
    for (const [operation, kinds] of OPENS) {
      if (kinds.includes(kind) && (await store.granted(key.keyId, opener.projectId, operation))) {
        held = true;
        break;
      }
    }
    if (!held) throw forbidden('This ciphertext predates marked contents: a grantee opens it only with operations granted for both data and data keys.');
  }
}

/**
 * The grant a grantee passes operations on from: one of its own grants on the key that names the
 * grant-making operation it called (`via`: create-grant, CreateGrant) and every operation asked for
 * (as AWS KMS). The new grant names it as its parent and is removed with it
 * (MetadataStore.deleteGrant). The key's own project needs no parent.
 */
export function parentGrant(key: KeyRecord, grants: readonly GrantRecord[], issuingProject: string, operations: readonly string[], via: string): GrantRecord | undefined {
  if (issuingProject === key.projectId) return undefined;
  const parent = grants.find((p) => p.granteeProject === issuingProject && p.operations.includes(via) && operations.every((o) => p.operations.includes(o)));
  if (!parent) throw cannotPassOn();
  return parent;
}

export const cannotPassOn = (): KmsError => forbidden('A grantee can only grant operations that one of its own grants on this key allows, together with the grant-making operation.');
