/**
 * `p11kms` command line. stdout carries only the command's result (a token, or key JSON), so
 * scripts can capture it; diagnostics go to stderr.
 *
 *   p11kms token create --project <id> [--admin]
 *   p11kms key create --project <id> --alias <name> --spec AES_256|RSA_2048 [--convergent] [--description <text>]
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './config/load';
import { isKmsError } from './errors/kms-error';
import { HsmError } from './hsm/binding';
import { ApiTokens, PROJECT_ID } from './kms/api-tokens';
import { isKeySpecName } from './kms/key-specs';
import { createCliLogger } from './log/logger';
import { openRuntime, openStore } from './runtime';

const USAGE = `usage:
  p11kms token create --project <project_id> [--admin]
  p11kms key create --project <project_id> --alias <name> --spec AES_256|RSA_2048 [--convergent] [--description <text>]`;

class UsageError extends Error {}

function project(value: string | undefined): string {
  if (!value || !PROJECT_ID.test(value)) throw new UsageError('--project must be 1-64 letters, digits, "-" or "_"');
  return value;
}

async function run(argv: string[]): Promise<void> {
  const [noun, verb, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      project: { type: 'string' },
      admin: { type: 'boolean', default: false },
      alias: { type: 'string' },
      spec: { type: 'string', default: 'AES_256' },
      convergent: { type: 'boolean', default: false },
      description: { type: 'string', default: '' },
    },
    strict: true,
  });
  const config = loadConfig();
  const log = createCliLogger('warn');

  if (noun === 'token' && verb === 'create') {
    const projectId = project(values.project);
    const store = openStore(config);
    try {
      process.stdout.write(`${new ApiTokens(store).create(projectId, values.admin === true).token}\n`);
    } finally {
      store.close();
    }
    return;
  }

  if (noun === 'key' && verb === 'create') {
    const projectId = project(values.project);
    const alias = values.alias ?? '';
    if (!/^[a-zA-Z0-9:/_-]{1,255}$/.test(alias)) throw new UsageError('--alias must be 1-255 of a-z A-Z 0-9 : / _ -');
    const spec = values.spec ?? 'AES_256';
    if (!isKeySpecName(spec)) throw new UsageError('--spec must be AES_256 or RSA_2048');
    const runtime = openRuntime(config, log);
    try {
      const key = await runtime.services.keys.create({
        projectId,
        alias,
        description: values.description ?? '',
        spec,
        usage: spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ANY',
        convergent: values.convergent === true,
      });
      const out = {
        key_id: key.keyId,
        keyTag: key.keyTag,
        project_id: key.projectId,
        alias: key.alias,
        key_spec: key.spec,
        convergent: key.convergent,
        version: key.currentVersion,
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } finally {
      runtime.close();
    }
    return;
  }
  throw new UsageError(`unknown command: ${[noun, verb].filter(Boolean).join(' ') || '(none)'}`);
}

run(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError || (e instanceof TypeError && 'code' in e)) {
    process.stderr.write(`p11kms: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (isKmsError(e)) process.stderr.write(`p11kms: ${e.code}: ${e.message}\n`);
  else if (e instanceof HsmError) process.stderr.write(`p11kms: HSM error ${e.ckrName} in ${e.method}\n`);
  else process.stderr.write(`p11kms: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
