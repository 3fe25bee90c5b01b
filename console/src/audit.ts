/** The Audit page: the project's trail with filters, and whether its hash chain verifies. */
import { consoleGet } from './api.js';
import { button, field, h, select, shortId, table, when } from './dom.js';
import type { AuditRecord, AuditVerify } from './types.js';
import type { Page } from './ui.js';

/** The records as a table (also the key page's latest records). */
export function auditTable(caption: string, records: readonly AuditRecord[], empty = 'No audit record matches.'): HTMLElement {
  return table(
    caption,
    ['Time', 'Operation', 'Key', 'Version', 'Outcome', 'Status', 'Error code', 'Token id', 'Request id'],
    records.map((r) => [
      when(r.time),
      h('code', {}, r.operation),
      r.keyId ? h('a', { href: `#/keys/${r.keyId}` }, shortId(r.keyId, 8)) : '—',
      r.keyVersion ?? '—',
      h('span', { class: `outcome outcome-${r.outcome}` }, r.outcome === 'success' ? 'Success' : 'Failure'),
      r.status,
      r.errorCode ?? '—',
      r.tokenId ? h('code', {}, r.tokenId) : '—',
      r.requestId ? shortId(r.requestId, 8) : '—',
    ]),
    empty,
  );
}

/** A `datetime-local` value (the browser's local time) as ISO 8601, or undefined. */
function isoOf(value: string): string | undefined {
  if (value === '') return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

function chainStatus(v: AuditVerify): HTMLElement {
  const records = v.files.reduce((n, f) => n + f.records, 0);
  const summary = v.ok
    ? `Chain verified: ${v.files.length} ${v.files.length === 1 ? 'file' : 'files'}, ${records} records, no edit, insertion or removal found.`
    : 'Chain BROKEN: the trail was changed after it was written, or a write was cut short.';
  return h(
    'section',
    { class: `chain ${v.ok ? 'chain-ok' : 'chain-bad'}`, 'aria-labelledby': 'chain-title' },
    h('h2', { id: 'chain-title' }, 'Chain verification'),
    h('p', { id: 'chain-summary' }, summary),
    table(
      'Audit files',
      ['File', 'Result', 'Records checked', 'Where'],
      v.files.map((f) => [h('code', {}, f.file), f.ok ? 'OK' : 'BAD', f.records, f.ok ? '—' : `line ${f.line ?? '?'}: ${f.reason ?? ''}`]),
      'No audit file yet.',
    ),
  );
}

export async function auditPage(page: Page): Promise<void> {
  const p = page.params;
  const operation = h('input', { name: 'operation', value: p.get('operation') ?? '', autocomplete: 'off', list: 'operations' });
  const keyId = h('input', { name: 'keyId', value: p.get('keyId') ?? '', autocomplete: 'off', spellcheck: 'false' });
  const outcome = select('outcome', [['', 'Any outcome'], ['success', 'Success'], ['failure', 'Failure']], p.get('outcome') ?? '');
  const from = h('input', { name: 'from', type: 'datetime-local', step: '1', value: p.get('from') ?? '' });
  const to = h('input', { name: 'to', type: 'datetime-local', step: '1', value: p.get('to') ?? '' });
  const apply = h('button', { type: 'submit', class: 'primary' }, 'Apply filters');
  const filters = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter audit records' },
    field('Operation', operation, 'part of the name, e.g. rotate or create-datakey'),
    field('Key id', keyId),
    field('Outcome', outcome),
    field('From (local time)', from),
    field('To (local time)', to),
    apply,
    h('datalist', { id: 'operations' }, ...['create-key', 'rotate', 'enable-key', 'disable-key', 'create-datakey', 'schedule-key-deletion', 'cancel-key-deletion', 'describe-key'].map((o) => h('option', { value: o }))),
  );
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of [['operation', operation.value], ['keyId', keyId.value], ['outcome', outcome.value], ['from', from.value], ['to', to.value]] as const) {
      if (v.trim() !== '') q.set(k, v.trim());
    }
    const hash = `#/audit${q.toString() ? `?${q}` : ''}`;
    if (location.hash === hash) void page.refresh();
    else location.hash = hash;
  });

  const [{ records }, verify] = await Promise.all([
    consoleGet<{ records: AuditRecord[] }>('/audit', {
      operation: operation.value.trim() || undefined,
      keyId: keyId.value.trim() || undefined,
      outcome: outcome.value || undefined,
      from: isoOf(from.value),
      to: isoOf(to.value),
      limit: '200',
    }),
    consoleGet<AuditVerify>('/audit/verify'),
  ]);
  page.view.replaceChildren(
    h('h1', {}, 'Audit trail'),
    chainStatus(verify),
    h('h2', {}, 'Records'),
    filters,
    h('div', { class: 'toolbar' }, button('Reload', () => void page.refresh())),
    auditTable(`Newest ${records.length} matching records of project ${page.session.project}`, records),
  );
}
