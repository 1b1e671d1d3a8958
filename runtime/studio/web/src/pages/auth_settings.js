// Auth configuration of a project: its settings (the row of `auth.supactl_settings` the auth service reads
// on every request, so a change applies at once), its OAuth/OIDC sign-in providers and its Send SMS hook
// (both through the admin API, which seals their secrets; no answer carries one back, so a secret field
// left empty keeps the stored secret).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, literal, sql } from '../api.js';
import { attempt, Copy, ErrorBanner, html } from '../ui.js';

const FLAGS = [
  ['disable_signup', 'Disable sign-ups'],
  ['mailer_autoconfirm', 'Confirm emails automatically'],
  ['anonymous_users_enabled', 'Allow anonymous sign-ins'],
  ['phone_enabled', 'Allow phone sign-ins'],
  ['phone_autoconfirm', 'Confirm phones automatically'],
  ['mfa_phone_enabled', 'Allow phone MFA factors'],
  ['security_manual_linking_enabled', 'Allow manual identity linking'],
  ['security_update_password_require_reauthentication', 'Require reauthentication to change a password'],
  ['mailer_secure_email_change_enabled', 'Confirm email changes on both addresses'],
];
const NUMBERS = [
  ['password_min_length', 'Minimum password length', 6, 72],
  ['sms_otp_length', 'SMS code length', 6, 10],
  ['sms_otp_exp', 'SMS code lifetime (seconds)', 1, 86400],
  ['sms_max_frequency', 'Seconds between two SMS to one user', 0, 86400],
  ['rate_limit_sms_sent', 'SMS sent per hour', 0, 100000],
];
const SETTINGS = `select site_url, array_to_string(uri_allow_list, E'\\n') as redirect_urls,
  ${FLAGS.map(([k]) => k).join(', ')}, ${NUMBERS.map(([k]) => k).join(', ')} from auth.supactl_settings`;

const textArray = (lines) => {
  const items = lines.split('\n').map((l) => l.trim()).filter(Boolean);
  return items.length ? `array[${items.map(literal).join(', ')}]::text[]` : `'{}'::text[]`;
};

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
      const assignments = [
        `site_url = ${literal(s.site_url)}`,
        `uri_allow_list = ${textArray(s.redirect_urls || '')}`,
        ...FLAGS.map(([k]) => `${k} = ${!!s[k]}`),
        ...NUMBERS.map(([k]) => `${k} = ${Number(s[k]) | 0}`),
      ];
      await sql(project.ref, `update auth.supactl_settings set ${assignments.join(', ')}`);
      setSaved(true);
    });
  };
  const id = (k) => `auth-${k.replaceAll('_', '-')}`;
  return html`<form class="card" onSubmit=${save} aria-label="Auth settings">
    <h2>Settings</h2>
    ${FLAGS.map(([k, label]) => html`<label class="switch"><input type="checkbox" checked=${s[k]} onChange=${(e) => set(k, e.currentTarget.checked)} /> ${label}</label>`)}
    ${NUMBERS.map(([k, label, min, max]) => html`<label for=${id(k)}>${label}</label>
      <input id=${id(k)} type="number" min=${min} max=${max} value=${s[k]} onInput=${(e) => set(k, e.currentTarget.value)} />`)}
    <label for="site-url">Site URL</label>
    <input id="site-url" type="url" value=${s.site_url} onInput=${(e) => set('site_url', e.currentTarget.value)} />
    <label for="redirect-urls">Redirect URLs</label>
    <div class="muted">One per line: where sign-in links and OAuth may send users back (besides the site URL).</div>
    <textarea id="redirect-urls" rows="3" value=${s.redirect_urls} onInput=${(e) => set('redirect_urls', e.currentTarget.value)}></textarea>
    <div class="toolbar"><button type="submit" disabled=${busy}>Save settings</button>${saved ? html`<span role="status">Saved</span>` : null}</div>
    <${ErrorBanner} error=${error} />
  </form>`;
}

