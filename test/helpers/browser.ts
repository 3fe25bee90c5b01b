/**
 * Debian's chromium (installed by `scripts/setup.sh --browser`), driven headless by playwright-core;
 * never a browser downloaded by a test tool. The flags keep it from reaching out to Google's
 * services, which this machine's closed network refuses.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ROOT } from './server';

export const CHROMIUM = '/usr/bin/chromium';

/** Screenshots of the console, kept after the run (gitignored). */
export const SHOTS = path.join(ROOT, 'test-output/console');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/setup.sh --browser\` (npm test does)`);
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox needs user namespaces that a root CI container doesn't give it.
    chromiumSandbox: false,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
