/**
 * `p11kms` command line. stdout carries only the command's result (a token, or key JSON), so
 * scripts can capture it; diagnostics go to stderr.
 *
 *   p11kms token create --project <id> [--admin | --scope admin,crypto,read] [--expires 30d|12h|<ISO date>] [--aws]
 *   p11kms token list [--project <id>]          (JSON lines; never the secret or its hash)
 *   p11kms token revoke <token id>
 *   p11kms audit verify [file] [--head <head>]…  (default: every audit file of the data dir; MACs checked with the token)
 *   p11kms audit head [file]                     (the last MAC'd record of each file, to keep off the host)
 *   p11kms key create --project <id> --alias <name> --spec AES_256|RSA_2048 [--convergent] [--description <text>]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AwsCredentials } from './api/aws/credentials';
import { loadConfig } from './config/load';
import { isKmsError } from './errors/kms-error';
import { ApiTokens, DEFAULT_SCOPES, isScope, parseExpiry, PROJECT_ID, SCOPES, TOKEN_ID, type Scope } from './kms/api-tokens';
import { isKeySpecName } from './kms/key-specs';
import { createCliLogger, type Logger } from './log/logger';
import { exitProcess } from './hsm';
import { openAuditKey, openRuntime, openStore } from './runtime';
import { AuditLog, formatHead, parseHead, readHead, verifyAuditFile, type AuditEntry, type AuditHead, type AuditMacKey } from './log/audit';
import { auditFile, auditFiles } from './transport';
import type { Config } from './config/schema';

const USAGE = `usage:
  p11kms token create --project <project_id> [--admin | --scope admin,crypto,read] [--expires 30d|12h|<ISO date>] [--aws]
      --aws: an AWS access key (JSON line: accessKeyId, secretAccessKey, accountId, region) for the AWS dialect
  p11kms token list [--project <project_id>]
  p11kms token revoke <token_id>
  p11kms audit verify [file] [--head <head>]...
  p11kms audit head [file]
  p11kms key create --project <project_id> --alias <name> --spec AES_256|RSA_2048 [--convergent] [--description <text>]`;

class UsageError extends Error {}

/** --admin is all three scopes; --scope names them; neither is crypto+read. */
function tokenScopes(admin: boolean, list: string | undefined): Scope[] {
  if (admin && list !== undefined) throw new UsageError('use --admin or --scope, not both');
  if (admin) return [...SCOPES];
  if (list === undefined) return [...DEFAULT_SCOPES];
  const scopes = list.split(',').map((x) => x.trim());
  if (scopes.length === 0 || !scopes.every(isScope)) throw new UsageError('--scope must be a comma-separated list of admin, crypto, read');
  return scopes.filter(isScope);
}

function project(value: string | undefined): string {
  if (!value || !PROJECT_ID.test(value)) throw new UsageError('--project must be 1-64 letters, digits, "-" or "_"');
  return value;
}

/**
 * The CLI's own audit chain (`audit-cli.log` beside the server's): a second writer appending to the
 * server's file would break its chain. The record is durable before the command prints its result;
 * when it can't be written and audit is required, the command fails and prints nothing.
 */
async function audited<T>(
  config: Config,
  key: AuditMacKey,
  log: Logger,
  operation: string,
  projectId: string,
  run: () => Promise<T> | T,
  keyOf: (result: T) => { keyId: string; keyVersion: number } | undefined = () => undefined,
): Promise<T> {
  const audit = new AuditLog(auditFile(config, 'cli'), config.auditRequired, config.auditFsync, { key, log });
  const entry = (outcome: AuditEntry['outcome'], result?: T, errorCode: string | null = null): AuditEntry => ({
    time: new Date().toISOString(),
    project: projectId,
    tokenId: null,
    operation: `cli:${operation}`,
    keyId: result === undefined ? null : (keyOf(result)?.keyId ?? null),
    keyVersion: result === undefined ? null : (keyOf(result)?.keyVersion ?? null),
    source: 'local',
    requestId: '',
    status: outcome === 'success' ? 0 : 1,
    outcome,
    errorCode,
  });
  try {
    let result: T;
    try {
      result = await run();
    } catch (e) {
      await audit.write(entry('failure', undefined, isKmsError(e) ? e.code : 'error')).catch(() => undefined);
      throw e;
    }
    try {
      await audit.write(entry('success', result));
    } catch {
      if (audit.required) throw new Error('the audit record could not be written (KMS_AUDIT_REQUIRED)');
    }
    return result;
  } finally {
    await audit.close();
  }
}

