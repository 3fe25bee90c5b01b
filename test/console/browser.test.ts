/**
 * The admin console in a real browser (Debian's chromium, headless, driven by playwright-core):
 * sign in with an admin token, create a key and see it listed, rotate it and see version 2, disable
 * it and see a data-key request refused, read the audit records of all that with the chain
 * verified, the HSM page; a read-only token sees everything and no actions. Throughout, no token or
 * key material may appear in a URL, in storage other than the one token entry, in cookies, or in
 * the browser's console; nothing may break the page's CSP. Screenshots go to test-output/console.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, SHOTS } from '../helpers/browser';
import { Secrets } from '../helpers/secrets';
import { TestServer } from '../helpers/server';

let server: TestServer;
let browser: Browser;
let admin = '';
let reader = '';
const secrets = new Secrets();

/** Everything the browser said or asked for, per context, for the leak checks. */
interface Watch {
  readonly console: string[];
  readonly errors: string[];
  readonly urls: string[];
}

async function open(token: string): Promise<{ context: BrowserContext; page: Page; watch: Watch }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const watch: Watch = { console: [], errors: [], urls: [] };
  page.on('console', (m) => watch.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => watch.errors.push(String(e)));
  page.on('request', (r) => watch.urls.push(r.url()));
  page.on('framenavigated', (f) => watch.urls.push(f.url()));
  await page.goto(`${server.url}/console`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Keys', level: 1 }).waitFor();
  return { context, page, watch };
}

/** No secret in any URL, storage beyond the token's own entry, cookies, console output or the page's text. */
async function assertNoLeak(context: BrowserContext, page: Page, watch: Watch, token: string): Promise<void> {
  // Evaluated in the page (a string: this file is compiled without the DOM's types).
  const storage = (await page.evaluate(`({
    session: Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k) ?? '']),
    local: Object.keys(localStorage).length,
    cookie: document.cookie,
    html: document.documentElement.outerHTML,
    inputs: [...document.querySelectorAll('input')].map((i) => i.value),
  })`)) as { session: Array<[string, string]>; local: number; cookie: string; html: string; inputs: string[] };
  assert.deepEqual(storage.session, [['p11kms.token', token]], 'sessionStorage holds the token and nothing else');
  assert.equal(storage.local, 0, 'nothing in localStorage');
  assert.equal(storage.cookie, '');
  assert.deepEqual(await context.cookies(), []);
  const secretsOf = [token, admin, reader, ...secrets.list()];
  for (const s of secretsOf) {
    for (const u of [...watch.urls, page.url()]) assert.ok(!u.includes(s), `a secret appears in the URL ${u.slice(0, 60)}…`);
    assert.ok(!storage.html.includes(s), 'a secret appears in the page');
    assert.ok(!storage.inputs.some((v) => v.includes(s)), 'a secret is left in a form field');
    assert.ok(!watch.console.some((m) => m.includes(s)), 'a secret appears in the console output');
  }
  assert.deepEqual(watch.errors, [], 'no uncaught error in the page');
  assert.ok(!watch.console.some((m) => /Content Security Policy|Refused to (load|execute|apply|connect)/i.test(m)), `CSP violation: ${watch.console.join('\n')}`);
}

