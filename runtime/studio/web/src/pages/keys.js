// API keys: list (secret keys masked), create, reveal on an explicit click, revoke.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { attempt, Copy, ErrorBanner, html } from '../ui.js';

function Key({ k, projectRef, reload }) {
  const [shown, setShown] = useState(k.opaque_key);
  const [error, setError] = useState(null);
  const reveal = () => api('GET', `/projects/${projectRef}/api-keys/${k.id}?reveal=true`).then((x) => setShown(x.opaque_key), setError);
  const revoke = () => api('DELETE', `/projects/${projectRef}/api-keys/${k.id}`).then(reload, setError);
  return html`<tr>
    <td>${k.name}<div class="muted">${k.description || ''}</div></td><td>${k.type}</td><td>${k.role}</td><td>${k.status}</td>
    <td class="mono">${shown ? html`<span class="key">${shown}</span> <${Copy} value=${shown} label=${`Copy ${k.name}`} />` : html`${k.prefix}… <button type="button" class="small" onClick=${reveal}>Reveal</button>`}</td>
    <td>${k.status === 'active' ? html`<button type="button" class="small danger" onClick=${revoke} aria-label=${`Revoke ${k.name}`}>Revoke</button>` : null}
      <${ErrorBanner} error=${error} /></td>
  </tr>`;
}

export function Keys({ project }) {
  const [keys, setKeys] = useState(null);
  const [name, setName] = useState('');
  const [type, setType] = useState('publishable');
  const [created, setCreated] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/projects/${project.ref}/api-keys`).then(setKeys, setError);
  useEffect(() => { load(); }, [project.ref]);
  const create = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      setCreated(await api('POST', `/projects/${project.ref}/api-keys`, { name, type }));
      setName('');
      load();
    });
  };
  return html`<section>
    <p>API URL: <span class="mono">${project.api_url}</span> <${Copy} value=${project.api_url} label="Copy API URL" /></p>
    <form class="inline" onSubmit=${create} aria-label="New key">
      <label for="key-name">Key name</label><input id="key-name" pattern="[A-Za-z0-9_-]{1,64}" title="1 to 64 of a-z, A-Z, 0-9, _ and -" value=${name} onInput=${(e) => setName(e.currentTarget.value)} required />
      <label for="key-type">Key type</label>
      <select id="key-type" value=${type} onChange=${(e) => setType(e.currentTarget.value)}><option value="publishable">publishable</option><option value="secret">secret</option></select>
      <button type="submit" disabled=${busy}>Create key</button>
    </form>
    ${created ? html`<p class="notice" role="status">Created ${created.name}: <span class="mono">${created.opaque_key || created.key}</span></p>` : null}
    <${ErrorBanner} error=${error} />
    ${keys ? html`<table class="list" aria-label="API keys"><thead><tr><th>Name</th><th>Type</th><th>Role</th><th>Status</th><th>Key</th><th>Actions</th></tr></thead>
      <tbody>${keys.map((k) => html`<${Key} key=${k.id} k=${k} projectRef=${project.ref} reload=${load} />`)}</tbody></table>` : null}
  </section>`;
}
