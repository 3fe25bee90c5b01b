import { HsmError, Pkcs11Module, type SlotHandle } from './binding';

export interface TokenLocation {
  readonly module: Pkcs11Module;
  readonly slot: SlotHandle;
}

/** Loads the module once and finds the token by label; slot ids change between runs, labels don't. */
export function openToken(modulePath: string, tokenLabel: string): TokenLocation {
  const module = new Pkcs11Module(modulePath);
  try {
    const found = module.tokens().find((t) => t.label === tokenLabel);
    if (!found) throw new HsmError(0xe0, 'CKR_TOKEN_NOT_PRESENT', 'findToken');
    return { module, slot: found.slot };
  } catch (e) {
    module.finalize();
    throw e;
  }
}
