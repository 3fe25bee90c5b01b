import { Pkcs11Module, type Pkcs11Api } from './binding';

/**
 * A factory for the module: load the library and C_Initialize it. The pool calls it on its first
 * connection attempt (and again only if that failed before the library was loaded); after that it
 * re-initialises the same instance. `wrap` lets a test put a fault-injecting proxy around it.
 */
export function moduleLoader(modulePath: string, wrap?: (m: Pkcs11Api) => Pkcs11Api): () => Pkcs11Api {
  return () => {
    const m = new Pkcs11Module(modulePath);
    return wrap ? wrap(m) : m;
  };
}
