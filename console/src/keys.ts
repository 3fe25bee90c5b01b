/** The Keys page: the project's keys, filtered by text and state, and (admin) key creation. */
import { consoleGet, huawei } from './api.js';
import { button, field, h, select, shortId, table, when } from './dom.js';
import { STATE_TEXT, type KeyState, type KeyView } from './types.js';
import { act, confirmAction, isAdmin, type Page } from './ui.js';

export async function keysPage(page: Page): Promise<void> {
  const { view, session } = page;
  const { keys, total } = await consoleGet<{ keys: KeyView[]; total: number }>('/keys');
  const text = h('input', { type: 'search', name: 'q', autocomplete: 'off' });
  const state = select('state', [
    ['', 'All states'],
    ['Enabled', 'Enabled'],
    ['Disabled', 'Disabled'],
    ['PendingDeletion', 'Pending deletion'],
  ]);
  const count = h('p', { class: 'count', 'aria-live': 'polite' });
  const holder = h('div');

  const render = () => {
    const q = text.value.trim().toLowerCase();
    const shown = keys.filter(
      (k) => (state.value === '' || k.state === state.value) && (q === '' || [k.alias, k.keyId, k.keyTag, k.description].some((f) => f.toLowerCase().includes(q))),
    );
    count.textContent = `${shown.length} of ${total} keys shown.`;
    holder.replaceChildren(
      table(
        'Keys of the project',
        ['Alias', 'Key id', 'keyTag', 'Spec', 'State', 'Current version', 'Last rotation', 'Next rotation'],
        shown.map((k) => [
          h('a', { href: `#/keys/${k.keyId}` }, k.alias),
          h('code', {}, k.keyId),
          shortId(k.keyTag),
          k.spec,
          h('span', { class: `state state-${k.state}` }, STATE_TEXT[k.state as KeyState] ?? k.state),
          k.currentVersion,
          when(k.rotation.lastRotationAt),
          k.rotation.enabled ? when(k.rotation.nextRotationAt) : 'Not scheduled',
        ]),
        total === 0 ? 'The project has no keys yet.' : 'No key matches the filter.',
      ),
    );
  };
  text.addEventListener('input', render);
  state.addEventListener('change', render);

  const tools = h('div', { class: 'toolbar' });
  if (isAdmin(session)) {
    const create = button('Create key', () => void createKey(page, create), { class: 'primary' });
    tools.append(create);
  }
  view.replaceChildren(
    h('h1', {}, 'Keys'),
    h(
      'form',
      { class: 'filters', role: 'search', 'aria-label': 'Filter keys' },
      field('Filter by text', text, 'alias, key id, keyTag or description'),
      field('State', state),
    ),
    tools,
    count,
    holder,
  );
  view.querySelector('form')!.addEventListener('submit', (e) => e.preventDefault());
  render();
}

async function createKey(page: Page, opener: HTMLButtonElement): Promise<void> {
  const alias = h('input', { name: 'alias', required: true, maxlength: '255', pattern: '[A-Za-z0-9:/_\\-]+', autocomplete: 'off' });
  const spec = select('spec', [
    ['AES_256', 'AES_256 (symmetric: data keys, encryption)'],
    ['RSA_2048', 'RSA_2048 (asymmetric)'],
  ]);
  const usage = select('usage', [
    ['ENCRYPT_DECRYPT', 'Encrypt and decrypt'],
    ['SIGN_VERIFY', 'Sign and verify (RSA only)'],
  ]);
  const description = h('input', { name: 'description', maxlength: '255', autocomplete: 'off' });
  const ok = await confirmAction({
    title: 'Create a key',
    text: 'The key is made in the HSM and never leaves it.',
    action: 'Create key',
    fields: [
      field('Alias', alias, 'letters, digits, ":", "/", "_" or "-"; unique in the project'),
      field('Key spec', spec),
      field('Key usage', usage),
      field('Description (optional)', description),
    ],
  });
  if (!ok) return;
  await act([opener], async () => {
    const body: Record<string, unknown> = { key_alias: alias.value, key_spec: spec.value, key_usage: usage.value };
    if (description.value !== '') body['key_description'] = description.value;
    await huawei<{ key_info: { key_id: string } }>(page.session.project, 'create-key', body);
    await page.refresh(`Key ${alias.value} created.`);
  });
}
