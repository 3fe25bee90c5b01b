/** The page's shared parts: the status line, the error banner and the confirmation dialog. */
import { ApiError, type Session } from './api.js';
import { byId, h } from './dom.js';

export function say(text: string): void {
  byId('status').textContent = text;
}

export function showError(e: unknown): void {
  const box = byId('error');
  box.replaceChildren();
  if (e === null) {
    box.hidden = true;
    return;
  }
  const text =
    e instanceof ApiError
      ? `${e.message}${e.code && !/^\d+$/.test(e.code) ? ` (${e.code})` : ''}`
      : 'Something went wrong in the console. Reload the page and try again.';
  box.append(h('strong', {}, 'Refused: '), text);
  box.hidden = false;
}

export function clearMessages(): void {
  say('');
  showError(null);
}

export interface Confirmation {
  readonly title: string;
  readonly text: string;
  /** The confirming button's text: what it does ("Rotate key"). */
  readonly action: string;
  /** Extra labelled controls (e.g. the deletion window); read them after it resolves true. */
  readonly fields?: readonly HTMLElement[];
  readonly danger?: boolean;
}

/** Asks in a modal dialog; true when the user confirmed. */
export function confirmAction(c: Confirmation): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>('confirm');
  byId('confirm-title').textContent = c.title;
  byId('confirm-text').textContent = c.text;
  byId('confirm-fields').replaceChildren(...(c.fields ?? []));
  const ok = byId<HTMLButtonElement>('confirm-ok');
  ok.textContent = c.action;
  ok.classList.toggle('danger', c.danger === true);
  const form = dialog.querySelector('form')!;
  return new Promise((resolve) => {
    const onSubmit = (ev: SubmitEvent) => {
      ev.preventDefault();
      const confirmed = ev.submitter === ok;
      if (confirmed && !form.reportValidity()) return;
      done(confirmed);
    };
    const onCancel = () => done(false);
    const done = (v: boolean) => {
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(v);
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    ok.focus();
  });
}

/** Runs an action with its buttons disabled; its error is shown in words. */
export async function act(buttons: readonly HTMLButtonElement[], run: () => Promise<void>): Promise<void> {
  clearMessages();
  for (const b of buttons) b.disabled = true;
  try {
    await run();
  } catch (e) {
    showError(e);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** What a page is given: where to draw, who is signed in, the route's parameters, and a way to redraw. */
export interface Page {
  readonly view: HTMLElement;
  readonly session: Session;
  /** The route's path parameter (a key id) and query (`#/audit?keyId=…`). */
  readonly arg: string | undefined;
  readonly params: URLSearchParams;
  /** Draws the page again from fresh data, then shows `message` in the status line. */
  refresh(message?: string): Promise<void>;
}

export const isAdmin = (s: Session): boolean => s.scopes.includes('admin');
