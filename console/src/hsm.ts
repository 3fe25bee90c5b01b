/** The HSM page: module, token, profile, session pool and a fresh health check. */
import { consoleGet } from './api.js';
import { button, facts, h, when } from './dom.js';
import type { HsmView } from './types.js';
import type { Page } from './ui.js';

export async function hsmPage(page: Page): Promise<void> {
  const s = await consoleGet<HsmView>('/hsm');
  const pool = s.pool;
  page.view.replaceChildren(
    h('h1', {}, 'HSM'),
    h(
      'section',
      { class: `health ${s.health.ok ? 'chain-ok' : 'chain-bad'}`, 'aria-labelledby': 'health-title' },
      h('h2', { id: 'health-title' }, 'Health'),
      h('p', { id: 'health-summary' }, s.health.ok ? 'Healthy: a token session drew random bytes just now.' : `Unavailable: ${s.health.reason ?? 'no working session'}`),
      h('p', {}, `Checked ${when(s.health.checkedAt)}.`),
    ),
    h('h2', {}, 'Token'),
    facts([
      ['PKCS#11 module', s.module ? h('code', {}, s.module) : '—'],
      ['Token label', s.tokenLabel ?? '—'],
      ['Profile', s.profile ?? '—'],
    ]),
    h('h2', {}, 'Session pool'),
    pool
      ? facts([
          ['State', pool.up ? 'Connected' : `Down since ${when(pool.since)}: ${pool.reason ?? ''}`],
          ['Size', pool.size],
          ['Open sessions', pool.open],
          ['Idle', pool.idle],
          ['In use', pool.busy],
          ['Requests waiting', pool.waiting],
          ['Recoveries after token loss', pool.recoveries],
        ])
      : h('p', {}, 'The pool is not reported by this server.'),
    h('div', { class: 'toolbar' }, button('Check again', () => void page.refresh())),
  );
}
