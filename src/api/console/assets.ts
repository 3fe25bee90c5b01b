/**
 * The console's static files: the page (console/index.html), its style sheet and the scripts tsc
 * compiled from console/src into dist/console. Read once when the app is built; served only by
 * name from that list, with a CSP that allows the service's own scripts, styles and API and
 * nothing else (no inline script, no other origin, no form posts, no framing).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../../..');

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

export interface ConsoleAssets {
  readonly page: Asset | undefined;
  /** By file name, as requested under /console/assets/. */
  readonly files: ReadonlyMap<string, Asset>;
}

export function loadAssets(root: string = ROOT): ConsoleAssets {
  const files = new Map<string, Asset>();
  const read = (file: string, type: string): Asset | undefined => (existsSync(file) ? { type, body: readFileSync(file) } : undefined);
  const css = read(path.join(root, 'console/console.css'), 'text/css; charset=utf-8');
  if (css) files.set('console.css', css);
  const js = path.join(root, 'dist/console');
  if (existsSync(js)) {
    for (const name of readdirSync(js)) {
      if (/^[a-z-]+\.js$/.test(name)) files.set(name, { type: 'text/javascript; charset=utf-8', body: readFileSync(path.join(js, name)) });
    }
  }
  return { page: read(path.join(root, 'console/index.html'), 'text/html; charset=utf-8'), files };
}
