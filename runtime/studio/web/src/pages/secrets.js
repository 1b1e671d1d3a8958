// Secrets: names and when they changed (values are write-only), set, unset.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { attempt, ErrorBanner, html } from '../ui.js';

export function Secrets({ project }) {
  const [list, setList] = useState(null);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/projects/${project.ref}/secrets`).then(setList, setError);
  useEffect(() => { load(); }, [project.ref]);
  const set = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      await api('POST', `/projects/${project.ref}/secrets`, [{ name, value }]);
      setName('');
      setValue('');
      load();
    });
  };
  const unset = (n) => api('DELETE', `/projects/${project.ref}/secrets`, [n]).then(load, setError);
  return html`<section>
    <form class="inline" onSubmit=${set} aria-label="Set secret">
      <label for="secret-name">Secret name</label><input id="secret-name" class="mono" value=${name} onInput=${(e) => setName(e.currentTarget.value)} required />
      <label for="secret-value">Secret value</label><input id="secret-value" type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} required />
      <button type="submit" disabled=${busy}>Set secret</button>
    </form>
    <${ErrorBanner} error=${error} />
    ${list ? html`<table class="list" aria-label="Secrets"><thead><tr><th>Name</th><th>Updated</th><th>Actions</th></tr></thead>
      <tbody>${list.map((s) => html`<tr><td class="mono">${s.name}</td><td>${s.updated_at}</td>
        <td><button type="button" class="small danger" onClick=${() => unset(s.name)} aria-label=${`Unset ${s.name}`}>Unset</button></td></tr>`)}</tbody></table>` : null}
  </section>`;
}
