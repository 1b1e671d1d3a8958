// Small shared pieces: the html tag, error banners, copy buttons, the result grid.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

export function ErrorBanner({ error }) {
  if (!error) return null;
  const b = error.body || {};
  return html`<div class="error" role="alert">
    <strong>${b.code || 'error'}</strong>: ${error.message}
    ${b.details ? html`<div class="muted">${b.details}</div>` : null}
    ${b.hint ? html`<div class="muted">hint: ${b.hint}</div>` : null}
  </div>`;
}

export function Copy({ value, label }) {
  return html`<button type="button" class="small" aria-label=${label}
    onClick=${() => navigator.clipboard && navigator.clipboard.writeText(value)}>Copy</button>`;
}

export function cell(v) {
  if (v === null || v === undefined) return html`<span class="null">NULL</span>`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A result grid: columns with their types, NULL shown as NULL. */
export function Grid({ columns, rows, label }) {
  return html`<div class="grid-wrap"><table class="grid" aria-label=${label || 'Results'}>
    <thead><tr>${columns.map((c) => html`<th scope="col">${c.name}<div class="type">${c.type}</div></th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${r.map((v) => html`<td>${cell(v)}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

/** Runs `f`, keeping `busy` and `error` state for a form. */
export async function attempt(setBusy, setError, f) {
  setBusy(true);
  setError(null);
  try {
    return await f();
  } catch (e) {
    setError(e);
    return undefined;
  } finally {
    setBusy(false);
  }
}
