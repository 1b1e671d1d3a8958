// Edge Functions and Realtime through the real supabase-js client (Realtime's vsn 2.0.0 serializer,
// whose user broadcasts are binary frames): functions.invoke with a body, headers and a query, an error
// status, broadcast between two clients, presence, postgres_changes. Prints one JSON object;
// tests/e2e/test_supabase_js.py checks it.
// Usage: node edge.mjs <api_url> <publishable key> <secret key>
import { createClient } from '@supabase/supabase-js'

const [url, key, secret] = process.argv.slice(2)
const client = (k = key) => createClient(url, k, { auth: { persistSession: false, autoRefreshToken: false } })
const out = {}
const until = async (pred, ms = 10000) => {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}
const subscribed = (channel) => new Promise((resolve, reject) => channel.subscribe((status, err) => {
  if (status === 'SUBSCRIBED') resolve(channel)
  else if (status !== 'CLOSED') reject(new Error(`${status}: ${err?.message}`))
}))

const sb = client()
const echo = await sb.functions.invoke('echo?x=1', { body: { name: 'Ada' }, headers: { 'x-custom': 'kept' } })
out.invoke = { data: echo.data, error: echo.error?.message ?? null }
const failed = await sb.functions.invoke('echo?status=418', { body: {} })
out.invoke_error = { status: failed.error?.context?.status ?? null, name: failed.error?.name ?? null }

const alice = client()
const bob = client()
const got = { bob: [], alice: [] }
const a = await subscribed(alice.channel('room').on('broadcast', { event: 'msg' }, (m) => got.alice.push(m.payload)))
await subscribed(bob.channel('room').on('broadcast', { event: 'msg' }, (m) => got.bob.push(m.payload)))
await a.send({ type: 'broadcast', event: 'msg', payload: { n: 1 } })
await until(() => got.bob.length === 1)
await new Promise((r) => setTimeout(r, 300))
out.broadcast = got

const seen = []
const watch = alice.channel('lobby', { config: { presence: { key: 'alice' } } })
watch.on('presence', { event: 'join' }, ({ key }) => seen.push(key))
await subscribed(watch)
const walk = await subscribed(bob.channel('lobby', { config: { presence: { key: 'bob' } } }))
await walk.track({ status: 'online' })
await until(() => seen.includes('bob'))
out.presence = watch.presenceState().bob?.[0]?.status ?? null

const changes = []
const system = []
const admin = client(secret)
await subscribed(admin.channel('db').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'chat', filter: 'room=eq.a' },
  (c) => changes.push({ type: c.eventType, body: c.new.body })).on('system', {}, (m) => system.push(m)))
// the capture slot exists once the channel is told "Subscribed to PostgreSQL"
await until(() => system.some((m) => m.extension === 'postgres_changes' && m.status === 'ok'))
await admin.from('chat').insert([{ room: 'b', body: 'no' }, { room: 'a', body: 'yes' }])
await until(() => changes.length === 1)
out.changes = changes

for (const c of [alice, bob, admin]) await c.removeAllChannels()
console.log(JSON.stringify(out))
process.exit(0)
