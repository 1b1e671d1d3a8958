// Settings: rename, health, and the JWT secret's rotation (standby, rotate with a grace period, revoke the
// previous one). Secret values are never shown.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { attempt, ErrorBanner, html } from '../ui.js';

export function Settings({ project, reload }) {
  const [name, setName] = useState(project.name);
  const [grace, setGrace] = useState('3600');
  const [jwt, setJwt] = useState([]);
  const [health, setHealth] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const loadJwt = () => api('GET', `/projects/${project.ref}/jwt-keys`).then(setJwt, setError);
  useEffect(() => { loadJwt(); }, [project.ref]);
  const run = (f) => attempt(setBusy, setError, f);
  const rename = (e) => {
    e.preventDefault();
    run(async () => { await api('PATCH', `/projects/${project.ref}`, { name }); reload(); });
  };
  const check = () => run(async () => {
    try {
      setHealth(await api('GET', `/projects/${project.ref}/health`));
    } catch (e) {
      if (e.body && e.body.data) setHealth(e.body.data); else throw e;
    }
  });
  const jwtCall = (method, path, body) => run(async () => { await api(method, `/projects/${project.ref}/jwt-keys/${path}`, body); loadJwt(); });
  return html`<section>
    <form class="inline" onSubmit=${rename} aria-label="Rename">
      <label for="rename">Project name</label><input id="rename" value=${name} onInput=${(e) => setName(e.currentTarget.value)} required />
      <button type="submit" disabled=${busy}>Rename</button>
    </form>
    <h2>Health</h2>
    <button type="button" onClick=${check} disabled=${busy}>Check health</button>
    ${health ? html`<pre class="mono" role="status">${JSON.stringify(health, null, 2)}</pre>` : null}
    <h2>JWT secret</h2>
    <table class="list" aria-label="JWT secrets"><thead><tr><th>Id</th><th>Status</th><th>Created</th><th>Expires</th></tr></thead>
      <tbody>${jwt.map((k) => html`<tr><td class="mono">${k.id}</td><td>${k.status}</td><td>${k.created_at}</td><td>${k.expires_at || ''}</td></tr>`)}</tbody></table>
    <div class="toolbar">
      <button type="button" disabled=${busy} onClick=${() => jwtCall('POST', 'standby')}>Create standby secret</button>
      <label for="grace">Grace seconds</label><input id="grace" type="number" min="0" value=${grace} onInput=${(e) => setGrace(e.currentTarget.value)} />
      <button type="button" disabled=${busy} onClick=${() => jwtCall('POST', 'rotate', { grace_seconds: Number(grace) })}>Rotate</button>
      <button type="button" class="danger" disabled=${busy} onClick=${() => jwtCall('DELETE', 'previous')}>Revoke previous</button>
    </div>
    <${ErrorBanner} error=${error} />
  </section>`;
}
