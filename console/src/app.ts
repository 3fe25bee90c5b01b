/**
 * The console's entry: sign-in, the section links and a route per page (`#/keys`, `#/keys/<key id>`,
 * `#/audit?…`, `#/hsm`). Nothing secret ever goes in the route: it holds key ids and filters only.
 */
import { ApiError, signIn, token, whenSignedOut, type Session } from './api.js';
import { auditPage } from './audit.js';
import { byId } from './dom.js';
import { hsmPage } from './hsm.js';
import { keyPage } from './key.js';
import { keysPage } from './keys.js';
import { clearMessages, say, showError, type Page } from './ui.js';

let session: Session | undefined;

function showSignIn(message?: string): void {
  session = undefined;
  byId('nav').hidden = true;
  byId('who').hidden = true;
  byId('view').replaceChildren();
  byId('signin').hidden = false;
  if (message) showError(new ApiError(401, '', message));
  byId<HTMLInputElement>('token').focus();
}

function showApp(s: Session): void {
  session = s;
  byId('signin').hidden = true;
  byId('nav').hidden = false;
  byId('who').hidden = false;
  const access = s.scopes.includes('admin') ? 'admin' : 'read-only';
  byId('who-text').textContent = `Project ${s.project} · token ${s.tokenId} (${access})`;
}

function route(): { name: string; arg: string | undefined; params: URLSearchParams } {
  const hash = location.hash.replace(/^#/, '') || '/keys';
  const [path = '', query = ''] = hash.split('?', 2);
  const parts = path.split('/').filter((p) => p !== '');
  return { name: parts[0] ?? 'keys', arg: parts[1] === undefined ? undefined : decodeURIComponent(parts[1]), params: new URLSearchParams(query) };
}

const PAGES: Record<string, { title: string; draw: (p: Page) => Promise<void> }> = {
  keys: { title: 'Keys', draw: keysPage },
  audit: { title: 'Audit', draw: auditPage },
  hsm: { title: 'HSM', draw: hsmPage },
};

async function render(message?: string): Promise<void> {
  if (!session) return;
  const r = route();
  const found = PAGES[r.name];
  const draw = r.name === 'keys' && r.arg !== undefined ? keyPage : found?.draw;
  clearMessages();
  for (const a of byId('nav').querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${r.name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = byId('view');
  if (!draw) {
    view.replaceChildren();
    showError(new ApiError(404, '', 'There is no such page.'));
    return;
  }
  document.title = `${r.arg !== undefined ? 'Key' : (found?.title ?? '')} · p11kms console`;
  view.setAttribute('aria-busy', 'true');
  try {
    await draw({ view, session, arg: r.arg, params: r.params, refresh: (m?: string) => render(m) });
    if (message) say(message);
  } catch (e) {
    if (session) {
      view.replaceChildren();
      showError(e);
    }
  } finally {
    view.removeAttribute('aria-busy');
  }
}

async function boot(): Promise<void> {
  whenSignedOut(() => {
    token.clear();
    showSignIn('The service no longer accepts this token. Sign in again.');
  });
  byId('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = byId<HTMLInputElement>('token');
    const presented = input.value.trim();
    // The field is emptied at once: the token is kept in sessionStorage, not in the page.
    input.value = '';
    clearMessages();
    signIn(presented).then(
      (s) => {
        token.set(presented);
        showApp(s);
        void render();
      },
      (err: unknown) => showSignIn(err instanceof ApiError ? `The token was refused: ${err.message}` : 'The token could not be checked.'),
    );
  });
  byId('signout').addEventListener('click', () => {
    token.clear();
    clearMessages();
    showSignIn();
  });
  window.addEventListener('hashchange', () => void render());

  const kept = token.get();
  if (!kept) {
    showSignIn();
    return;
  }
  try {
    showApp(await signIn(kept));
    await render();
  } catch {
    token.clear();
    showSignIn('Sign in again.');
  }
}

void boot();
