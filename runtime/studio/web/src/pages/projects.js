// Projects: list with status and search, create (name and placement), pause/restore, delete after typing
// the project's ref, the api_url to copy and a link to its keys (copied there, secret ones once revealed).
import { useEffect, useState } from 'preact/hooks';
import { api, apiRaw } from '../api.js';
import { attempt, Copy, ErrorBanner, html } from '../ui.js';

function Create({ onCreated }) {
  const [name, setName] = useState('');
  const [placement, setPlacement] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = (e) => {
    e.preventDefault();
    const body = { name };
    const p = placement.trim();
    if (p.startsWith('region:')) body.region = p.slice(7);
    else if (p) body.worker = p;
    attempt(setBusy, setError, async () => {
      const created = await api('POST', '/projects', body);
      setName('');
      onCreated(created);
    });
  };
  return html`<form class="inline" onSubmit=${submit} aria-label="New project">
    <label for="project-name">Project name</label>
    <input id="project-name" value=${name} onInput=${(e) => setName(e.currentTarget.value)} required maxlength="64" />
    <label for="placement">Worker or region:NAME (optional)</label>
    <input id="placement" value=${placement} onInput=${(e) => setPlacement(e.currentTarget.value)} />
    <button type="submit" disabled=${busy}>${busy ? 'Creating…' : 'Create project'}</button>
    <${ErrorBanner} error=${error} />
  </form>`;
}

function Row({ p, reload }) {
  const [confirming, setConfirming] = useState(false);
  const [typed, setTyped] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const act = (method, path) => attempt(setBusy, setError, async () => {
    await api(method, path);
    reload();
  });
  return html`<tr>
    <td><a href=${`#/p/${p.ref}/tables`}>${p.name}</a><div class="muted mono">${p.ref}</div></td>
    <td><span class=${'status ' + p.status}>${p.status}</span></td>
    <td class="mono">${p.api_url} <${Copy} value=${p.api_url} label=${`Copy API URL of ${p.name}`} />
      <a href=${`#/p/${p.ref}/keys`} aria-label=${`API keys of ${p.name}`}>keys</a></td>
    <td>
      ${p.status === 'active' ? html`<button type="button" disabled=${busy} onClick=${() => act('POST', `/projects/${p.ref}/pause`)}>Pause</button>` : null}
      ${p.status === 'paused' ? html`<button type="button" disabled=${busy} onClick=${() => act('POST', `/projects/${p.ref}/restore`)}>Restore</button>` : null}
      ${confirming
        ? html`<span class="confirm">
            <label for=${`confirm-${p.ref}`}>Type ${p.ref} to delete</label>
            <input id=${`confirm-${p.ref}`} value=${typed} onInput=${(e) => setTyped(e.currentTarget.value)} />
            <button type="button" class="danger" disabled=${typed !== p.ref || busy}
              onClick=${() => act('DELETE', `/projects/${p.ref}`)}>Delete project</button>
            <button type="button" onClick=${() => setConfirming(false)}>Cancel</button>
          </span>`
        : html`<button type="button" class="danger" onClick=${() => setConfirming(true)} aria-label=${`Delete ${p.name}`}>Delete</button>`}
      <${ErrorBanner} error=${error} />
    </td>
  </tr>`;
}

export function Projects() {
  const [list, setList] = useState(null);
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState(null);
  const load = () => {
    const q = search ? `&search=${encodeURIComponent(search)}` : '';
    apiRaw('GET', `/projects?limit=100${q}`).then((b) => setList(b.data), setError);
  };
  useEffect(load, [search]);
  return html`<main>
    <h1>Projects</h1>
    <div class="toolbar">
      <label for="project-search">Search projects</label>
      <input id="project-search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      <button type="button" onClick=${() => setCreating(!creating)}>New project</button>
    </div>
    ${creating ? html`<${Create} onCreated=${(p) => { setCreating(false); location.hash = `#/p/${p.ref}/tables`; }} />` : null}
    <${ErrorBanner} error=${error} />
    ${list === null ? html`<p class="muted">Loading…</p>` : html`<table class="list" aria-label="Projects">
      <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">API URL</th><th scope="col">Actions</th></tr></thead>
      <tbody>${list.map((p) => html`<${Row} key=${p.ref} p=${p} reload=${load} />`)}</tbody>
    </table>`}
    ${list && list.length === 0 ? html`<p class="muted">No projects${search ? ' match' : ' yet'}.</p>` : null}
  </main>`;
}
