// OAuth through the real supabase-js client against a project whose providers `keycloak` and `gitlab` are
// both the local `oidc-provider` (tests/oidc/provider.mjs): a PKCE sign-in with signInWithOAuth
// (skipBrowserRedirect), the browser's redirects followed with fetch and a cookie jar, then
// exchangeCodeForSession; then linkIdentity (the second provider's identity linked to the signed-in
// user), getUserIdentities and unlinkIdentity. Prints one JSON object; tests/e2e/test_supabase_js.py
// checks it.
// Usage: node oauth.mjs <api_url> <publishable key> <app url>
import { createClient } from '@supabase/supabase-js'

const [url, key, app] = process.argv.slice(2)
const client = createClient(url, key, {
  auth: { flowType: 'pkce', persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
})
const out = {}

// Follows redirects from `start` (keeping cookies per host) until one points at `stop`; returns it.
async function browse(start, stop) {
  const jar = new Map()
  let next = start
  for (let i = 0; i < 10; i++) {
    const host = new URL(next).host
    const cookies = jar.get(host) ?? {}
    const cookie = Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(next, { redirect: 'manual', headers: cookie ? { cookie } : {} })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const at = pair.indexOf('=')
      cookies[pair.slice(0, at)] = pair.slice(at + 1)
    }
    jar.set(host, cookies)
    const location = res.headers.get('location')
    if (!location) throw new Error(`${next} answered ${res.status} without a redirect: ${await res.text()}`)
    next = new URL(location, next).href
    if (next.startsWith(stop)) return next
  }
  throw new Error('more than 10 redirects')
}

const signIn = await client.auth.signInWithOAuth({
  provider: 'keycloak',
  options: { skipBrowserRedirect: true, redirectTo: `${app}/welcome` },
})
const authorize = new URL(signIn.data.url)
out.authorize = {
  provider: authorize.searchParams.get('provider'),
  method: authorize.searchParams.get('code_challenge_method'),
  error: signIn.error?.message ?? null,
}
const back = await browse(signIn.data.url, app)
const code = new URL(back).searchParams.get('code')
const exchanged = await client.auth.exchangeCodeForSession(code)
const user = exchanged.data.user
out.session = {
  email: user?.email ?? null,
  providers: user?.identities.map((i) => i.provider) ?? null,
  error: exchanged.error?.message ?? null,
}

const linking = await client.auth.linkIdentity({
  provider: 'gitlab',
  options: { skipBrowserRedirect: true, redirectTo: `${app}/linked` },
})
out.link = { has_url: !!linking.data?.url, error: linking.error?.message ?? null }
const linkedBack = await browse(linking.data.url, app)
const linked = await client.auth.exchangeCodeForSession(new URL(linkedBack).searchParams.get('code'))
out.linked = { same_user: linked.data.user?.id === user.id, error: linked.error?.message ?? null }
const identities = await client.auth.getUserIdentities()
out.identities = identities.data.identities.map((i) => ({ provider: i.provider, id: i.id, user_id: i.user_id }))

const gitlab = identities.data.identities.find((i) => i.provider === 'gitlab')
out.unlink = { error: (await client.auth.unlinkIdentity(gitlab)).error?.message ?? null }
const after = await client.auth.getUserIdentities()
out.after_unlink = after.data.identities.map((i) => i.provider)
const last = await client.auth.unlinkIdentity(after.data.identities[0])
out.unlink_last = { code: last.error?.code ?? null, status: last.error?.status ?? null }

console.log(JSON.stringify(out))
