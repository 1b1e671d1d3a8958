// GoTrue's flows beyond passwords through the real supabase-js client: email OTP and magic links, phone codes
// through the Send SMS hook, TOTP MFA to aal2, anonymous users made permanent, invites and admin links, bans, reauthentication, claims
// verified against the project's JWKS, and the email flows with `flowType: 'pkce'` (the verifier kept in
// a file between the request and the exchange, as @supabase/ssr keeps it in a cookie). One step per run
// (mail arrives in the Python test between steps); prints one JSON object that tests/e2e/test_auth_js.py
// checks.
// Usage: node auth_flows.mjs <api_url> <publishable key> <secret key> <step> <JSON arguments>
import { createClient } from '@supabase/supabase-js'
import { createHmac } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

const [url, anonKey, secretKey, step, rawArgs] = process.argv.slice(2)
const args = JSON.parse(rawArgs || '{}')
const client = (key = anonKey) =>
  createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false } })
const admin = client(secretKey).auth.admin

// A storage that outlives the process: PKCE keeps the verifier there from the request to the exchange.
function fileStorage(path) {
  const read = () => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {})
  const write = (data) => writeFileSync(path, JSON.stringify(data))
  return {
    getItem: (k) => read()[k] ?? null,
    setItem: (k, v) => write({ ...read(), [k]: v }),
    removeItem: (k) => {
      const data = read()
      delete data[k]
      write(data)
    },
  }
}
const pkceClient = (store) =>
  createClient(url, anonKey, {
    auth: { flowType: 'pkce', storage: fileStorage(store), persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
  })

// An error as the application sees it.
const err = (e) => (e ? { status: e.status ?? null, code: e.code ?? null, message: e.message } : null)
const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
const session = (s) =>
  s ? { access_token: s.access_token, refresh_token: s.refresh_token, claims: claimsOf(s.access_token) } : null

// RFC 6238: HMAC-SHA1 over the 30-second counter, 6 digits (what authenticator apps compute).
function totp(secretB32) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of secretB32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)))
  const h = createHmac('sha1', key).update(counter).digest()
  const off = h[h.length - 1] & 0x0f
  return String((h.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}

async function signedIn(tokens) {
  const sb = client()
  const { error } = await sb.auth.setSession(tokens)
  if (error) throw error
  return sb
}

const steps = {
  // A phone sign-up (the code goes to the project's Send SMS hook), or a sign-in code by SMS.
  async phone_signup({ phone, password }) {
    const { data, error } = await client().auth.signUp({ phone, password })
    return { error: err(error), has_session: !!data.session, phone: data.user?.phone ?? null }
  },

  async phone_otp({ phone }) {
    const { error } = await client().auth.signInWithOtp({ phone })
    return { error: err(error) }
  },

  async phone_verify({ phone, token, password }) {
    const { data, error } = await client().auth.verifyOtp({ phone, token, type: 'sms' })
    const out = { error: err(error), session: session(data.session), confirmed: !!data.user?.phone_confirmed_at }
    if (password && !error) {
      const again = await client().auth.signInWithPassword({ phone, password })
      out.password_sign_in = { error: err(again.error), same_user: again.data.user?.id === data.user.id }
    }
    return out
  },

  // Starts an email flow with PKCE; the link comes by mail to the Python test.
  async pkce_request({ store, kind, email, password, new_email, redirect }) {
    const sb = pkceClient(store).auth
    let r
    if (kind === 'signup') r = await sb.signUp({ email, password, options: { emailRedirectTo: redirect } })
    else if (kind === 'magiclink') r = await sb.signInWithOtp({ email, options: { emailRedirectTo: redirect } })
    else if (kind === 'recovery') r = await sb.resetPasswordForEmail(email, { redirectTo: redirect })
    else if (kind === 'email_change') {
      const signedIn = await sb.signInWithPassword({ email, password })
      if (signedIn.error) return { error: err(signedIn.error) }
      r = await sb.updateUser({ email: new_email }, { emailRedirectTo: redirect })
    } else throw new Error(`unknown PKCE flow ${kind}`)
    return { error: err(r.error), has_session: !!r.data?.session }
  },

  // The code of the link's redirect, exchanged with the stored verifier.
  async pkce_exchange({ store, code }) {
    const sb = pkceClient(store)
    const { data, error } = await sb.auth.exchangeCodeForSession(code)
    return {
      error: err(error),
      session: session(data.session),
      email: data.user?.email ?? null,
      redirect_type: data.redirectType ?? null,
    }
  },

  // Sends a sign-in code (creating the user unless told not to).
  async otp_request({ email, create }) {
    const { error } = await client().auth.signInWithOtp({ email, options: { shouldCreateUser: create } })
    return { error: err(error) }
  },

  async verify({ email, token, type }) {
    const sb = client()
    const { data, error } = await sb.auth.verifyOtp({ email, token, type })
    return { error: err(error), session: session(data.session), confirmed: !!data.user?.email_confirmed_at }
  },

  // An admin magic link's code verifies once.
  async admin_link({ email }) {
    const link = await admin.generateLink({ type: 'magiclink', email })
    if (link.error) return { error: err(link.error) }
    const p = link.data.properties
    const sb = client()
    const first = await sb.auth.verifyOtp({ email, token: p.email_otp, type: 'magiclink' })
    const again = await client().auth.verifyOtp({ email, token: p.email_otp, type: 'magiclink' })
    return {
      verification_type: p.verification_type,
      action_link: p.action_link,
      first: { error: err(first.error), session: session(first.data.session) },
      again: err(again.error),
    }
  },

  async invite({ email }) {
    const { data, error } = await admin.inviteUserByEmail(email, { data: { team: 'green' } })
    return { error: err(error), invited_at: data.user?.invited_at ?? null, metadata: data.user?.user_metadata ?? null }
  },

  // A phone factor: enroll and challenge (the code goes to the Send SMS hook), then verify in a second run.
  async phone_mfa_start({ email, password, phone }) {
    const sb = client()
    const up = await sb.auth.signUp({ email, password })
    if (up.error) return { error: err(up.error) }
    const enrolled = await sb.auth.mfa.enroll({ factorType: 'phone', phone, friendlyName: 'js mobile' })
    if (enrolled.error) return { error: err(enrolled.error) }
    const challenge = await sb.auth.mfa.challenge({ factorId: enrolled.data.id, channel: 'sms' })
    return {
      error: err(challenge.error),
      type: enrolled.data.type,
      factor_id: enrolled.data.id,
      challenge_id: challenge.data?.id ?? null,
      session: session(up.data.session),
    }
  },

  async phone_mfa_finish({ tokens, factor_id, challenge_id, code }) {
    const sb = await signedIn(tokens)
    const verified = await sb.auth.mfa.verify({ factorId: factor_id, challengeId: challenge_id, code })
    const aal = (await sb.auth.mfa.getAuthenticatorAssuranceLevel()).data
    const listed = (await sb.auth.mfa.listFactors()).data
    return {
      error: err(verified.error),
      claims: verified.data ? claimsOf(verified.data.access_token) : null,
      aal: [aal.currentLevel, aal.nextLevel],
      phone_factors: listed.phone.map((f) => f.id),
    }
  },

  // TOTP: enroll, a wrong code refused, the right one → aal2; listed, unenrolled.
  async mfa({ email, password }) {
    const sb = client()
    const up = await sb.auth.signUp({ email, password })
    if (up.error) return { error: err(up.error) }
    const before = (await sb.auth.mfa.getAuthenticatorAssuranceLevel()).data
    const enrolled = await sb.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'js phone', issuer: 'JsCo' })
    const id = enrolled.data.id
    const challenge = await sb.auth.mfa.challenge({ factorId: id })
    const wrongCode = totp(enrolled.data.totp.secret) === '000000' ? '111111' : '000000'
    const wrong = await sb.auth.mfa.verify({ factorId: id, challengeId: challenge.data.id, code: wrongCode })
    const right = await sb.auth.mfa.challengeAndVerify({ factorId: id, code: totp(enrolled.data.totp.secret) })
    const after = (await sb.auth.mfa.getAuthenticatorAssuranceLevel()).data
    const listed = (await sb.auth.mfa.listFactors()).data
    const note = await sb.from('notes').insert({ body: 'js aal2' }).select('body')
    const userId = (await sb.auth.getUser()).data.user.id
    const adminListed = await admin.mfa.listFactors({ userId })
    const unenrolled = await sb.auth.mfa.unenroll({ factorId: id })
    return {
      enroll: { error: err(enrolled.error), type: enrolled.data.type, uri: enrolled.data.totp.uri },
      before: [before.currentLevel, before.nextLevel],
      wrong: err(wrong.error),
      right: { error: err(right.error), claims: right.data ? claimsOf(right.data.access_token) : null },
      after: [after.currentLevel, after.nextLevel],
      listed: listed.totp.map((f) => [f.id, f.status]),
      note: { data: note.data, error: note.error },
      admin_listed: (adminListed.data?.factors ?? []).map((f) => f.id),
      unenrolled: { error: err(unenrolled.error), id: unenrolled.data?.id ?? null },
      remaining: (await sb.auth.mfa.listFactors()).data.all.length,
      factor_id: id,
    }
  },

  async anonymous({ email }) {
    const sb = client()
    const { data, error } = await sb.auth.signInAnonymously()
    if (error) return { error: err(error) }
    const note = await sb.from('notes').insert({ body: 'anonymous js note' }).select('body')
    const linked = await sb.auth.updateUser({ email })
    return {
      error: null,
      is_anonymous: data.user.is_anonymous,
      claims: claimsOf(data.session.access_token),
      note: { data: note.data, error: note.error },
      linked: { error: err(linked.error), is_anonymous: linked.data.user?.is_anonymous ?? null, email: linked.data.user?.email ?? null },
    }
  },

  // A ban refuses sign-in and refresh; lifting it lets the user back.
  async ban({ email, password }) {
    const sb = client()
    const up = await sb.auth.signUp({ email, password })
    const id = up.data.user.id
    const banned = await admin.updateUserById(id, { ban_duration: '24h' })
    const refused = await client().auth.signInWithPassword({ email, password })
    const refresh = await sb.auth.refreshSession()
    const lifted = await admin.updateUserById(id, { ban_duration: 'none' })
    const back = await client().auth.signInWithPassword({ email, password })
    return {
      banned_until: banned.data.user?.banned_until ?? null,
      refused: err(refused.error),
      refresh: err(refresh.error),
      lifted: { error: err(lifted.error), banned_until: lifted.data.user?.banned_until ?? null },
      back: { error: err(back.error), has_session: !!back.data.session },
    }
  },

  // Sign up and ask for a reauthentication nonce (mailed); the session goes back to the test.
  async reauth_start({ email, password }) {
    const sb = client()
    const up = await sb.auth.signUp({ email, password })
    if (up.error) return { error: err(up.error) }
    const { error } = await sb.auth.reauthenticate()
    return { error: err(error), session: session(up.data.session) }
  },

  async reauth_finish({ tokens, nonce, wrong, email, password }) {
    const sb = await signedIn(tokens)
    const needed = await sb.auth.updateUser({ password })
    const refused = await sb.auth.updateUser({ password, nonce: wrong })
    const changed = await sb.auth.updateUser({ password, nonce })
    const fresh = await client().auth.signInWithPassword({ email, password })
    return {
      needed: err(needed.error),
      refused: err(refused.error),
      changed: err(changed.error),
      fresh: !!fresh.data.session,
    }
  },

  // Claims verified by supabase-js itself: against the JWKS for an asymmetric key (a tampered token
  // refused), by asking /user for HS256.
  async claims({ email, password }) {
    const sb = client()
    const up = await sb.auth.signUp({ email, password })
    if (up.error) return { error: err(up.error) }
    const token = up.data.session.access_token
    const got = await sb.auth.getClaims()
    const [h, p, s] = token.split('.')
    const tampered = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`
    const bad = await sb.auth.getClaims(tampered)
    return {
      alg: got.data?.header.alg ?? null,
      kid: got.data?.header.kid ?? null,
      sub: got.data?.claims.sub ?? null,
      user_id: up.data.user.id,
      error: err(got.error),
      tampered: err(bad.error),
    }
  },
}

const run = steps[step]
if (!run) throw new Error(`unknown step ${step}`)
console.log(JSON.stringify(await run(args)))