async function run(argv: string[]): Promise<void> {
  const [noun, verb, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      project: { type: 'string' },
      admin: { type: 'boolean', default: false },
      aws: { type: 'boolean', default: false },
      scope: { type: 'string' },
      expires: { type: 'string' },
      alias: { type: 'string' },
      spec: { type: 'string', default: 'AES_256' },
      convergent: { type: 'boolean', default: false },
      description: { type: 'string', default: '' },
      head: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (noun === 'audit' && (verb === 'verify' || verb === 'head')) {
    if (positionals.length > 1) throw new UsageError(`audit ${verb} takes at most one file`);
    if (verb === 'head' && values.head !== undefined) throw new UsageError('--head is for audit verify');
    const heads = (values.head ?? []).flatMap((h) => h.split(/\s+/).filter((w) => w.length > 0)).map((h) => {
      const parsed = parseHead(h);
      if (!parsed) throw new UsageError(`not a head (as \`p11kms audit head\` prints it): ${h}`);
      return parsed;
    });
    const config = loadConfig();
    const files = positionals[0] !== undefined ? [positionals[0]] : auditFiles(config);
    if (positionals[0] !== undefined && heads.length > 1) throw new UsageError('one file takes at most one --head');
    const audit = openAuditKey(config, createCliLogger('error'));
    try {
      process.exitCode = verb === 'head' ? await printHeads(files, audit.key) : await verifyFiles(files, audit.key, heads, positionals[0] !== undefined);
    } finally {
      audit.close();
    }
    return;
  }

  if (positionals.length > (noun === 'token' && verb === 'revoke' ? 1 : 0)) throw new UsageError(`unexpected argument: ${positionals.join(' ')}`);
  const config = loadConfig();
  const log = createCliLogger('warn');

  if (noun === 'token' && verb === 'create') {
    const projectId = project(values.project);
    const scopes = tokenScopes(values.admin === true, values.scope);
    const expiresAt = values.expires === undefined ? null : parseExpiry(values.expires);
    if (expiresAt === undefined) throw new UsageError('--expires must be like 30d, 12h, 45m, 90s or a future ISO 8601 date');
    if (values.aws === true) {
      // The secret is sealed under a key in the token: this needs the HSM, not only the store.
      const runtime = openRuntime(config, log, { keygenInProcess: true });
      try {
        const cred = await audited(config, runtime.auditKey, log, 'token-create', projectId, () => new AwsCredentials(runtime.services, config.awsRegion).create(projectId, scopes, expiresAt));
        process.stdout.write(`${JSON.stringify(cred)}\n`);
      } finally {
        await runtime.close();
      }
      return;
    }
    const store = openStore(config);
    const audit = openAuditKey(config, log);
    try {
      const { token } = await audited(config, audit.key, log, 'token-create', projectId, () => new ApiTokens(store).create(projectId, scopes, expiresAt));
      process.stdout.write(`${token}\n`);
    } finally {
      audit.close();
      await store.close();
    }
    return;
  }

  if (noun === 'token' && verb === 'list') {
    const projectId = values.project === undefined ? undefined : project(values.project);
    const store = openStore(config);
    try {
      for (const t of await new ApiTokens(store).list(projectId)) process.stdout.write(`${JSON.stringify(t)}\n`);
    } finally {
      await store.close();
    }
    return;
  }

  if (noun === 'token' && verb === 'revoke') {
    const id = positionals[0];
    if (!id || !TOKEN_ID.test(id)) throw new UsageError('token revoke needs a token id (16 hex, as token list shows)');
    const store = openStore(config);
    const audit = openAuditKey(config, log);
    try {
      await audited(config, audit.key, log, 'token-revoke', '', async () => {
        if (!(await new ApiTokens(store).revoke(id))) throw new Error(`no active token ${id}`);
      });
      process.stdout.write(`revoked ${id}\n`);
    } finally {
      audit.close();
      await store.close();
    }
    return;
  }

  if (noun === 'key' && verb === 'create') {
    const projectId = project(values.project);
    const alias = values.alias ?? '';
    if (!/^[a-zA-Z0-9:/_-]{1,255}$/.test(alias)) throw new UsageError('--alias must be 1-255 of a-z A-Z 0-9 : / _ -');
    const spec = values.spec ?? 'AES_256';
    if (!isKeySpecName(spec)) throw new UsageError('--spec must be AES_256 or RSA_2048');
    const runtime = openRuntime(config, log, { keygenInProcess: true });
    const fatal = await runtime.started;
    if (fatal) {
      runtime.close();
      throw new Error(`cannot use the HSM token: ${fatal}`);
    }
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
            description: values.description ?? '',
            spec,
            usage: spec === 'AES_256' ? 'ENCRYPT_DECRYPT' : 'ANY',
            convergent: values.convergent === true,
          }),
        (k) => ({ keyId: k.keyId, keyVersion: k.currentVersion }),
      );
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
      await runtime.close();
    }
    return;
  }
  throw new UsageError(`unknown command: ${[noun, verb].filter(Boolean).join(' ') || '(none)'}`);
}

