/**
 * A key's page: its facts, versions, tags, grants, rotation settings and latest audit records, and
 * (admin tokens) its actions, each confirmed first and sent to the dialect route that does it.
 */
import { consoleGet, huawei, ncp } from './api.js';
import { auditTable } from './audit.js';
import { button, facts, field, h, table, when } from './dom.js';
import { STATE_TEXT, type AuditRecord, type KeyDetail, type KeyView } from './types.js';
import { act, confirmAction, isAdmin, type Page } from './ui.js';

const AUDIT_ROWS = 20;

export async function keyPage(page: Page): Promise<void> {
  const keyId = page.arg ?? '';
  const [detail, audit] = await Promise.all([
    consoleGet<KeyDetail>(`/keys/${encodeURIComponent(keyId)}`),
    consoleGet<{ records: AuditRecord[] }>('/audit', { keyId, limit: String(AUDIT_ROWS) }),
  ]);
  const k = detail.key;
  const admin = isAdmin(page.session);
  const actions = admin ? keyActions(page, k) : h('p', { class: 'note' }, 'This token may read only: actions are not offered.');

  page.view.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/keys' }, '← All keys')),
    h('h1', {}, `Key ${k.alias}`),
    facts([
      ['Alias', k.alias],
      ['Key id', h('code', {}, k.keyId)],
      ['keyTag', h('code', { class: 'wrap' }, k.keyTag)],
      ['Spec', k.spec],
      ['Usage', k.usage],
      ['Convergent', k.convergent ? 'Yes' : 'No'],
      ['State', h('span', { class: `state state-${k.state}`, id: 'key-state' }, STATE_TEXT[k.state] ?? k.state)],
      ['Current version', h('span', { id: 'current-version' }, String(k.currentVersion))],
      ['Created', when(k.createdAt)],
      ['State changed', when(k.stateChangedAt)],
      ...(k.deletionDate !== null ? [['Destroyed on', when(k.deletionDate)] as const] : []),
      ['Description', k.description || '—'],
    ]),
    h('section', { 'aria-labelledby': 'actions-title' }, h('h2', { id: 'actions-title' }, 'Actions'), actions),
    h(
      'section',
      { 'aria-labelledby': 'rotation-title' },
      h('h2', { id: 'rotation-title' }, 'Rotation'),
      facts([
        ['Automatic rotation', k.rotation.enabled ? 'On' : 'Off'],
        ['Interval', `${k.rotation.intervalDays} days`],
        ['Last rotation', when(k.rotation.lastRotationAt)],
        ['Next rotation', k.rotation.enabled ? when(k.rotation.nextRotationAt) : 'Not scheduled'],
        ['Rotations so far', k.rotation.count],
      ]),
    ),
    table(
      'Versions',
      ['Version', 'State', 'Created', 'State changed', ...(admin ? ['Action'] : [])],
      detail.versions.map((v) => [
        v.version === k.currentVersion ? `${v.version} (current)` : v.version,
        v.state,
        when(v.createdAt),
        when(v.stateChangedAt),
        ...(admin ? [versionAction(page, k, v.version, v.state)] : []),
      ]),
    ),
    table('Tags', ['Tag key', 'Value'], detail.tags.map((t) => [t.key, t.value]), 'No tags.'),
    table(
      'Grants',
      ['Name', 'Grantee project', 'Operations', 'Retiring project', 'Issued by', 'Created'],
      detail.grants.map((g) => [g.name || '—', g.granteeProject, g.operations.join(', '), g.retiringProject || '—', g.issuingProject, when(g.createdAt)]),
      'No grants.',
    ),
    h(
      'section',
      { 'aria-labelledby': 'key-audit-title' },
      h('h2', { id: 'key-audit-title' }, 'Latest audit records'),
      auditTable(`Latest ${audit.records.length} audit records concerning this key`, audit.records, 'No audit record names this key yet.'),
      h('p', {}, h('a', { href: `#/audit?keyId=${encodeURIComponent(k.keyId)}` }, 'All audit records of this key')),
    ),
  );
}

