// Auth: the project's users (from its auth schema) with search; create (email and password, confirmed
// at once unless unticked), delete and send recovery through the admin API, which runs the project's own
// auth service; then its configuration (`auth_settings.js`).
import { useEffect, useState } from 'preact/hooks';
import { api, literal, sql } from '../api.js';
import { AuthSettings } from './auth_settings.js';
import { attempt, cell, ErrorBanner, html } from '../ui.js';

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
    <${AuthSettings} project=${project} />
  </section>`;
}