/** `audit head`: one head per file that has a MAC'd record; exit code 1 when one has none. */
async function printHeads(files: readonly string[], key: AuditMacKey): Promise<number> {
  let code = files.length === 0 ? 1 : 0;
  if (files.length === 0) process.stderr.write('p11kms: no audit file\n');
  for (const file of files) {
    const head = await readHead(file, key);
    if (head) process.stdout.write(`${formatHead(head)}\n`);
    else {
      process.stderr.write(`p11kms: ${file} holds no record MAC'd by the token\n`);
      code = 1;
    }
  }
  return code;
}

/**
 * `audit verify`: each file's chain and MACs, and the heads given: with the data dir's files, each
 * head goes with the file it names (one that is gone is an error); with one file named, its head
 * may carry another name (a copy).
 */
async function verifyFiles(files: readonly string[], key: AuditMacKey, heads: readonly AuditHead[], named: boolean): Promise<number> {
  let code = 0;
  const byName = new Map(heads.map((h) => [h.file, h]));
  if (files.length === 0 && heads.length === 0) {
    process.stdout.write('BAD no audit file\n');
    return 1;
  }
  for (const file of files) {
    const name = path.basename(file);
    const head = named ? heads[0] : byName.get(name);
    byName.delete(name);
    const r = await verifyAuditFile(file, { key, ...(head ? { head } : {}) });
    if (r.ok) process.stdout.write(`OK ${name}: ${r.records} records, ${r.macs} MACs\n`);
    else {
      process.stdout.write(`BAD ${name} line ${r.line}: ${r.reason} (${r.records} records verified before it)\n`);
      code = 1;
    }
  }
  if (!named) {
    for (const name of byName.keys()) {
      process.stdout.write(`BAD ${name}: a head names it but the data dir has no such audit file\n`);
      code = 1;
    }
  }
  return code;
}

// Ended explicitly: a session thread stuck in a call to a silent token would hold a natural exit forever.
run(process.argv.slice(2)).then(() => exitProcess(Number(process.exitCode ?? 0)), (e: unknown) => {
  if (e instanceof UsageError || (e instanceof TypeError && 'code' in e)) {
    process.stderr.write(`p11kms: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (isKmsError(e)) process.stderr.write(`p11kms: ${e.code}: ${e.message}\n`);
  else process.stderr.write(`p11kms: ${e instanceof Error ? e.message : String(e)}\n`);
  exitProcess(1);
});
