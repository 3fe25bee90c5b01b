import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The directory of p11kms's package.json: where `npm start` runs, so the default data dir and the
 * SoftHSM template are found from there whatever the caller's working directory (the CLI too).
 */
export const PACKAGE_ROOT: string = (() => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'hsm-config'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
})();
