/** `p11kms token …`: API tokens (src/kms/api-tokens.ts) and AWS access keys (src/api/aws/credentials.ts). */
import { AwsCredentials } from '../api/aws/credentials';
import { ApiTokens, DEFAULT_SCOPES, isScope, parseExpiry, SCOPES, TOKEN_ID, type Scope } from '../kms/api-tokens';
import { createCliLogger } from '../log/logger';
import { openAuditKey, openStore } from '../runtime';
import { openCliRuntime } from './runtime';
import { audited } from './audited';
import { CliError, flag, out, projectOption, text, UsageError, type Command } from './command';

/** --admin is all three scopes; --scope names them; neither is crypto+read. */
function tokenScopes(admin: boolean, list: string | undefined): Scope[] {
  if (admin && list !== undefined) throw new UsageError('use --admin or --scope, not both');
  if (admin) return [...SCOPES];
  if (list === undefined) return [...DEFAULT_SCOPES];
  const scopes = list.split(',').map((x) => x.trim());
  if (scopes.length === 0 || !scopes.every(isScope)) throw new UsageError('--scope must be a comma-separated list of admin, crypto, read');
  return scopes.filter(isScope);
}

export const tokenCommands: readonly Command[] = [
  {
    name: 'token create',
    args: '--project <project_id> [--admin | --scope admin,crypto,read] [--expires 30d|12h|<ISO date>] [--aws]',
    summary:
      'make an API token; prints it (only now: the store keeps its hash). With --aws, an AWS access key for the AWS dialect instead (JSON line: accessKeyId, secretAccessKey, accountId, region)',
    options: { project: { type: 'string' }, admin: { type: 'boolean' }, scope: { type: 'string' }, expires: { type: 'string' }, aws: { type: 'boolean' } },
    required: ['project'],
    async run(input) {
      const projectId = projectOption(input);
      const scopes = tokenScopes(flag(input, 'admin'), text(input, 'scope'));
      const expires = text(input, 'expires');
      const expiresAt = expires === undefined ? null : parseExpiry(expires);
      if (expiresAt === undefined) throw new UsageError('--expires must be like 30d, 12h, 45m, 90s or a future ISO 8601 date');
      const config = input.config();
      const log = createCliLogger('warn');
      if (flag(input, 'aws')) {
        // The secret is sealed under a key in the token: this needs the HSM, not only the store.
        const runtime = await openCliRuntime(config, log);
        try {
          const cred = await audited(config, runtime.auditKey, log, 'token-create', projectId, () =>
            new AwsCredentials(runtime.services, config.awsRegion).create(projectId, scopes, expiresAt),
          );
          out(JSON.stringify(cred));
        } finally {
          await runtime.close();
        }
        return;
      }
      const store = openStore(config);
      const audit = openAuditKey(config, log);
      try {
        const { token } = await audited(config, audit.key, log, 'token-create', projectId, () => new ApiTokens(store).create(projectId, scopes, expiresAt));
        out(token);
      } finally {
        await audit.close();
        await store.close();
      }
    },
  },
  {
    name: 'token list',
    args: '[--project <project_id>]',
    summary: 'JSON lines: id, project, scopes, created, expires, revoked (never the secret)',
    options: { project: { type: 'string' } },
    async run(input) {
      const projectId = text(input, 'project') === undefined ? undefined : projectOption(input);
      const store = openStore(input.config());
      try {
        for (const t of await new ApiTokens(store).list(projectId)) out(JSON.stringify(t));
      } finally {
        await store.close();
      }
    },
  },
  {
    name: 'token revoke',
    args: '<token_id>',
    summary: 'revoke a token or AWS access key (its id as token list shows it); it fails from its next request on',
    positionals: ['<token_id>'],
    async run(input) {
      const id = input.positionals[0] ?? '';
      if (!TOKEN_ID.test(id)) throw new UsageError('<token_id> must be 16 hex characters or an AWS access key id, as token list shows');
      const config = input.config();
      const log = createCliLogger('warn');
      const store = openStore(config);
      const audit = openAuditKey(config, log);
      try {
        await audited(config, audit.key, log, 'token-revoke', '', async () => {
          if (!(await new ApiTokens(store).revoke(id))) throw new CliError(`no active token ${id}`);
        });
        out(`revoked ${id}`);
      } finally {
        await audit.close();
        await store.close();
      }
    },
  },
];
