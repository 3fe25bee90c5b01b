/**
 * The dev token's SoftHSM config ($KMS_DATA_DIR/softhsm2.conf). SoftHSM only takes an absolute
 * token directory, so the file is brought up to date with the data dir's current place before
 * every C_Initialize: a data dir that was copied or moved keeps working. Other lines the operator
 * changed are kept.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './package-root';

const TOKENDIR = /^directories\.tokendir\s*=.*$/m;

/** The config text for `dataDir`: the existing file's (or the template's) with its tokendir set. */
export function softHsmConfText(existing: string | undefined, dataDir: string): string {
  const base = existing ?? readFileSync(path.join(PACKAGE_ROOT, 'hsm-config/softhsm2.conf.template'), 'utf8');
  const line = `directories.tokendir = ${path.join(dataDir, 'tokens')}`;
  if (TOKENDIR.test(base)) return base.replace(TOKENDIR, line);
  return `${base.endsWith('\n') || base === '' ? base : `${base}\n`}${line}\n`;
}

/** Rewrites `confPath` when its tokendir is not `dataDir`/tokens (atomically: workers may race). */
export function syncSoftHsmConf(confPath: string, dataDir: string): void {
  const existing = existsSync(confPath) ? readFileSync(confPath, 'utf8') : undefined;
  const wanted = softHsmConfText(existing, dataDir);
  if (wanted === existing) return;
  const tmp = `${confPath}.${process.pid}.tmp`;
  writeFileSync(tmp, wanted, { mode: 0o600 });
  renameSync(tmp, confPath);
}
