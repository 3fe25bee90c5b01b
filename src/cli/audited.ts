import { isKmsError } from '../errors/kms-error';
import { AuditLog, type AuditEntry, type AuditMacKey } from '../log/audit';
import type { Logger } from '../log/logger';
import { auditFile } from '../transport';
import type { Config } from '../config/schema';

/**
 * Runs a CLI change with its audit record in the CLI's own chain (`audit-cli.log` beside the
 * server's), MAC'd by the token's audit key: a second writer appending to the server's file would
 * break its chain. The record is durable before the command prints its result; when it can't be
 * written and audit is required, the command fails and prints nothing.
 */
export async function audited<T>(
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
