// Two users of one project through the real supabase-js client with the publishable key: sign-up,
// their sessions' JWTs reaching REST and row-level security, getUser, refresh and sign-out. Prints one
// JSON object; tests/e2e/test_supabase_js.py checks it.
// Usage: node auth.mjs <api_url> <publishable key> <email prefix>
import { createClient } from '@supabase/supabase-js'

const [url, key, prefix] = process.argv.slice(2)
const client = () => createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false } })
const password = 'correct-horse-1'
const out = {}

const ann = client()
const bob = client()
const signedUp = await ann.auth.signUp({ email: `${prefix}-ann@example.com`, password })
out.signup = { has_session: !!signedUp.data.session, error: signedUp.error?.message ?? null }
await bob.auth.signUp({ email: `${prefix}-bob@example.com`, password })

out.ann_insert = await ann.from('notes').insert({ body: 'ann note' }).select('body')
out.bob_insert = await bob.from('notes').insert({ body: 'bob note' }).select('body')
out.ann_reads = await ann.from('notes').select('body')
out.bob_reads = await bob.from('notes').select('body')
out.anon_reads = await client().from('notes').select('body')

const user = await ann.auth.getUser()
out.get_user = { email: user.data.user?.email ?? null, error: user.error?.message ?? null }
const before = (await ann.auth.getSession()).data.session.refresh_token
const refreshed = await ann.auth.refreshSession()
out.refresh = { rotated: !!refreshed.data.session && refreshed.data.session.refresh_token !== before, error: refreshed.error?.message ?? null }
out.after_refresh = await ann.from('notes').select('body')

const signedIn = await client().auth.signInWithPassword({ email: `${prefix}-bob@example.com`, password })
out.sign_in = { has_session: !!signedIn.data.session, error: signedIn.error?.message ?? null }
await ann.auth.signOut()
out.after_sign_out = await ann.from('notes').select('body')

// Only what the application sees of each REST call.
for (const [k, v] of Object.entries(out)) {
  if (v && 'status' in v) out[k] = { data: v.data, error: v.error, status: v.status }
}
console.log(JSON.stringify(out))
