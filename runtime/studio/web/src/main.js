// supactl Studio: sign-in, then the projects list and one page per part of a project. Routing is the URL's
// hash (#/p/{ref}/{tab}), so every page has an address and the browser's back button works.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { resume, signIn, signOut, whenExpired } from './api.js';
import { ErrorBanner, html } from './ui.js';
import { Projects } from './pages/projects.js';
import { Project } from './pages/project.js';
import { Platform } from './pages/platform.js';

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const f = () => setHash(location.hash || '#/');
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function SignIn({ onDone, expired }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onDone(await signIn(key));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>supactl Studio</h1>
    ${expired ? html`<p class="notice" role="status">Your session has expired. Sign in again to continue.</p>` : null}
    <form onSubmit=${submit}>
      <label for="admin-key">Admin key</label>
      <input id="admin-key" type="password" autocomplete="current-password" value=${key}
        onInput=${(e) => setKey(e.currentTarget.value)} required autofocus />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    <${ErrorBanner} error=${error} />
  </main>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [expired, setExpired] = useState(false);
  const hash = useHash();
  useEffect(() => {
    whenExpired(() => {
      setSession(null);
      setExpired(true);
    });
    resume().then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return html`<p class="muted">Loading…</p>`;
  if (!session) return html`<${SignIn} expired=${expired} onDone=${(s) => { setExpired(false); setSession(s); }} />`;
  const parts = hash.replace(/^#\/?/, '').split('/');
  let page;
  if (parts[0] === 'p' && parts[1]) page = html`<${Project} projectRef=${parts[1]} tab=${parts[2] || 'tables'} />`;
  else if (parts[0] === 'platform') page = html`<${Platform} />`;
  else page = html`<${Projects} />`;
  const out = async () => {
    await signOut();
    setSession(null);
  };
  return html`<div class="shell">
    <header>
      <a href="#/" class="brand">supactl Studio</a>
      <nav aria-label="Platform"><a href="#/">Projects</a> <a href="#/platform">Platform</a></nav>
      <button type="button" class="link" onClick=${out}>Sign out</button>
    </header>
    ${page}
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
