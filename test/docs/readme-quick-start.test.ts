/**
 * The README's quick start, run verbatim: the first shell block under "## Quick start" is handed to
 * bash as it is written, against a fresh server and data dir, from the repository's directory.
 * Each `echo "…came back"` check the block makes must be printed, so a new dialect's section is
 * held to the same standard as soon as it is added.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT, TestServer } from '../helpers/server';

/** The first ```sh block of the section `heading` (up to the next `## ` heading). */
export function shellBlock(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has no "${heading}" section`);
  const next = markdown.indexOf('\n## ', start + heading.length + 2);
  const section = markdown.slice(start, next < 0 ? undefined : next);
  const m = /\n```(?:sh|bash)\n([\s\S]*?)\n```/.exec(section);
  assert.ok(m, `no shell block under "${heading}"`);
  return m[1]!;
}

function bash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

describe('README quick start', () => {
  it('when its shell block is run as written on a fresh data dir, then every data key it asks for comes back from decrypt', async () => {
    const block = shellBlock(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), '## Quick start');
    const checks = [...block.matchAll(/echo "([^"$]*came back)"/g)].map((m) => m[1]!);
    assert.ok(checks.length >= 2, 'the block checks at least two dialects');

    const server = await TestServer.start();
    servers.push(server);
    const port = new URL(server.url).port;
    const result = await bash(block, { ...server.env, PORT: port });
    assert.equal(result.code, 0, `the block failed:\n${result.stdout}\n${result.stderr}`);
    for (const check of checks) assert.ok(result.stdout.split('\n').includes(check), `"${check}" was not printed:\n${result.stdout}\n${result.stderr}`);
  });
});
