// Edge Functions: list, deploy (a new function or a new version) from the editor with verify_jwt, invoke
// through the project's API URL with its publishable key (public by design) and a test body, logs, delete.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { attempt, ErrorBanner, html } from '../ui.js';

const SAMPLE = `Deno.serve(async (req) => {
  const body = req.method === 'GET' ? null : await req.json().catch(() => null);
  return Response.json({ hello: 'world', body });
});
`;

function Invoke({ project, fn }) {
  const [body, setBody] = useState('{"name": "studio"}');
  const [out, setOut] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const invoke = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      const keys = await api('GET', `/projects/${project.ref}/api-keys`);
      const key = keys.find((k) => k.type === 'publishable' && k.status === 'active');
      if (!key) throw new Error('the project has no active publishable key to invoke with');
      const started = performance.now();
      const res = await fetch(`${project.api_url}/functions/v1/${fn.slug}`, {
        method: 'POST',
        headers: { apikey: key.opaque_key, 'content-type': 'application/json' },
        body,
      });
      setOut({ status: res.status, ms: Math.round(performance.now() - started), text: await res.text() });
    });
  };
  return html`<form onSubmit=${invoke} aria-label="Invoke">
    <label for="invoke-body">Request body</label>
    <textarea id="invoke-body" class="mono" rows="3" value=${body} onInput=${(e) => setBody(e.currentTarget.value)}></textarea>
    <button type="submit" disabled=${busy}>Invoke</button>
    <${ErrorBanner} error=${error} />
    ${out ? html`<pre class="mono" aria-label="Response">${out.status} (${out.ms} ms)\n${out.text}</pre>` : null}
  </form>`;
}

function Logs({ project, fn }) {
  const [logs, setLogs] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/projects/${project.ref}/functions/${fn.slug}/logs?limit=100`).then(setLogs, setError);
  useEffect(() => { load(); }, [fn.slug, fn.version]);
  return html`<div>
    <button type="button" onClick=${load}>Refresh logs</button>
    <${ErrorBanner} error=${error} />
    ${logs ? html`<pre class="logs mono" aria-label="Logs">${logs.map((l) => `${new Date(l.timestamp_ms).toISOString()} ${l.level} ${l.message}`).join('\n') || 'no logs yet'}</pre>` : null}
  </div>`;
}

/** A new function (the sample), or a new version of `fn`: its current files loaded, one edited at a time. */
function Deploy({ project, fn, onDeployed }) {
  const [slug, setSlug] = useState(fn ? fn.slug : '');
  const [bundle, setBundle] = useState(fn ? null : { entrypoint: 'index.ts', import_map: null, files: [{ name: 'index.ts', content: SAMPLE }] });
  const [file, setFile] = useState(0);
  const [verify, setVerify] = useState(fn ? fn.verify_jwt : true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!fn) return;
    api('GET', `/projects/${project.ref}/functions/${fn.slug}/code`).then((b) => {
      setBundle(b);
      setFile(Math.max(0, b.files.findIndex((f) => f.name === b.entrypoint)));
    }, setError);
  }, [fn && fn.slug, fn && fn.version]);
  if (!bundle) return html`<${ErrorBanner} error=${error} />`;
  const code = bundle.files[file].content;
  const setCode = (content) => setBundle({ ...bundle, files: bundle.files.map((f, i) => (i === file ? { ...f, content } : f)) });
  const deploy = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      const body = { slug, files: bundle.files, entrypoint: bundle.entrypoint, verify_jwt: verify };
      if (bundle.import_map) body.import_map = bundle.import_map;
      onDeployed(await api('POST', `/projects/${project.ref}/functions`, body));
    });
  };
  return html`<form class="card" onSubmit=${deploy} aria-label="Deploy function">
    <label for="fn-slug">Function name</label>
    <input id="fn-slug" class="mono" value=${slug} readOnly=${!!fn} onInput=${(e) => setSlug(e.currentTarget.value)} required pattern="[A-Za-z][A-Za-z0-9_-]*" maxlength="128" />
    ${bundle.files.length > 1 ? html`<label for="fn-file">File</label>
      <select id="fn-file" value=${file} onChange=${(e) => setFile(Number(e.currentTarget.value))}>
        ${bundle.files.map((f, i) => html`<option value=${i}>${f.name}</option>`)}</select>` : null}
    <label for="fn-code">Code</label>
    <textarea id="fn-code" class="mono" rows="12" spellcheck="false" value=${code} onInput=${(e) => setCode(e.currentTarget.value)}></textarea>
    <label class="switch"><input type="checkbox" checked=${verify} onChange=${(e) => setVerify(e.currentTarget.checked)} /> Verify JWT</label>
    <button type="submit" disabled=${busy}>${busy ? 'Deploying…' : 'Deploy'}</button>
    <${ErrorBanner} error=${error} />
  </form>`;
}

export function Functions({ project }) {
  const [list, setList] = useState(null);
  const [selected, setSelected] = useState(null);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState(null);
  const load = (slug) => api('GET', `/projects/${project.ref}/functions`).then((fs) => {
    setList(fs);
    setSelected(fs.find((f) => f.slug === (slug || (selected && selected.slug))) || null);
  }, setError);
  useEffect(() => { load(); }, [project.ref]);
  const remove = () => api('DELETE', `/projects/${project.ref}/functions/${selected.slug}`).then(() => { setSelected(null); load(); }, setError);
  return html`<div class="split">
    <aside>
      <button type="button" onClick=${() => { setCreating(true); setSelected(null); }}>New function</button>
      <ul class="nav" aria-label="Functions">${(list || []).map((f) => html`<li><button type="button" class="link"
        onClick=${() => { setCreating(false); setSelected(f); }}>${f.slug}</button> <span class="muted">v${f.version}</span></li>`)}</ul>
    </aside>
    <div>
      <${ErrorBanner} error=${error} />
      ${creating ? html`<${Deploy} project=${project} onDeployed=${(f) => { setCreating(false); load(f.slug); }} />` : null}
      ${selected ? html`<section>
        <h2>${selected.slug} <span class="muted">version ${selected.version}, verify_jwt ${String(selected.verify_jwt)}</span></h2>
        <${Invoke} project=${project} fn=${selected} />
        <h3>Logs</h3><${Logs} project=${project} fn=${selected} />
        <details><summary>Deploy a new version</summary><${Deploy} project=${project} fn=${selected} onDeployed=${(f) => load(f.slug)} /></details>
        <button type="button" class="danger" onClick=${remove}>Delete function</button>
      </section>` : null}
    </div>
  </div>`;
}
