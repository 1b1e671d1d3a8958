// The admin API as the dashboard calls it: the session cookie (HttpOnly, set by the tenant-manager) rides
// along by itself; every call also carries the session's CSRF token, which a page of another site cannot
// read or send. A 401 means the session ended: the app shows the expired page.
let csrf = null;
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export function whenExpired(f) {
  onExpired = f;
}

async function call(url, method, body) {
  const headers = { accept: 'application/json' };
  if (csrf) headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** Calls `/admin/v1{path}` and returns its `data` (or the whole body when there is none). */
export async function api(method, path, body) {
  try {
    const json = await call('/admin/v1' + path, method, body);
    return json && 'data' in json ? json.data : json;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && csrf) {
      csrf = null;
      onExpired();
    }
    throw e;
  }
}

/** The whole body of an admin call (for listings that carry `pagination`). */
export async function apiRaw(method, path, body) {
  return call('/admin/v1' + path, method, body);
}

export async function signIn(adminKey) {
  const s = await call('/dashboard/v1/session', 'POST', { admin_key: adminKey });
  csrf = s.csrf_token;
  return s;
}

/** Resumes a session after a reload (the cookie is still there); null when there is none. */
export async function resume() {
  try {
    const s = await call('/dashboard/v1/session', 'GET');
    csrf = s.csrf_token;
    return s;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function signOut() {
  try {
    await call('/dashboard/v1/session', 'DELETE');
  } finally {
    csrf = null;
  }
}

/** SQL quoting for statements the dashboard builds (identifiers and literals). */
export const ident = (s) => '"' + String(s).replaceAll('"', '""') + '"';
export const literal = (s) => "'" + String(s).replaceAll("'", "''") + "'";

export async function sql(ref, query) {
  return api('POST', `/projects/${ref}/database/query`, { query, describe: true });
}
