/**
 * Makes NSS softokn's key database a usable dev token (KMS_TOKEN_PROFILE=nss, scripts/dev-token.sh):
 * a fresh database's token has no user PIN; the security officer logs in with the empty PIN and
 * sets it (C_InitPIN). Over PKCS#11 only, so nothing but libsoftokn3 is needed.
 *
 *   node dist/src/hsm/binding-nss-token.js   (reads the same settings as the server)
 */
import { mkdirSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { loadConfig } from '../config/load';

export function initNssToken(modulePath: string, libraryParameters: string, label: string, pin: string): 'initialised' | 'exists' {
  const lib = new pkcs11js.PKCS11();
  lib.load(modulePath);
  lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK, libraryParameters });
  try {
    const slots = lib.C_GetSlotList(true).map((slot) => ({ slot, info: lib.C_GetTokenInfo(slot) }));
    const found = slots.find((t) => t.info.label.trim() === label);
    if (!found) throw new Error(`no NSS token labelled '${label}'; tokens present: ${slots.map((t) => `'${t.info.label.trim()}'`).join(', ')}`);
    if (found.info.flags & pkcs11js.CKF_USER_PIN_INITIALIZED) return 'exists';
    const s = lib.C_OpenSession(found.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    try {
      lib.C_Login(s, pkcs11js.CKU_SO, '');
      lib.C_InitPIN(s, pin);
      lib.C_Logout(s);
    } finally {
      lib.C_CloseSession(s);
    }
    return 'initialised';
  } finally {
    lib.C_Finalize();
  }
}

if (require.main === module) {
  const config = loadConfig();
  const params = config.pkcs11LibraryParameters;
  const dir = params ? /configdir='sql:([^']+)'/.exec(params)?.[1] : undefined;
  if (!params || !dir) {
    process.stderr.write('[dev-token] KMS_TOKEN_PROFILE=nss needs its library parameters with configdir=\'sql:DIR\'\n');
    process.exit(1);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const done = initNssToken(config.pkcs11Module, params, config.tokenLabel, config.pin);
  if (done === 'initialised') process.stderr.write(`[dev-token] NSS token '${config.tokenLabel}' initialised in ${dir}\n`);
}
