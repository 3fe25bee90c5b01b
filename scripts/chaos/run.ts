/**
 * `npm run chaos [-- --rounds N --fault-seconds S --seed X]`: the reliability scenarios of
 * test/hsm/faults.test.ts and test/reliability/crash.test.ts, run longer and reported in full.
 *  1. HSM faults against a live service (in process, fault-injecting proxy around the real module);
 *  2. SIGKILL of the real server at random points of a mixed load, restarted on the same data, with
 *     the store ↔ token ↔ ciphertext checks after every restart.
 * Exits 1 when anything was lost or wrong.
 */
import { parseArgs } from 'node:util';
import { formatReport, runCrashScenario } from './crash';
import { formatFaultReport, runFaultScenario } from './faults';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '40' },
      'fault-seconds': { type: 'string', default: '30' },
      seed: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
    },
  });
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  const log = (line: string) => console.log(`  ${line}`);

  console.log(`== HSM faults (${values['fault-seconds']} s) ==`);
  const faults = await runFaultScenario({ seconds: Number(values['fault-seconds']), concurrency: Number(values.concurrency), log });
  console.log(formatFaultReport(faults));

  console.log(`\n== kill -9 and restart (${values.rounds} rounds, seed ${seed}) ==`);
  const crash = await runCrashScenario({
    rounds: Number(values.rounds),
    loadMs: [200, 2500],
    concurrency: Number(values.concurrency),
    seed,
    checkPerRound: 300,
    log,
  });
  console.log(formatReport(crash));

  const failed = faults.problems.length + crash.problems.length;
  console.log(`\n${failed === 0 ? 'OK: nothing lost' : `FAILED: ${failed} problems`}`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