const PRESETS = ['google', 'github', 'gitlab', 'azure', 'apple'];
const EMPTY = { kind: 'github', name: '', client_id: '', client_secret: '', issuer: '', scopes: '', enabled: true };

function ProviderForm({ project, initial, onSaved }) {
  const [p, setP] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => setP(initial), [initial]);
  const set = (k, v) => setP({ ...p, [k]: v });
  const oidc = p.kind === 'oidc';
  const save = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      const name = oidc ? p.name.trim() : p.kind;
      const body = { enabled: p.enabled, client_id: p.client_id.trim(), scopes: p.scopes.trim() };
      if (p.client_secret) body.client_secret = p.client_secret;
      if (p.issuer.trim()) body.issuer = p.issuer.trim();
      await api('PUT', `/projects/${project.ref}/auth/providers/${encodeURIComponent(name)}`, body);
      onSaved();
    });
  };
  return html`<form class="inline" onSubmit=${save} aria-label="Provider settings">
    <label for="provider-kind">Provider</label>
    <select id="provider-kind" value=${p.kind} onChange=${(e) => set('kind', e.currentTarget.value)}>
      ${PRESETS.map((n) => html`<option value=${n}>${n}</option>`)}<option value="oidc">other OIDC provider</option>
    </select>
    ${oidc ? html`<label for="provider-name">Provider name</label>
      <input id="provider-name" pattern="[a-z0-9_-]{1,40}" title="1 to 40 of a-z, 0-9, _ and -" value=${p.name} onInput=${(e) => set('name', e.currentTarget.value)} required />` : null}
    <label for="provider-client-id">Client ID</label>
    <input id="provider-client-id" value=${p.client_id} onInput=${(e) => set('client_id', e.currentTarget.value)} required />
    <label for="provider-secret">Client secret</label>
    <input id="provider-secret" type="password" autocomplete="off" placeholder=${initial.client_id ? 'empty keeps the stored secret' : ''}
      value=${p.client_secret} onInput=${(e) => set('client_secret', e.currentTarget.value)} />
    <label for="provider-issuer">Issuer URL</label>
    <input id="provider-issuer" type="url" placeholder=${oidc ? '' : 'optional'} value=${p.issuer} onInput=${(e) => set('issuer', e.currentTarget.value)} required=${oidc} />
    <label for="provider-scopes">Scopes</label>
    <input id="provider-scopes" placeholder="the provider's defaults" value=${p.scopes} onInput=${(e) => set('scopes', e.currentTarget.value)} />
    <label class="switch"><input type="checkbox" checked=${p.enabled} onChange=${(e) => set('enabled', e.currentTarget.checked)} /> Enabled</label>
    <button type="submit" disabled=${busy}>Save provider</button>
    <${ErrorBanner} error=${error} />
  </form>`;
}

function ProviderRow({ project, p, onEdit, reload }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  const remove = () => api('DELETE', `/projects/${project.ref}/auth/providers/${encodeURIComponent(p.provider)}`).then(reload, setError);
  return html`<tr>
    <td>${p.provider}</td><td>${p.enabled ? 'enabled' : 'disabled'}</td><td class="mono">${p.client_id}</td>
    <td>${p.issuer || ''}</td><td>${p.client_secret_set ? 'stored' : 'none'}</td>
    <td><button type="button" class="small" onClick=${onEdit} aria-label=${`Edit ${p.provider}`}>Edit</button>
      ${confirming
        ? html`<button type="button" class="small danger" onClick=${remove} aria-label=${`Confirm delete provider ${p.provider}`}>Confirm delete</button>`
        : html`<button type="button" class="small danger" onClick=${() => setConfirming(true)} aria-label=${`Delete provider ${p.provider}`}>Delete</button>`}
      <${ErrorBanner} error=${error} /></td>
  </tr>`;
}

