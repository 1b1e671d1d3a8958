// A table's row level security policies: the list (postgres-meta's shape), a new policy (name, command,
// permissive or restrictive, roles, USING and WITH CHECK expressions) and dropping one. The statement is
// built here with quoted identifiers and shown before it runs; the expressions are SQL by design (they
// are the policy), so they go in as written, in parentheses.
import { useEffect, useState } from 'preact/hooks';
import { api, ident, sql } from '../api.js';
import { attempt, ErrorBanner, html } from '../ui.js';

const COMMANDS = ['ALL', 'SELECT', 'INSERT', 'UPDATE', 'DELETE'];
// Which expressions a command takes (PostgreSQL refuses the others).
const takesUsing = (cmd) => cmd !== 'INSERT';
const takesCheck = (cmd) => cmd === 'ALL' || cmd === 'INSERT' || cmd === 'UPDATE';
const role = (r) => (r === 'public' ? 'public' : ident(r));
const qualified = (t) => `${ident(t.schema)}.${ident(t.name)}`;

export function policySql(table, p) {
  let s = `create policy ${ident(p.name.trim())} on ${qualified(table)} as ${p.restrictive ? 'restrictive' : 'permissive'} for ${p.command.toLowerCase()}`;
  s += ` to ${(p.roles.length ? p.roles : ['public']).map(role).join(', ')}`;
  if (takesUsing(p.command) && p.using.trim()) s += ` using (${p.using.trim()})`;
  if (takesCheck(p.command) && p.check.trim()) s += ` with check (${p.check.trim()})`;
  return s;
}

function NewPolicy({ table, projectRef, onDone }) {
  const [p, setP] = useState({ name: '', command: 'SELECT', restrictive: false, roles: [], using: '', check: '' });
  const [roles, setRoles] = useState(['public', 'anon', 'authenticated']);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    // Roles a policy is written for: those that cannot log in (the API's roles and the project's own
    // group roles), without PostgreSQL's own.
    api('GET', `/projects/${projectRef}/database/roles`)
      .then((rs) => setRoles(['public', ...rs.filter((r) => !r.can_login && !r.is_superuser && !/^(pg_|supabase_)/.test(r.name)).map((r) => r.name)]), () => {});
  }, [projectRef]);
  const set = (k, v) => setP({ ...p, [k]: v });
  const toggle = (r, on) => set('roles', on ? [...p.roles, r] : p.roles.filter((x) => x !== r));
  const statement = p.name.trim() ? policySql(table, p) : '';
  const save = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      await sql(projectRef, statement);
      onDone();
    });
  };
  return html`<form class="card" onSubmit=${save} aria-label="New policy">
    <label for="policy-name">Policy name</label>
    <input id="policy-name" value=${p.name} onInput=${(e) => set('name', e.currentTarget.value)} required maxlength="63" />
    <label for="policy-command">Command</label>
    <select id="policy-command" value=${p.command} onChange=${(e) => set('command', e.currentTarget.value)}>
      ${COMMANDS.map((c) => html`<option value=${c}>${c}</option>`)}</select>
    <label class="switch"><input type="checkbox" checked=${p.restrictive} onChange=${(e) => set('restrictive', e.currentTarget.checked)} /> Restrictive</label>
    <fieldset><legend>Roles</legend>
      ${roles.map((r) => html`<label class="switch"><input type="checkbox" checked=${p.roles.includes(r)} onChange=${(e) => toggle(r, e.currentTarget.checked)} /> ${r}</label>`)}
    </fieldset>
    ${takesUsing(p.command) ? html`<label for="policy-using">USING expression</label>
      <textarea id="policy-using" class="mono" rows="2" placeholder="auth.uid() = user_id" value=${p.using} onInput=${(e) => set('using', e.currentTarget.value)}></textarea>` : null}
    ${takesCheck(p.command) ? html`<label for="policy-check">WITH CHECK expression</label>
      <textarea id="policy-check" class="mono" rows="2" value=${p.check} onInput=${(e) => set('check', e.currentTarget.value)}></textarea>` : null}
    ${statement ? html`<pre class="mono" aria-label="Policy SQL">${statement}</pre>` : null}
    <div class="toolbar">
      <button type="submit" disabled=${busy || !statement}>Create policy</button>
      <button type="button" onClick=${onDone}>Cancel</button>
    </div>
    <${ErrorBanner} error=${error} />
  </form>`;
}

function Policy({ p, table, projectRef, reload }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  const statement = `drop policy ${ident(p.name)} on ${qualified(table)}`;
  const drop = () => sql(projectRef, statement).then(reload, setError);
  return html`<li><strong>${p.name}</strong> ${p.action === 'RESTRICTIVE' ? 'restrictive ' : ''}${p.command} to ${(p.roles || []).join(', ')}
    ${p.definition ? html` using <code>${p.definition}</code>` : null}${p.check ? html` with check <code>${p.check}</code>` : null}
    ${confirming
      ? html`<div><code aria-label="Drop SQL">${statement}</code>
          <button type="button" class="small danger" onClick=${drop} aria-label=${`Confirm drop policy ${p.name}`}>Confirm drop</button>
          <button type="button" class="small" onClick=${() => setConfirming(false)}>Cancel</button></div>`
      : html` <button type="button" class="small danger" onClick=${() => setConfirming(true)} aria-label=${`Drop policy ${p.name}`}>Drop</button>`}
    <${ErrorBanner} error=${error} /></li>`;
}

/** The policies of `table`, with a form for a new one. */
export function Policies({ table, projectRef }) {
  const [policies, setPolicies] = useState([]);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/projects/${projectRef}/database/policies?included_schemas=${encodeURIComponent(table.schema)}`)
    .then((ps) => setPolicies(ps.filter((x) => x.table === table.name)), setError);
  useEffect(() => { load(); }, [table.id]);
  return html`<div class="card"><h3>Policies (${policies.length})</h3>
    ${table.rls_enabled && !policies.length ? html`<p class="muted">RLS is on and no policy exists: only the service role sees rows.</p>` : null}
    ${!table.rls_enabled ? html`<p class="muted">RLS is off: policies apply once it is on.</p>` : null}
    <ul aria-label="Policies">${policies.map((p) => html`<${Policy} key=${p.id} p=${p} table=${table} projectRef=${projectRef} reload=${load} />`)}</ul>
    ${creating
      ? html`<${NewPolicy} table=${table} projectRef=${projectRef} onDone=${() => { setCreating(false); load(); }} />`
      : html`<button type="button" onClick=${() => setCreating(true)}>New policy</button>`}
    <${ErrorBanner} error=${error} />
  </div>`;
}
