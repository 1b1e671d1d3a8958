// The platform: workers with their load, the placement strategy, and the audit log.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorBanner, html } from '../ui.js';

export function Platform() {
  const [workers, setWorkers] = useState([]);
  const [placement, setPlacement] = useState(null);
  const [audit, setAudit] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    api('GET', '/workers').then(setWorkers, setError);
    api('GET', '/placement').then(setPlacement, setError);
    api('GET', '/audit?limit=50').then(setAudit, setError);
  }, []);
  const cols = (rows) => (rows.length ? Object.keys(rows[0]).filter((k) => typeof rows[0][k] !== 'object' || rows[0][k] === null) : []);
  const table = (label, rows) => html`<table class="list" aria-label=${label}><thead><tr>${cols(rows).map((c) => html`<th>${c}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${cols(rows).map((c) => html`<td>${r[c] === null ? '' : String(r[c])}</td>`)}</tr>`)}</tbody></table>`;
  return html`<main>
    <h1>Platform</h1>
    <${ErrorBanner} error=${error} />
    <h2>Workers</h2>${table('Workers', workers)}
    <h2>Placement</h2><p>${placement ? placement.strategy : ''}</p>
    <h2>Audit log</h2>${table('Audit log', audit)}
  </main>`;
}