function Providers({ project }) {
  const [list, setList] = useState(null);
  const [editing, setEditing] = useState(EMPTY);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/projects/${project.ref}/auth/providers`).then(setList, setError);
  useEffect(() => { load(); }, [project.ref]);
  const edit = (p) => setEditing({
    kind: PRESETS.includes(p.provider) ? p.provider : 'oidc', name: p.provider, client_id: p.client_id,
    client_secret: '', issuer: p.issuer || '', scopes: p.scopes, enabled: p.enabled,
  });
  const callback = `${project.api_url}/auth/v1/callback`;
  return html`<div class="card">
    <h2>Sign-in providers</h2>
    <p>Callback URL to register with each provider: <span class="mono">${callback}</span> <${Copy} value=${callback} label="Copy callback URL" /></p>
    ${list ? html`<table class="list" aria-label="Providers"><thead><tr><th>Provider</th><th>Status</th><th>Client ID</th><th>Issuer</th><th>Secret</th><th>Actions</th></tr></thead>
      <tbody>${list.map((p) => html`<${ProviderRow} key=${p.provider} project=${project} p=${p} onEdit=${() => edit(p)} reload=${load} />`)}</tbody></table>` : null}
    <${ProviderForm} project=${project} initial=${editing} onSaved=${() => { setEditing({ ...EMPTY }); load(); }} />
    <${ErrorBanner} error=${error} />
  </div>`;
}

/** A fresh Standard Webhooks secret, `v1,whsec_<base64 of 32 random bytes>`. */
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return 'v1,whsec_' + btoa(String.fromCharCode(...bytes));
}

function SmsHook({ project }) {
  const path = `/projects/${project.ref}/auth/hooks/send_sms`;
  const [hook, setHook] = useState(undefined);
  const [uri, setUri] = useState('');
  const [secret, setSecret] = useState('');
  const [enabled, setEnabled] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const load = () => api('GET', path).then((h) => { setHook(h); setUri(h.uri); setEnabled(h.enabled); }, (e) => {
    if (e instanceof ApiError && e.status === 404) setHook(null); else setError(e);
  });
  useEffect(() => { load(); }, [project.ref]);
  const save = (e) => {
    e.preventDefault();
    attempt(setBusy, setError, async () => {
      await api('PUT', path, secret ? { uri, enabled, secret } : { uri, enabled });
      setSecret('');
      await load();
    });
  };
  const remove = () => attempt(setBusy, setError, async () => { await api('DELETE', path); setUri(''); setHook(null); });
  return html`<form class="card" onSubmit=${save} aria-label="Send SMS hook">
    <h2>Send SMS hook</h2>
    <p class="muted">Phone sign-ins and phone MFA factors send their codes by calling this endpoint, signed as Standard Webhooks with the secret.</p>
    <p role="status">${hook === undefined ? '' : hook ? `Set: ${hook.enabled ? 'enabled' : 'disabled'}, secret stored` : 'Not set'}</p>
    <label for="sms-hook-uri">Endpoint URL</label>
    <input id="sms-hook-uri" type="url" size="50" value=${uri} onInput=${(e) => setUri(e.currentTarget.value)} required />
    <label for="sms-hook-secret">Secret</label>
    <div class="toolbar">
      <input id="sms-hook-secret" class="mono" size="60" autocomplete="off" placeholder=${hook ? 'empty keeps the stored secret' : 'v1,whsec_…'}
        value=${secret} onInput=${(e) => setSecret(e.currentTarget.value)} required=${!hook} />
      <button type="button" class="small" onClick=${() => setSecret(newSecret())}>Generate secret</button>
      ${secret ? html`<${Copy} value=${secret} label="Copy secret" />` : null}
    </div>
    <label class="switch"><input type="checkbox" checked=${enabled} onChange=${(e) => setEnabled(e.currentTarget.checked)} /> Enabled</label>
    <div class="toolbar">
      <button type="submit" disabled=${busy}>Save hook</button>
      ${hook ? html`<button type="button" class="danger" disabled=${busy} onClick=${remove}>Remove hook</button>` : null}
    </div>
    <${ErrorBanner} error=${error} />
  </form>`;
}

export function AuthSettings({ project }) {
  return html`<div>
    <${Settings} project=${project} />
    <${Providers} project=${project} />
    <${SmsHook} project=${project} />
  </div>`;
}
