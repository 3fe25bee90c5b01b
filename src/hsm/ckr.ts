/**
 * Sorts PKCS#11 return values into what the service does about them. Matching happens on CKR
 * names, never on message text.
 */
export type CkrClass =
  /** The session can't be used again: close it and open a new one. */
  | 'session-broken'
  /** The token or module is gone: every session is suspect, re-open and log in again. */
  | 'token-gone'
  /** The token refused the input (for a well-formed envelope: a wrong tag, key or context). */
  | 'bad-input'
  /** Something the service asked for is not allowed for that object. */
  | 'not-permitted'
  | 'internal';

const classes: Readonly<Record<string, CkrClass>> = {
  CKR_SESSION_HANDLE_INVALID: 'session-broken',
  CKR_SESSION_CLOSED: 'session-broken',
  CKR_OPERATION_ACTIVE: 'session-broken',
  CKR_USER_NOT_LOGGED_IN: 'session-broken',
  CKR_DEVICE_ERROR: 'token-gone',
  CKR_DEVICE_REMOVED: 'token-gone',
  CKR_TOKEN_NOT_PRESENT: 'token-gone',
  CKR_TOKEN_NOT_RECOGNIZED: 'token-gone',
  CKR_CRYPTOKI_NOT_INITIALIZED: 'token-gone',
  CKR_SLOT_ID_INVALID: 'token-gone',
  CKR_DEVICE_MEMORY: 'token-gone',
  CKR_ENCRYPTED_DATA_INVALID: 'bad-input',
  CKR_ENCRYPTED_DATA_LEN_RANGE: 'bad-input',
  CKR_DATA_INVALID: 'bad-input',
  CKR_DATA_LEN_RANGE: 'bad-input',
  // SoftHSM reports a wrong GCM tag or AAD as a general error.
  CKR_GENERAL_ERROR: 'bad-input',
  CKR_KEY_FUNCTION_NOT_PERMITTED: 'not-permitted',
  CKR_KEY_UNEXTRACTABLE: 'not-permitted',
  CKR_ATTRIBUTE_SENSITIVE: 'not-permitted',
  CKR_MECHANISM_INVALID: 'not-permitted',
};

export function classify(ckrName: string): CkrClass {
  return classes[ckrName] ?? 'internal';
}

/** The PIN was refused: retrying would only lock the token's user. */
const PIN_REJECTED: ReadonlySet<string> = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);

/** Why the token can't be used at all (not worth a retry), in one line; undefined for a passing fault. */
export function permanentCause(e: { readonly ckrName: string }): string | undefined {
  if (PIN_REJECTED.has(e.ckrName)) return `the token rejected the PIN (${e.ckrName})`;
  return undefined;
}
