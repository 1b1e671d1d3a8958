// Auth: the project's users (from its auth schema), search, delete.
import { useEffect, useState } from 'preact/hooks';
import { literal, sql } from '../api.js';
import { ErrorBanner, Grid, html } from '../ui.js';

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
  </section>`;
}
