/** `p11kms key …`: make keys, and read them by any of their names without going over HTTP. */
import { isKeySpecName } from '../kms/key-specs';
import { createCliLogger } from '../log/logger';
import { openStore } from '../runtime';
import { openCliRuntime } from './runtime';
import type { KeyRecord, MetadataStore } from '../store/store';
import { audited } from './audited';
import { CliError, flag, out, projectOption, text, UsageError, type Command } from './command';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 500;

/** A key of `projectId` by key_id, keyTag or alias/NAME; deleted and other projects' keys are not found. */
async function findKey(store: MetadataStore, projectId: string, ref: string): Promise<KeyRecord> {
  const key = ref.startsWith('alias/')
    ? await store.keyByAlias(projectId, ref.slice('alias/'.length))
    : UUID.test(ref)
      ? await store.keyById(ref.toLowerCase())
      : await store.keyByTag(ref);
  if (!key || key.projectId !== projectId || key.state === 'Deleted') throw new CliError(`no key ${ref} in project ${projectId}`);
  return key;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export const keyCommands: readonly Command[] = [
  {
    name: 'key create',
    args: '--project <project_id> --alias <name> [--spec AES_256|RSA_2048] [--convergent] [--description <text>]',
    summary: 'make a key (default AES_256); prints its key_id, keyTag and the rest as JSON',
    options: {
      project: { type: 'string' },
      alias: { type: 'string' },
      spec: { type: 'string' },
      convergent: { type: 'boolean' },
      description: { type: 'string' },
    },
    required: ['project', 'alias'],
    async run(input) {
      const projectId = projectOption(input);
      const alias = text(input, 'alias') ?? '';
      if (!/^[a-zA-Z0-9:/_-]{1,255}$/.test(alias)) throw new UsageError('--alias must be 1-255 of a-z A-Z 0-9 : / _ -');
      const spec = text(input, 'spec') ?? 'AES_256';
      if (!isKeySpecName(spec)) throw new UsageError('--spec must be AES_256 or RSA_2048');
      const config = input.config();
      const log = createCliLogger('warn');
      const runtime = await openCliRuntime(config, log);
      try {
        const key = await audited(
          config,
          runtime.auditKey,
          log,
          'key-create',
          projectId,
          () =>
            runtime.services.keys.create({
              projectId,
              alias,
              description: text(input, 'description') ?? '',
              spec,
              usage: spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ANY',
              convergent: flag(input, 'convergent'),
            }),
          (k) => ({ keyId: k.keyId, keyVersion: k.currentVersion }),
        );
        out(
          JSON.stringify({
            key_id: key.keyId,
            keyTag: key.keyTag,
            project_id: key.projectId,
            alias: key.alias,
            key_spec: key.spec,
            convergent: key.convergent,
            version: key.currentVersion,
          }),
        );
      } finally {
        await runtime.close();
      }
    },
  },
  {
    name: 'key list',
    args: '--project <project_id>',
    summary: "JSON lines, one per key of the project that isn't deleted: key_id, keyTag, alias, spec, state, version",
    options: { project: { type: 'string' } },
    required: ['project'],
    async run(input) {
      const projectId = projectOption(input);
      const store = openStore(input.config());
      try {
        for (let offset = 0; ; offset += PAGE) {
          const page = await store.listKeys(projectId, { offset, limit: PAGE });
          for (const k of page.keys) {
            out(JSON.stringify({ key_id: k.keyId, keyTag: k.keyTag, alias: k.alias, spec: k.spec, state: k.state, version: k.currentVersion }));
          }
          if (page.keys.length < PAGE) break;
        }
      } finally {
        await store.close();
      }
    },
  },
  {
    name: 'key describe',
    args: '<key_id | keyTag | alias/NAME> --project <project_id>',
    summary: 'one key as JSON: its names, spec, state, rotation and versions',
    options: { project: { type: 'string' } },
    required: ['project'],
    positionals: ['<key>'],
    async run(input) {
      const projectId = projectOption(input);
      const store = openStore(input.config());
      try {
        const k = await findKey(store, projectId, input.positionals[0] ?? '');
        const versions = await store.versions(k.keyId);
        out(
          JSON.stringify({
            key_id: k.keyId,
            keyTag: k.keyTag,
            project_id: k.projectId,
            alias: k.alias,
            description: k.description,
            spec: k.spec,
            usage: k.usage,
            convergent: k.convergent,
            state: k.state,
            version: k.currentVersion,
            created: iso(k.createdAt),
            deletion_date: iso(k.deletionDate),
            rotation: { enabled: k.rotationEnabled, interval_days: k.rotationIntervalDays, last: iso(k.lastRotationAt), count: k.rotationCount },
            versions: versions.map((v) => ({ version: v.version, state: v.state, created: iso(v.createdAt) })),
          }),
        );
      } finally {
        await store.close();
      }
    },
  },
];
