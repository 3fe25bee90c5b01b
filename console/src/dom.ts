/** Small DOM helpers: every text goes in as text (never HTML), so nothing a key or a record holds can run. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | boolean | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el as T;
}

/** A time as `2026-12-02 16:05:09 UTC`, or a dash when there is none. */
export function when(t: number | string | null | undefined): string {
  if (t === null || t === undefined || t === '') return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** A table with a caption and column headers; `rows` of cells (a cell may be a node). */
export function table(caption: string, headers: readonly string[], rows: readonly Child[][], empty = 'None.'): HTMLElement {
  const t = h('table', {}, h('caption', {}, caption), h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', { scope: 'col' }, x)))));
  const body = h('tbody');
  for (const row of rows) body.append(h('tr', {}, ...row.map((c) => h('td', {}, c))));
  if (rows.length === 0) body.append(h('tr', {}, h('td', { colspan: String(headers.length), class: 'empty' }, empty)));
  t.append(body);
  return h('div', { class: 'table-wrap' }, t);
}

/** A definition list of label → value. */
export function facts(pairs: ReadonlyArray<readonly [string, Child]>): HTMLElement {
  const dl = h('dl', { class: 'facts' });
  for (const [k, v] of pairs) dl.append(h('dt', {}, k), h('dd', {}, v));
  return dl;
}

/** A labelled form control: the label's `for` names the control's id. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function select(name: string, options: ReadonlyArray<readonly [string, string]>, value = ''): HTMLSelectElement {
  const s = h('select', { name });
  for (const [v, text] of options) s.append(h('option', { value: v, selected: v === value }, text));
  return s;
}

export function button(text: string, onClick: () => void, attrs: Attrs = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', ...attrs }, text);
  b.addEventListener('click', onClick);
  return b;
}

/** A long id shown short, the whole of it in the title and to screen readers. */
export function shortId(id: string, keep = 12): HTMLElement {
  if (id.length <= keep + 1) return h('code', {}, id);
  return h('code', { title: id, 'aria-label': id }, `${id.slice(0, keep)}…`);
}
