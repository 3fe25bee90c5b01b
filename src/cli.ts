/**
 * `p11kms` command line. stdout carries only the command's result (a token, key JSON), so scripts
 * can capture it; diagnostics go to stderr. Each command is an entry of COMMANDS (src/cli/*):
 * parsing, required options, help and error reporting are done here once for all of them.
 *
 * Exit codes: 0 done (and for help / --version), 1 refused or failed, 2 a usage mistake.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/load';
import { PACKAGE_ROOT } from './config/package-root';
import type { Config } from './config/schema';
import { isKmsError } from './errors/kms-error';
import { exitProcess } from './hsm';
import { auditCommands } from './cli/audit-commands';
import { CliError, UsageError, usageOf, type Command, type Input } from './cli/command';
import { keyCommands } from './cli/key-commands';
import { tokenCommands } from './cli/token-commands';

const COMMANDS: readonly Command[] = [...tokenCommands, ...keyCommands, ...auditCommands];

const HELP_WORDS = new Set(['help', '--help', '-h']);
const VERSION_WORDS = new Set(['version', '--version', '-V']);

function help(): string {
  const lines = COMMANDS.map((c) => `  ${usageOf(c)}\n      ${c.summary}`);
  return [
    'usage: p11kms <command> [options]   (the server\'s environment: KMS_DATA_DIR, KMS_DB, …; see README.md)',
    '',
    'commands:',
    ...lines,
    '  p11kms help [command]',
    '  p11kms --version',
    '',
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return `p11kms ${String(pkg.version)}\n`;
}

/** The command named by the first words of argv (the longest name that matches). */
function commandOf(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of COMMANDS) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.name.split(' ').length)) best = c;
  }
  return best && { command: best, rest: argv.slice(best.name.split(' ').length) };
}

function parse(command: Command, args: string[]): Input {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: command.options ?? {}, allowPositionals: true, strict: true });
  } catch (e) {
    // node:util's messages name the option at fault ("Unknown option '--x'", "Option '--alias <value>' argument missing").
    throw new UsageError(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
  const missing = (command.required ?? []).filter((name) => parsed.values[name] === undefined).map((n) => `--${n}`);
  const names = command.positionals ?? [];
  const needed = names.filter((n) => !n.startsWith('['));
  missing.push(...needed.slice(parsed.positionals.length));
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(', ')}`);
  if (parsed.positionals.length > names.length) throw new UsageError(`unexpected argument: ${parsed.positionals.slice(names.length).join(' ')}`);
  let config: Config | undefined;
  return {
    values: parsed.values as Input['values'],
    positionals: parsed.positionals,
    config: () => (config ??= loadConfig()),
  };
}

async function run(argv: string[]): Promise<void> {
  if (argv.length === 0 || HELP_WORDS.has(argv[0]!)) {
    const about = commandOf(argv.slice(1));
    process.stdout.write(about ? `usage: ${usageOf(about.command)}\n  ${about.command.summary}\n` : help());
    return;
  }
  if (VERSION_WORDS.has(argv[0]!)) {
    process.stdout.write(version());
    return;
  }
  const found = commandOf(argv);
  if (!found) throw new UsageError(`unknown command: ${argv.slice(0, 2).join(' ')}`);
  if (found.rest.some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`usage: ${usageOf(found.command)}\n  ${found.command.summary}\n`);
    return;
  }
  try {
    await found.command.run(parse(found.command, found.rest));
  } catch (e) {
    if (e instanceof UsageError) e.message = `${e.message}\nusage: ${usageOf(found.command)}`;
    throw e;
  }
}

// Ended explicitly: a session thread stuck in a call to a silent token would hold a natural exit forever.
run(process.argv.slice(2)).then(
  () => exitProcess(Number(process.exitCode ?? 0)),
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`p11kms: ${e.message}\n${e.message.includes('\nusage: ') ? '' : `\n${help()}`}`);
      process.exit(2);
    }
    if (isKmsError(e)) process.stderr.write(`p11kms: ${e.code}: ${e.message}\n`);
    else if (e instanceof CliError) process.stderr.write(`p11kms: ${e.message}\n`);
    else process.stderr.write(`p11kms: ${e instanceof Error ? e.message : String(e)}\n`);
    exitProcess(1);
  },
);
