/**
 * What a CLI command is: its words, its options and how it runs. src/cli.ts holds the table of
 * commands and does the parsing, help and errors once for all of them.
 */
import type { ParseArgsConfig } from 'node:util';
import type { Config } from '../config/schema';
import { PROJECT_ID } from '../kms/api-tokens';

/** The user's mistake: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A refusal that is not a usage mistake (no such key, …): printed as is, exit 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Input {
  readonly values: Readonly<Record<string, string | boolean | ReadonlyArray<string | boolean> | undefined>>;
  readonly positionals: readonly string[];
  /** The service's configuration, read on first use (a command that names its file needs none). */
  config(): Config;
}

export interface Command {
  /** The words after `p11kms`, e.g. `key list`. */
  readonly name: string;
  /** Its arguments as the help shows them, e.g. `--project <project_id>`. */
  readonly args: string;
  readonly summary: string;
  readonly options?: Options;
  /** Options that must be given; a missing one is named in the error. */
  readonly required?: readonly string[];
  /** Positional arguments by name; `[name]` is optional. */
  readonly positionals?: readonly string[];
  run(input: Input): Promise<void>;
}

export function usageOf(c: Command): string {
  return `p11kms ${c.name}${c.args ? ` ${c.args}` : ''}`;
}

/** A string option's value (parseArgs has checked its type). */
export function text(input: Input, name: string): string | undefined {
  const v = input.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string option's values (`multiple: true`), in the order given. */
export function texts(input: Input, name: string): string[] {
  const v = input.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

export function flag(input: Input, name: string): boolean {
  return input.values[name] === true;
}

export function projectOption(input: Input): string {
  const value = text(input, 'project');
  if (value === undefined) throw new UsageError('missing --project');
  if (!PROJECT_ID.test(value)) throw new UsageError('--project must be 1-64 letters, digits, "-" or "_"');
  return value;
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}
