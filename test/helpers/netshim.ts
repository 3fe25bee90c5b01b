/**
 * netshim (shared/tools/netshim): a PKCS#11 module in front of the dev SoftHSM token that adds a
 * round trip to every session-level call and can fall silent (a network partition). Built once
 * per test process from the shared tools, which sit beside the repository (CI: ../shared) or
 * beside the folder of its worktree.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './server';

let built: string | undefined;

export function netshimModule(): string {
  if (built) return built;
  const dirs = [path.join(ROOT, '../shared/tools/netshim'), path.join(ROOT, '../../shared/tools/netshim')];
  const dir = dirs.find((d) => existsSync(path.join(d, 'build')));
  if (!dir) throw new Error(`netshim not found in ${dirs.join(' or ')}`);
  const out = mkdtempSync(path.join(tmpdir(), 'p11kms-netshim-'));
  built = execFileSync('bash', [path.join(dir, 'build'), out], { encoding: 'utf8' }).trim().split('\n').pop()!;
  return built;
}

/** The settings that put netshim between a server and the dev token of `dataDir`. */
export function throughNetshim(dataDir: string, extra: { delayUs?: number; hangFile?: string; trace?: string } = {}): Record<string, string> {
  return {
    KMS_PKCS11_MODULE: netshimModule(),
    SOFTHSM2_CONF: path.join(dataDir, 'softhsm2.conf'),
    KMS_PIN_FILE: path.join(dataDir, 'token.pin'),
    NETSHIM_DELAY_US: String(extra.delayUs ?? 200),
    ...(extra.hangFile ? { NETSHIM_HANG_FILE: extra.hangFile } : {}),
    ...(extra.trace ? { NETSHIM_TRACE: extra.trace } : {}),
  };
}
