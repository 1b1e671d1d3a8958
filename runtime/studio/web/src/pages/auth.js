// Auth: the project's users (from its auth schema) with search, and its sign-up settings (the row of
// `auth.supactl_settings` the auth service reads on every request, so a change applies at once).
import { useEffect, useState } from 'preact/hooks';
import { literal, sql } from '../api.js';
import { attempt, ErrorBanner, Grid, html } from '../ui.js';

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

export function Auth({ project }) {
  const [search, setSearch] = useState('');
  const [users, setUsers] = useState(null);
  const [error, setError] = useState(null);
  const load = () => {
    const where = search.trim() ? ` where email ilike ${literal('%' + search.trim() + '%')}` : '';
    sql(project.ref, `select id, email, phone, email_confirmed_at, last_sign_in_at, created_at from auth.users${where} order by created_at desc limit 100`)
      .then(setUsers, setError);
  };
  useEffect(load, [project.ref, search]);
  return html`<section>
    <label for="user-search">Search users</label>
    <input id="user-search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
    <${ErrorBanner} error=${error} />
    ${users ? html`<${Grid} columns=${users.columns} rows=${users.rows} label="Users" />` : null}
    <${Settings} project=${project} />
  </section>`;
}
