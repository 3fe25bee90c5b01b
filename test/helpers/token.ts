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
    const params = config.pkcs11LibraryParameters;
    this.lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK, ...(params ? { libraryParameters: params } : {}) });
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

  /** Every p11kms object on the token as key id (UUID form) and version, one entry per object. */
  allObjects(): Array<{ keyId: string; version: number }> {
    this.lib.C_FindObjectsInit(this.session, [{ type: pkcs11js.CKA_TOKEN, value: true }]);
    const all = this.lib.C_FindObjects(this.session, 100000);
    this.lib.C_FindObjectsFinal(this.session);
    const out: Array<{ keyId: string; version: number }> = [];
    for (const h of all) {
      let v: unknown;
      try {
        v = this.lib.C_GetAttributeValue(this.session, h, [{ type: pkcs11js.CKA_ID }])[0]?.value;
      } catch {
        continue; // destroyed by the service since the search (reconciliation, purge)
      }
      if (!Buffer.isBuffer(v) || v.length !== 21) continue;
      const hex = v.subarray(0, 16).toString('hex');
      const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      out.push({ keyId, version: v.readUInt32BE(16) });
    }
    return out;
  }

  /**
   * Leaves on the token what a crash between "objects made" and "row written" leaves: an AES key
   * with the service's CKA_ID layout and label for a key id and version the store does not know.
   * It may neither encrypt nor decrypt, so a service that ever used it would fail loudly.
   */
  plantOrphan(keyId: string, version: number): void {
    const id = Buffer.alloc(21);
    Buffer.from(keyId.replace(/-/g, ''), 'hex').copy(id, 0);
    id.writeUInt32BE(version, 16);
    this.lib.C_GenerateKey(this.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_LABEL, value: `p11kms/${keyId}/v${version}` },
    ]);
  }

  close(): void {
    this.lib.C_CloseSession(this.session);
    this.lib.C_Finalize();
  }
}
