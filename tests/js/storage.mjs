// Storage through the real supabase-js client (storage-js) with the secret key: a bucket, upload of a
// Blob (multipart) and of raw bytes, download of equal bytes, list, public and signed URLs, move, copy,
// remove, and a missing object's error. Prints one JSON object; tests/e2e/test_supabase_js.py checks it.
// Usage: node storage.mjs <api_url> <secret key>
import { createClient } from '@supabase/supabase-js'

const [url, key] = process.argv.slice(2)
const sb = createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false } })
const out = {}
const text = async (blob) => (blob ? await blob.text() : null)
const err = (e) => (e ? { message: e.message, status: e.statusCode ?? e.status ?? null } : null)

out.create = err((await sb.storage.createBucket('js', { public: true })).error)
const files = sb.storage.from('js')
out.upload_blob = await files.upload('dir/héllo world.txt', new Blob(['hello from js'], { type: 'text/plain' }))
out.upload_bytes = await files.upload('dir/raw.bin', new Uint8Array([1, 2, 3, 4]), { contentType: 'application/octet-stream' })
out.download = await text((await files.download('dir/héllo world.txt')).data)
const raw = (await files.download('dir/raw.bin')).data
out.raw = raw ? Array.from(new Uint8Array(await raw.arrayBuffer())) : null
out.list = (await files.list('dir')).data?.map((o) => o.name) ?? null
const pub = files.getPublicUrl('dir/raw.bin').data.publicUrl
out.public = Array.from(new Uint8Array(await (await fetch(pub)).arrayBuffer()))
const signed = await files.createSignedUrl('dir/héllo world.txt', 60)
out.signed = signed.data ? await (await fetch(signed.data.signedUrl)).text() : err(signed.error)
out.move = err((await files.move('dir/raw.bin', 'moved/raw.bin')).error)
out.copy = err((await files.copy('moved/raw.bin', 'moved/copy.bin')).error)
out.after_move = (await files.list('moved')).data?.map((o) => o.name) ?? null
out.remove = (await files.remove(['moved/raw.bin', 'moved/copy.bin'])).data?.length ?? null
const missing = await files.download('dir/missing.txt')
out.missing = { data: missing.data, error: missing.error ? missing.error.name : null }
out.exists = (await files.exists('dir/missing.txt')).data

for (const k of ['upload_blob', 'upload_bytes']) {
  out[k] = { path: out[k].data?.path ?? null, error: err(out[k].error) }
}
console.log(JSON.stringify(out))
