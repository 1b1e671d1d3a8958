// The platform: workers with their load (drain one: it takes no new projects), the placement strategy
// (chosen from those the API offers), and the audit log.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { attempt, ErrorBanner, html } from '../ui.js';

const WORKER_COLUMNS = ['id', 'identifier', 'host', 'port', 'region', 'weight', 'max_databases', 'current_databases', 'status', 'sslmode'];

function Placement({ placement, onSaved }) {
  const [strategy, setStrategy] = useState(placement.strategy);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const save = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => onSaved(await api('PUT', '/placement', { strategy })));
  };
  return html`<form class="inline" onSubmit=${save} aria-label="Placement">
    <label for="strategy">Placement strategy</label>
    <select id="strategy" value=${strategy} onChange=${(e) => setStrategy(e.currentTarget.value)}>
      ${placement.strategies.map((s) => html`<option value=${s}>${s}</option>`)}</select>
    <button type="submit" disabled=${busy || strategy === placement.strategy}>Save strategy</button>
    <${ErrorBanner} error=${error} />
  </form>`;
}

export function Platform() {
  const [workers, setWorkers] = useState([]);
  const [placement, setPlacement] = useState(null);
  const [audit, setAudit] = useState([]);
  const [error, setError] = useState(null);
  const loadWorkers = () => api('GET', '/workers').then(setWorkers, setError);
  useEffect(() => {
    loadWorkers();
    api('GET', '/placement').then(setPlacement, setError);
    api('GET', '/audit?limit=50').then(setAudit, setError);
  }, []);
  const drain = (w) => api('POST', `/workers/${w.id}/drain`).then(loadWorkers, setError);
  const cols = (rows) => (rows.length ? Object.keys(rows[0]).filter((k) => typeof rows[0][k] !== 'object' || rows[0][k] === null) : []);
  const table = (label, rows) => html`<table class="list" aria-label=${label}><thead><tr>${cols(rows).map((c) => html`<th>${c}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${cols(rows).map((c) => html`<td>${r[c] === null ? '' : String(r[c])}</td>`)}</tr>`)}</tbody></table>`;
  return html`<main>
    <h1>Platform</h1>
    <${ErrorBanner} error=${error} />
    <h2>Workers</h2>
    <table class="list" aria-label="Workers"><thead><tr>${WORKER_COLUMNS.map((c) => html`<th>${c}</th>`)}<th>Actions</th></tr></thead>
      <tbody>${workers.map((w) => html`<tr>${WORKER_COLUMNS.map((c) => html`<td>${String(w[c])}</td>`)}
        <td>${w.status === 'active' ? html`<button type="button" class="small" onClick=${() => drain(w)} aria-label=${`Drain ${w.identifier}`}>Drain</button>` : null}</td></tr>`)}</tbody></table>
    <h2>Placement</h2>${placement ? html`<${Placement} placement=${placement} onSaved=${setPlacement} />` : null}
    <h2>Audit log</h2>${table('Audit log', audit)}
  </main>`;
}
