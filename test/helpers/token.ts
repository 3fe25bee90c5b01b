/**
 * The test's own view of the service's token: a PKCS#11 session opened outside the service,
 * with the same module, token label and PIN, to check what really is on the token.
 */
import assert from 'node:assert/strict';
import * as pkcs11js from 'pkcs11js';
import { loadConfig } from '../../src/config/load';
import type { TestServer } from './server';

export class TokenView {
  readonly lib: pkcs11js.PKCS11;
  readonly session: Buffer;

  constructor(server: TestServer) {
    const config = loadConfig(server.env);
    process.env['SOFTHSM2_CONF'] = server.softhsmConf();
    this.lib = new pkcs11js.PKCS11();
    this.lib.load(config.pkcs11Module);
    this.lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    const slot = this.lib.C_GetSlotList(true).find((s) => this.lib.C_GetTokenInfo(s).label.trim() === config.tokenLabel);
    assert.ok(slot, 'dev token not found');
    this.session = this.lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    this.lib.C_Login(this.session, pkcs11js.CKU_USER, server.pin());
  }

  /** Token objects whose CKA_ID starts with the key id (src/hsm/hsm.ts objectId), optionally of one version. */
  objectsOf(keyId: string, version?: number): Buffer[] {
    const prefix = Buffer.from(keyId.replace(/-/g, ''), 'hex');
    this.lib.C_FindObjectsInit(this.session, [{ type: pkcs11js.CKA_TOKEN, value: true }]);
    const all = this.lib.C_FindObjects(this.session, 10000);
    this.lib.C_FindObjectsFinal(this.session);
    return all.filter((h) => {
      const [id] = this.lib.C_GetAttributeValue(this.session, h, [{ type: pkcs11js.CKA_ID }]);
      const v = id?.value;
      return Buffer.isBuffer(v) && v.length === 21 && v.subarray(0, 16).equals(prefix) && (version === undefined || v.readUInt32BE(16) === version);
    });
  }

  close(): void {
    this.lib.C_CloseSession(this.session);
    this.lib.C_Finalize();
  }
}
