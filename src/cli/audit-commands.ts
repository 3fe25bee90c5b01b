/** `p11kms audit …`: the keyed audit trail (src/log/audit.ts) of every audit file of the data dir. */
import path from 'node:path';
import { formatHead, parseHead, readHead, verifyAuditFile, type AuditHead, type AuditMacKey } from '../log/audit';
import { createCliLogger } from '../log/logger';
import { openAuditKey } from '../runtime';
import { auditFiles } from '../transport';
import { out, texts, UsageError, type Command, type Input } from './command';

/** The files named, or every audit file of the data dir, with the token's audit key open for `run`. */
async function withAuditFiles(input: Input, run: (files: readonly string[], key: AuditMacKey) => Promise<number>): Promise<void> {
  const config = input.config();
  const named = input.positionals[0];
  const files = named !== undefined ? [named] : auditFiles(config);
  const audit = openAuditKey(config, createCliLogger('error'));
  try {
    process.exitCode = await run(files, audit.key);
  } finally {
    await audit.close();
  }
}

/** `audit head`: one head per file that has a MAC'd record; exit code 1 when one has none. */
async function printHeads(files: readonly string[], key: AuditMacKey): Promise<number> {
  let code = files.length === 0 ? 1 : 0;
  if (files.length === 0) process.stderr.write('p11kms: no audit file\n');
  for (const file of files) {
    const head = await readHead(file, key);
    if (head) out(formatHead(head));
    else {
      process.stderr.write(`p11kms: ${file} holds no record MAC'd by the token\n`);
      code = 1;
    }
  }
  return code;
}

/**
 * `audit verify`: each file's chain and MACs, and the heads given: with the data dir's files, each
 * head goes with the file it names (one that is gone is an error); with one file named, its head
 * may carry another name (a copy).
 */
async function verifyFiles(files: readonly string[], key: AuditMacKey, heads: readonly AuditHead[], named: boolean): Promise<number> {
  let code = 0;
  const byName = new Map(heads.map((h) => [h.file, h]));
  if (files.length === 0 && heads.length === 0) {
    out('BAD no audit file');
    return 1;
  }
  for (const file of files) {
    const name = path.basename(file);
    const head = named ? heads[0] : byName.get(name);
    byName.delete(name);
    const r = await verifyAuditFile(file, { key, ...(head ? { head } : {}) });
    if (r.ok) out(`OK ${name}: ${r.records} records, ${r.macs} MACs`);
    else {
      out(`BAD ${name} line ${r.line}: ${r.reason} (${r.records} records verified before it)`);
      code = 1;
    }
  }
  if (!named) {
    for (const name of byName.keys()) {
      out(`BAD ${name}: a head names it but the data dir has no such audit file`);
      code = 1;
    }
  }
  return code;
}

export const auditCommands: readonly Command[] = [
  {
    name: 'audit verify',
    args: '[file] [--head <head>]...',
    summary:
      "check the hash chain and the token's MACs of every audit file of the data dir (per-node files included), or of one file, and that each head given is still there: \"OK <file>: <n> records, <m> MACs\" per file, or \"BAD <file> line <n>: …\" and exit 1",
    options: { head: { type: 'string', multiple: true } },
    positionals: ['[file]'],
    async run(input) {
      const heads = texts(input, 'head')
        .flatMap((h) => h.split(/\s+/).filter((w) => w.length > 0))
        .map((h) => {
          const parsed = parseHead(h);
          if (!parsed) throw new UsageError(`not a head (as \`p11kms audit head\` prints it): ${h}`);
          return parsed;
        });
      const named = input.positionals[0] !== undefined;
      if (named && heads.length > 1) throw new UsageError('one file takes at most one --head');
      await withAuditFiles(input, (files, key) => verifyFiles(files, key, heads, named));
    },
  },
  {
    name: 'audit head',
    args: '[file]',
    summary: "the last record MAC'd by the token, one line per audit file of the data dir (or of the file): keep it off the host; audit verify --head then detects records removed from the end",
    positionals: ['[file]'],
    async run(input) {
      await withAuditFiles(input, printHeads);
    },
  },
];
