/**
 * The key-generation process (keygen-process.ts starts it): a PKCS#11 application of its own, with
 * its own module initialisation, session and login, that makes the token objects of new CMK
 * versions and destroys those of removed ones: the service's only writer of token objects. It
 * answers each job with success (and a count) or the CKR, never with a handle (handles mean
 * nothing in another process: the service finds the objects by CKA_ID).
 *
 * It ends when the service does (the IPC channel closes, even after a kill -9) and after a token or
 * session fault, so that the next job starts from a fresh initialisation.
 */
import { C, HsmError, Pkcs11Module, type SessionHandle, hsmError } from './binding';
import { classify } from './ckr';
import { revive, type KeygenOpen, type KeygenReply, type KeygenRequest } from './keygen-protocol';

let open: KeygenOpen | undefined;
let token: { mod: Pkcs11Module; session: SessionHandle } | undefined;

function connect(o: KeygenOpen, again?: Pkcs11Module): { mod: Pkcs11Module; session: SessionHandle } {
  const mod = again ?? new Pkcs11Module(o.modulePath);
  if (again) mod.reinitialize();
  const found = mod.tokens().find((t) => t.label === o.label);
  if (!found) throw hsmError('CKR_TOKEN_NOT_PRESENT', 'findToken');
  const session = mod.openSession(found.slot);
  try {
    mod.login(session, o.pin);
  } catch (e) {
    if (!(e instanceof HsmError && e.ckrName === 'CKR_USER_ALREADY_LOGGED_IN')) throw e;
  }
  return { mod, session };
}

/** Destroys every token object carrying one of `ids`; returns how many. */
function destroyAll(mod: Pkcs11Module, session: SessionHandle, ids: readonly Buffer[]): number {
  let count = 0;
  for (const id of ids) {
    for (const h of mod.findAllObjects(session, [{ type: C.CKA_ID, value: id }, { type: C.CKA_TOKEN, value: true }])) {
      mod.destroyObject(session, h);
      count++;
    }
  }
  return count;
}

function send(reply: KeygenReply): Promise<void> {
  return new Promise((resolve) => process.send!(reply, undefined, undefined, () => resolve()));
}

process.on('disconnect', () => process.exit(0));
process.on('message', (raw: KeygenRequest) => {
  if (raw.kind === 'open') {
    open = raw;
    try {
      token = connect(open);
    } catch {
      // The first job connects again and answers with the CKR.
    }
    void send({ ready: true });
    return;
  }
  const job = revive(raw);
  let failure: HsmError | undefined;
  let count = 0;
  try {
    if (!open) throw hsmError('CKR_CRYPTOKI_NOT_INITIALIZED', 'keygen');
    token ??= connect(open);
    const { mod, session } = token;
    if (job.kind === 'aes') for (const t of job.templates) mod.generateKey(session, { kind: 'aes-key-gen' }, t);
    else if (job.kind === 'rsa') mod.generateKeyPair(session, { kind: 'rsa-key-pair-gen' }, job.publicTemplate, job.privateTemplate);
    else if (job.kind === 'secret') mod.generateKey(session, { kind: 'generic-secret-key-gen' }, job.template);
    else {
      count = destroyAll(mod, session, job.ids);
      if (count < job.expected) {
        // This process's view of the token can miss another process's new objects: SoftHSM's
        // token generation counter takes in others' changes when this process writes (see
        // keygen-process.ts). A fresh initialisation reads the token directory again.
        token = connect(open, mod);
        count += destroyAll(token.mod, token.session, job.ids);
      }
    }
  } catch (e) {
    failure = e instanceof HsmError ? e : new HsmError(-1, 'BINDING_ERROR', 'keygen');
  }
  if (!failure) {
    void send({ id: job.id, ok: true, count });
    return;
  }
  const reply: KeygenReply = { id: job.id, ok: false, ckr: failure.ckr, ckrName: failure.ckrName, method: failure.method };
  const cls = classify(failure.ckrName);
  // A broken session or token: start over in a new process rather than repair this one.
  if (cls === 'session-broken' || cls === 'token-gone' || failure.ckr === -1) void send(reply).then(() => process.exit(1));
  else void send(reply);
});