/** Retries `check` until it holds: the page redraws after its data arrives, at the machine's pace. */
async function eventually<T>(read: () => Promise<T>, holds: (v: T) => boolean, what: string): Promise<void> {
  const end = Date.now() + 60_000;
  let last: T = await read();
  while (!holds(last)) {
    if (Date.now() > end) assert.fail(`${what}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

describe('admin console in chromium', { timeout: 600_000 }, () => {
  before(async () => {
    server = await TestServer.start();
    admin = server.token('p1', true);
    reader = server.cli(['token', 'create', '--project', 'p1', '--scope', 'read']).trim();
    secrets.add(admin, reader);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    secrets.assertNotLogged(server);
    await server?.stop();
  });

  it('when an admin signs in, creates, rotates and disables a key, then every step shows and is audited, and nothing leaks', async () => {
    const { context, page, watch } = await open(admin);
    const header = page.locator('#who-text');
    assert.match((await header.textContent()) ?? '', /Project p1 · token [0-9a-f]{16} \(admin\)/);

    // Create a key: a dialog asks for its settings, its button says what it does.
    await page.getByRole('button', { name: 'Create key' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Alias').fill('orders');
    await dialog.getByLabel('Key spec').selectOption('AES_256');
    await dialog.getByLabel('Description (optional)').fill('order records');
    await dialog.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('status').filter({ hasText: 'Key orders created.' }).waitFor();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'orders' }) });
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /AES_256.*Enabled.*1/);
    await shot(page, 'keys');

    // The same alias again: refused, in words, with the vendor's code, no stack.
    await page.getByRole('button', { name: 'Create key' }).click();
    await dialog.getByLabel('Alias').fill('orders');
    await dialog.getByRole('button', { name: 'Create key' }).click();
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: 'already exists' }).waitFor();
    assert.doesNotMatch((await alert.textContent()) ?? '', /at .*\.js|Error:|stack/i);

    // Filter by text and by state.
    await page.getByLabel('Filter by text').fill('no-such-key');
    await page.getByText('No key matches the filter.').waitFor();
    await page.getByLabel('Filter by text').fill('ORD');
    await row.waitFor();
    await page.getByLabel('State').selectOption('Disabled');
    await page.getByText('No key matches the filter.').waitFor();
    await page.getByLabel('State').selectOption('');

    // A data key while the key is enabled: the plaintext must never reach the browser's storage or console.
    await page.getByRole('link', { name: 'orders' }).click();
    await page.getByRole('heading', { name: 'Key orders' }).waitFor();
    const keyId = ((await page.locator('dd code').first().textContent()) ?? '').trim();
    assert.match(keyId, /^[0-9a-f-]{36}$/);
    const dk = await server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': admin }, body: { key_id: keyId, datakey_length: '256' } });
    assert.equal(dk.status, 200);
    secrets.addHex(dk.body.plain_text);

    // Rotate: confirmed first, then version 2 is current.
    await page.getByRole('button', { name: 'Rotate key' }).click();
    await dialog.getByText('makes version 2').waitFor();
    await dialog.getByRole('button', { name: 'Rotate key' }).click();
    await page.getByRole('status').filter({ hasText: 'version 2 is current' }).waitFor();
    assert.equal(await page.locator('#current-version').textContent(), '2');
    await page.getByRole('cell', { name: '2 (current)' }).waitFor();
    await page.getByRole('button', { name: 'Disable version 1' }).waitFor();

    // A cancelled confirmation changes nothing.
    await page.getByRole('button', { name: 'Disable key' }).click();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await page.locator('#key-state').textContent(), 'Enabled');

    // Disable: confirmed, then the state reads Disabled and a data-key request is refused.
    await page.getByRole('button', { name: 'Disable key' }).click();
    await dialog.getByRole('button', { name: 'Disable key' }).click();
    await page.getByRole('status').filter({ hasText: 'Key disabled.' }).waitFor();
    assert.equal(await page.locator('#key-state').textContent(), 'Disabled');
    await page.getByRole('button', { name: 'Enable key' }).waitFor();
    const refused = await server.request('POST', '/v1.0/p1/kms/create-datakey', { headers: { 'X-Auth-Token': admin }, body: { key_id: keyId, datakey_length: '256' } });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.error_code, 'KMS.0209');

    // The key page's latest audit records show all of it, the refusal included.
    await page.getByRole('button', { name: 'Enable key' }).click();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.reload();
    await page.getByRole('heading', { name: 'Key orders' }).waitFor();
    const keyAudit = page.getByRole('table', { name: /audit records concerning this key/ });
    for (const op of ['huawei:create-key', 'huawei:create-datakey', 'ncp:rotate-key', 'huawei:disable-key']) {
      await keyAudit.getByRole('cell', { name: op, exact: true }).first().waitFor();
    }
    await keyAudit.getByRole('row').filter({ hasText: 'huawei:create-datakey' }).filter({ hasText: 'KMS.0209' }).waitFor();
    // The rotation's record names the version it made.
    const rotation = await keyAudit.getByRole('row').filter({ hasText: 'ncp:rotate-key' }).locator('td').allTextContents();
    assert.equal(rotation[3], '2');
    await shot(page, 'key');

    // The audit page: chain verified, the project's records, filters.
    await page.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    assert.match((await page.locator('#chain-summary').textContent()) ?? '', /^Chain verified: \d+ files?, \d+ records/);
    const records = page.getByRole('table', { name: /matching records of project p1/ });
    for (const op of ['huawei:create-key', 'ncp:rotate-key', 'huawei:disable-key', 'huawei:create-datakey']) {
      await records.getByRole('cell', { name: op, exact: true }).first().waitFor();
    }
    await shot(page, 'audit');
    await page.getByLabel('Operation').fill('rotate');
    await page.getByLabel('Outcome').selectOption('success');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/#\/audit\?operation=rotate&outcome=success$/);
    await eventually(
      () => records.locator('tbody tr td:nth-child(2)').allTextContents(),
      (ops) => ops.length >= 1 && ops.every((o) => o === 'ncp:rotate-key'),
      'only rotations',
    );
    await page.getByLabel('Operation').fill('create-datakey');
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await records.getByRole('cell', { name: 'KMS.0209' }).waitFor();
    // A time window in the future holds nothing.
    await page.getByLabel('Operation').fill('');
    await page.getByLabel('Outcome').selectOption('');
    await page.getByLabel('From (local time)').fill('2999-01-01T00:00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No audit record matches.').waitFor();

    // The HSM page.
    await page.getByRole('navigation').getByRole('link', { name: 'HSM' }).click();
    await page.getByRole('heading', { name: 'HSM', level: 1 }).waitFor();
    assert.match((await page.locator('#health-summary').textContent()) ?? '', /^Healthy/);
    await page.getByText('p11kms-dev').waitFor();
    await page.getByText('Connected').waitFor();
    await shot(page, 'hsm');

    await assertNoLeak(context, page, watch, admin);
    await context.close();
  });

  it('when a read-only token signs in, then it sees the keys and the trail but is offered no action', async () => {
    const { context, page, watch } = await open(reader);
    assert.match((await page.locator('#who-text').textContent()) ?? '', /\(read-only\)/);
    await page.getByRole('link', { name: 'orders' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Create key' }).count(), 0);
    await page.getByRole('link', { name: 'orders' }).click();
    await page.getByRole('heading', { name: 'Key orders' }).waitFor();
    await page.getByText('This token may read only').waitFor();
    for (const name of ['Rotate key', 'Enable key', 'Disable key', 'Schedule deletion', 'Disable version 1', 'Enable version 1']) {
      assert.equal(await page.getByRole('button', { name }).count(), 0, `no ${name} button`);
    }
    await page.getByRole('cell', { name: 'ncp:rotate-key' }).first().waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'HSM' }).click();
    await page.getByRole('heading', { name: 'HSM', level: 1 }).waitFor();
    await shot(page, 'read-only');
    await assertNoLeak(context, page, watch, reader);

    // Signing out forgets the token.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
    await context.close();
  });

  it('when a token is refused, then the sign-in says so in words and keeps nothing', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/console`);
    await page.getByLabel('API token').fill('p11kms_0000000000000000_' + 'A'.repeat(43));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'The token was refused' }).waitFor();
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
    await context.close();
  });
});
