// The SQL editor: one or several statements, the last one's rows as a grid with column types, PostgreSQL's
// errors with the failing position marked, the last queries (this tab only), CSV export.
import { useState } from 'preact/hooks';
import { sql } from '../api.js';
import { attempt, ErrorBanner, Grid, html } from '../ui.js';

const HISTORY = 'supactl-sql-history';
const history = () => JSON.parse(sessionStorage.getItem(HISTORY) || '[]');

function csv(columns, rows) {
  const q = (v) => {
    if (v === null || v === undefined) return '';
    const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
  };
  return [columns.map((c) => q(c.name)).join(','), ...rows.map((r) => r.map(q).join(','))].join('\r\n') + '\r\n';
}

function download(name, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  a.download = name;
  a.click();
  URL.revokeObjectURL(a.href);
}

/** The query with the character at PostgreSQL's 1-based `position` marked. */
function Marked({ query, position }) {
  const i = Math.max(0, Math.min(query.length, position - 1));
  return html`<pre class="marked" aria-label="Error position">${query.slice(0, i)}<mark>${query.slice(i, i + 1) || ' '}</mark>${query.slice(i + 1)}</pre>`;
}

export function Sql({ project }) {
  const [query, setQuery] = useState('select 1 as one;');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [past, setPast] = useState(history());
  const run = (e) => {
    e && e.preventDefault();
    const q = query;
    attempt(setBusy, setError, async () => {
      setResult(null);
      const h = [q, ...history().filter((x) => x !== q)].slice(0, 20);
      sessionStorage.setItem(HISTORY, JSON.stringify(h));
      setPast(h);
      setResult({ ...(await sql(project.ref, q)), query: q });
    }).then(() => {}, () => {});
  };
  const keys = (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') run(e);
  };
  return html`<section>
    <form onSubmit=${run}>
      <label for="sql">SQL</label>
      <textarea id="sql" rows="8" spellcheck="false" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} onKeyDown=${keys}></textarea>
      <div class="toolbar">
        <button type="submit" disabled=${busy}>Run</button>
        <span class="muted">Ctrl+Enter runs. Several statements run in one transaction; the last one's rows are shown.</span>
        ${result && result.columns.length ? html`<button type="button" onClick=${() => download(`${project.ref}.csv`, csv(result.columns, result.rows))}>Export CSV</button>` : null}
      </div>
    </form>
    <${ErrorBanner} error=${error} />
    ${error && error.body && error.body.position ? html`<${Marked} query=${query} position=${error.body.position} />` : null}
    ${result ? html`<p class="muted" role="status">${result.columns.length ? `${result.rows.length} row${result.rows.length === 1 ? "" : "s"}` : `done, ${result.affected} row${result.affected === 1 ? "" : "s"} affected`}</p>` : null}
    ${result && result.columns.length ? html`<${Grid} columns=${result.columns} rows=${result.rows} label="Query results" />` : null}
    ${past.length ? html`<details><summary>History</summary><ul class="history">
      ${past.map((q) => html`<li><button type="button" class="link mono" onClick=${() => setQuery(q)}>${q.slice(0, 120)}</button></li>`)}
    </ul></details>` : null}
  </section>`;
}