function keyActions(page: Page, k: KeyView): HTMLElement {
  const bar = h('div', { class: 'toolbar' });
  const all: HTMLButtonElement[] = [];
  const add = (text: string, run: () => Promise<void>, danger = false) => {
    const b = button(text, () => void run(), danger ? { class: 'danger' } : {});
    all.push(b);
    bar.append(b);
  };
  const project = page.session.project;

  if (k.state === 'Enabled') {
    add('Rotate key', async () => {
      const ok = await confirmAction({
        title: `Rotate ${k.alias}?`,
        text: `The HSM makes version ${k.currentVersion + 1}, which becomes current for new encryptions. Older versions stay for decryption.`,
        action: 'Rotate key',
      });
      if (!ok) return;
      await act(all, async () => {
        const r = await ncp<{ version: number }>('POST', `/keys/${k.keyTag}/rotate`);
        await page.refresh(`Key rotated: version ${r.version} is current.`);
      });
    });
    add(
      'Disable key',
      async () => {
        const ok = await confirmAction({
          title: `Disable ${k.alias}?`,
          text: 'Every request that uses the key (data keys, encryption, decryption, signatures) is refused until it is enabled again.',
          action: 'Disable key',
          danger: true,
        });
        if (!ok) return;
        await act(all, async () => {
          await huawei(project, 'disable-key', { key_id: k.keyId });
          await page.refresh('Key disabled.');
        });
      },
      true,
    );
  }
  if (k.state === 'Disabled') {
    add('Enable key', async () => {
      const ok = await confirmAction({ title: `Enable ${k.alias}?`, text: 'Requests may use the key again.', action: 'Enable key' });
      if (!ok) return;
      await act(all, async () => {
        await huawei(project, 'enable-key', { key_id: k.keyId });
        await page.refresh('Key enabled.');
      });
    });
  }
  if (k.state === 'Enabled' || k.state === 'Disabled') {
    add(
      'Schedule deletion',
      async () => {
        const days = h('input', { name: 'pending_days', type: 'number', min: '7', max: '1096', step: '1', value: '30', required: true });
        const ok = await confirmAction({
          title: `Schedule deletion of ${k.alias}?`,
          text: 'The key is refused for every use at once, and its HSM objects are destroyed when the window ends; until then the deletion can be cancelled. Data encrypted under it can never be decrypted after that.',
          action: 'Schedule deletion',
          danger: true,
          fields: [field('Days before destruction', days, '7 to 1096')],
        });
        if (!ok) return;
        await act(all, async () => {
          await huawei(project, 'schedule-key-deletion', { key_id: k.keyId, pending_days: days.value });
          await page.refresh(`Deletion scheduled in ${days.value} days.`);
        });
      },
      true,
    );
  }
  if (k.state === 'PendingDeletion') {
    add('Cancel deletion', async () => {
      const ok = await confirmAction({
        title: `Cancel the deletion of ${k.alias}?`,
        text: 'The key is kept, disabled; enable it to use it again.',
        action: 'Cancel deletion',
      });
      if (!ok) return;
      await act(all, async () => {
        await huawei(project, 'cancel-key-deletion', { key_id: k.keyId });
        await page.refresh('Deletion cancelled; the key is disabled.');
      });
    });
  }
  return bar;
}

function versionAction(page: Page, k: KeyView, version: number, state: string): HTMLElement | string {
  if (version === k.currentVersion && state === 'Enabled') return 'Current version';
  const enable = state !== 'Enabled';
  const text = `${enable ? 'Enable' : 'Disable'} version ${version}`;
  const b: HTMLButtonElement = button(text, () => {
    void (async () => {
      const ok = await confirmAction({
        title: `${text} of ${k.alias}?`,
        text: enable
          ? 'Ciphertexts made with this version can be decrypted again.'
          : 'Ciphertexts made with this version are refused until it is enabled again.',
        action: text,
        danger: !enable,
      });
      if (!ok) return;
      await act([b], async () => {
        await ncp('POST', `/keys/${k.keyTag}/versions/${version}/${enable ? 'enable' : 'disable'}`);
        await page.refresh(`Version ${version} ${enable ? 'enabled' : 'disabled'}.`);
      });
    })();
  });
  return b;
}
