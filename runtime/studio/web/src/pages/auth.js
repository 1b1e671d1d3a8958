// Auth: the project's users (from its auth schema) with search; create (email and password, confirmed
// at once unless unticked), delete and send recovery through the admin API, which runs the project's own
// auth service; and its sign-up settings (the row of `auth.supactl_settings` the auth service reads on
// every request, so a change applies at once).
import { useEffect, useState } from 'preact/hooks';
import { api, literal, sql } from '../api.js';
import { attempt, cell, ErrorBanner, html } from '../ui.js';

const SETTINGS = 'select site_url, disable_signup, mailer_autoconfirm, anonymous_users_enabled, password_min_length from auth.supactl_settings';

function Settings({ project }) {
  const [s, setS] = useState(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    sql(project.ref, SETTINGS).then((r) => setS(Object.fromEntries(r.columns.map((c, i) => [c.name, r.rows[0][i]]))), setError);
  }, [project.ref]);
  if (!s) return html`<${ErrorBanner} error=${error} />`;
  const set = (k, v) => { setSaved(false); setS({ ...s, [k]: v }); };
  const save = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      await sql(project.ref, `update auth.supactl_settings set site_url = ${literal(s.site_url)}, disable_signup = ${!!s.disable_signup},
        mailer_autoconfirm = ${!!s.mailer_autoconfirm}, anonymous_users_enabled = ${!!s.anonymous_users_enabled},
        password_min_length = ${Number(s.password_min_length) | 0}`);
      setSaved(true);
    });
  };
  const check = (k, label) => html`<label class="switch"><input type="checkbox" checked=${s[k]} onChange=${(e) => set(k, e.currentTarget.checked)} /> ${label}</label>`;
  return html`<form class="card" onSubmit=${save} aria-label="Auth settings">
    <h2>Settings</h2>
    ${check('disable_signup', 'Disable sign-ups')}
    ${check('mailer_autoconfirm', 'Confirm emails automatically')}
    ${check('anonymous_users_enabled', 'Allow anonymous sign-ins')}
    <label for="password-min">Minimum password length</label>
    <input id="password-min" type="number" min="6" max="72" value=${s.password_min_length} onInput=${(e) => set('password_min_length', e.currentTarget.value)} />
    <label for="site-url">Site URL</label>
    <input id="site-url" type="url" value=${s.site_url} onInput=${(e) => set('site_url', e.currentTarget.value)} />
    <div class="toolbar"><button type="submit" disabled=${busy}>Save settings</button>${saved ? html`<span role="status">Saved</span>` : null}</div>
    <${ErrorBanner} error=${error} />
  </form>`;
}

function NewUser({ project, onCreated }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      await api('POST', `/projects/${project.ref}/auth/users`, { email, password, email_confirm: confirm });
      setEmail('');
      setPassword('');
      onCreated();
    });
  };
  return html`<form class="inline" onSubmit=${submit} aria-label="New user">
    <label for="user-email">Email</label>
    <input id="user-email" type="email" autocomplete="off" value=${email} onInput=${(e) => setEmail(e.currentTarget.value)} required />
    <label for="user-password">Password</label>
    <input id="user-password" type="password" autocomplete="new-password" value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} required />
    <label class="switch"><input type="checkbox" checked=${confirm} onChange=${(e) => setConfirm(e.currentTarget.checked)} /> Auto-confirm email</label>
    <button type="submit" disabled=${busy}>Create user</button>
    <${ErrorBanner} error=${error} />
  </form>`;
}

const COLUMNS = ['email', 'phone', 'email_confirmed_at', 'recovery_sent_at', 'last_sign_in_at', 'created_at'];

function UserRow({ project, u, reload }) {
  const [confirming, setConfirming] = useState(false);
  const [note, setNote] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const recover = () => attempt(setBusy, setError, async () => {
    await api('POST', `/projects/${project.ref}/auth/recover`, { email: u.email });
    await reload();
    setNote('Recovery email sent');
  });
  const remove = () => attempt(setBusy, setError, async () => {
    await api('DELETE', `/projects/${project.ref}/auth/users/${u.id}`);
    reload();
  });
  const who = u.email || u.id;
  return html`<tr>
    ${COLUMNS.map((c) => html`<td>${cell(u[c])}</td>`)}
    <td>
      ${u.email ? html`<button type="button" class="small" disabled=${busy} onClick=${recover} aria-label=${`Send recovery to ${who}`}>Send recovery</button>` : null}
      ${confirming
        ? html`<button type="button" class="small danger" disabled=${busy} onClick=${remove} aria-label=${`Confirm delete ${who}`}>Confirm delete</button>
            <button type="button" class="small" onClick=${() => setConfirming(false)}>Cancel</button>`
        : html`<button type="button" class="small danger" onClick=${() => setConfirming(true)} aria-label=${`Delete ${who}`}>Delete</button>`}
      ${note ? html`<span role="status">${note}</span>` : null}
      <${ErrorBanner} error=${error} />
    </td>
  </tr>`;
}

export function Auth({ project }) {
  const [search, setSearch] = useState('');
  const [users, setUsers] = useState(null);
  const [error, setError] = useState(null);
  const load = () => {
    const where = search.trim() ? ` where email ilike ${literal('%' + search.trim() + '%')}` : '';
    return sql(project.ref, `select id, ${COLUMNS.join(', ')} from auth.users${where} order by created_at desc limit 100`)
      .then((r) => setUsers(r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c.name, row[i]])))), setError);
  };
  useEffect(() => { load(); }, [project.ref, search]);
  return html`<section>
    <${NewUser} project=${project} onCreated=${load} />
    <label for="user-search">Search users</label>
    <input id="user-search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
    <${ErrorBanner} error=${error} />
    ${users ? html`<div class="grid-wrap"><table class="grid" aria-label="Users">
      <thead><tr>${COLUMNS.map((c) => html`<th scope="col">${c}</th>`)}<th scope="col">Actions</th></tr></thead>
      <tbody>${users.map((u) => html`<${UserRow} key=${u.id} project=${project} u=${u} reload=${load} />`)}</tbody>
    </table></div>` : null}
    <${Settings} project=${project} />
  </section>`;
}
