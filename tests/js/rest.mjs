// Drives one project's REST API with the real, unmodified supabase-js client and prints what each call
// returned as one JSON object; tests/e2e/test_supabase_js.py makes the project and checks the answers.
// Usage: node rest.mjs <api_url> <key>
import { createClient } from '@supabase/supabase-js'

const [url, key] = process.argv.slice(2)
const sb = createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false } })

// Each entry keeps what supabase-js hands the application: data, error, count, status.
const out = {}
async function run (name, query) {
  const { data, error, count, status } = await query
  out[name] = { data, error, count, status }
}

await run('embed', sb.from('books').select('title, authors(name)').eq('id', 3))
await run('or', sb.from('books').select('id').or('id.eq.1,title.ilike.*kindred*').order('id'))
await run('range', sb.from('books').select('id', { count: 'exact' }).order('id').range(1, 2))
await run('single', sb.from('books').select('title').eq('id', 1).single())
await run('maybe_single', sb.from('books').select('title').eq('id', 99).maybeSingle())
await run('inner', sb.from('authors').select('name, books!inner(title)').eq('books.title', 'Solaris'))
await run('computed', sb.from('authors').select('id, display_name, longest_book(title)').order('display_name'))
await run('rpc', sb.rpc('add_them', { a: 1, b: 2 }))
await run('insert', sb.from('kv').insert([{ k: 'js1', v: 'a' }, { k: 'js2', v: 'b' }]).select().order('k'))
await run('upsert', sb.from('kv').upsert({ k: 'js1', v: 'merged' }).select())
await run('capped', sb.from('kv').update({ v: 'c' }).in('k', ['js1', 'js2']).maxAffected(1).select())
await run('after_capped', sb.from('kv').select('k, v').in('k', ['js1', 'js2']).order('k'))
await run('delete', sb.from('kv').delete().eq('k', 'js2').select())
await run('csv', sb.from('books').select('id, title').order('id').limit(2).csv())
await run('missing', sb.from('nope').select())

console.log(JSON.stringify(out))
