import assert from 'node:assert/strict';
import { forms, type TestServer } from './server';

/**
 * Collects every secret a test file used (plaintexts, data keys, API tokens) and, at the end,
 * checks that none appears in anything the server logged at debug level.
 */
export class Secrets {
  private readonly values = new Set<string>();

  add(...secrets: Array<Buffer | string | undefined>): void {
    for (const s of secrets) {
      if (s === undefined) continue;
      for (const f of forms(s)) if (f.length >= 8) this.values.add(f);
    }
  }

  /** Every text form collected so far (for checks outside the server's logs, e.g. a browser's). */
  list(): string[] {
    return [...this.values];
  }

  /** A data key as returned in hex (Huawei) or base64 (NCP). */
  addHex(hex: string | undefined): void {
    if (hex) this.add(Buffer.from(hex, 'hex'));
  }
  addBase64(b64: string | undefined): void {
    if (b64) this.add(Buffer.from(b64, 'base64'));
  }

  /** `earlier`: logs of previous incarnations of the server (a test that restarts it). */
  assertNotLogged(server: TestServer, earlier = ''): void {
    const logs = earlier + server.logs();
    // The check must be able to fail: access lines are there, so logging really happened.
    assert.match(logs, /"message":"access"/);
    assert.ok(this.values.size > 0, 'no secrets were collected');
    this.add(server.pin());
    for (const v of this.values) assert.ok(!logs.includes(v), `a secret (${v.length} chars) appears in the logs`);
  }
}
