// One project: a navigation with one tab per part, each tab its own page.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorBanner, html } from '../ui.js';
import { Tables } from './tables.js';
import { Sql } from './sql.js';
import { Auth } from './auth.js';
import { Functions } from './functions.js';
import { Keys } from './keys.js';
import { Secrets } from './secrets.js';
import { Settings } from './settings.js';

const TABS = [
  ['tables', 'Tables', Tables],
  ['sql', 'SQL', Sql],
  ['auth', 'Auth', Auth],
  ['functions', 'Functions', Functions],
  ['keys', 'API keys', Keys],
  ['secrets', 'Secrets', Secrets],
  ['settings', 'Settings', Settings],
];

export function Project({ projectRef, tab }) {
  const [project, setProject] = useState(null);
  const [error, setError] = useState(null);
  const reload = () => api('GET', `/projects/${projectRef}`).then(setProject, setError);
  useEffect(() => {
    setProject(null);
    reload();
  }, [projectRef]);
  const current = TABS.find((t) => t[0] === tab) || TABS[0];
  const Page = current[2];
  return html`<main>
    <h1>${project ? project.name : projectRef} <span class="muted mono">${projectRef}</span></h1>
    <nav class="tabs" aria-label="Project">
      ${TABS.map(([id, label]) => html`<a href=${`#/p/${projectRef}/${id}`}
        aria-current=${id === current[0] ? 'page' : undefined}>${label}</a>`)}
    </nav>
    <${ErrorBanner} error=${error} />
    ${project ? html`<${Page} project=${project} reload=${reload} />` : null}
  </main>`;
}
