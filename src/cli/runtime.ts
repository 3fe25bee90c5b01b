/** The full runtime (token, pool, store, services) for the commands that use the token's keys. */
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { openRuntime, type Runtime } from '../runtime';

/** Opened for a command: a token that can't be used at all (module, label, PIN) fails it with why. */
export async function openCliRuntime(config: Config, log: Logger): Promise<Runtime> {
  const runtime = openRuntime(config, log, { keygenInProcess: true });
  const fatal = await runtime.started;
  if (fatal) {
    await runtime.close();
    throw new Error(`cannot use the HSM token: ${fatal}`);
  }
  return runtime;
}
