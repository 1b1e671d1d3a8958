// A resumable upload through the real tus-js-client, as Supabase documents it: 6 MiB chunks to
// `{api_url}/storage/v1/upload/resumable` with the project's key, metadata `bucketName`, `objectName`,
// `contentType`, `cacheControl` and `metadata`. Two phases, each its own process:
//   node tus.mjs start  <api_url> <key> <file> <bucket> <name> <url_file> <kill_at>
//     uploads until tus-js-client reports `kill_at` bytes sent, writes the upload's URL to <url_file>, then kills itself
//     (SIGKILL: the connection drops in the middle of a chunk, as when a browser tab is closed).
//   node tus.mjs resume <api_url> <key> <file> <bucket> <name> <url_file>
//     resumes from the URL (tus-js-client asks the offset with HEAD) and prints one JSON object.
// tests/e2e/test_storage_tus.py drives both and checks the object with supabase-py.
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const [phase, apiUrl, key, file, bucket, name, urlFile, killAt] = process.argv.slice(2)
const data = fs.readFileSync(file)
const out = { phase, progress: [], chunks: 0 }

const options = {
  endpoint: `${apiUrl}/storage/v1/upload/resumable`,
  chunkSize: 6 * 1024 * 1024,
  retryDelays: [0, 1000, 3000],
  removeFingerprintOnSuccess: true,
  headers: { apikey: key, authorization: `Bearer ${key}`, 'x-upsert': 'true' },
  metadata: {
    bucketName: bucket,
    objectName: name,
    contentType: 'application/octet-stream',
    cacheControl: '3600',
    metadata: JSON.stringify({ source: 'tus-js-client', phase: 'resumed' }),
  },
  onChunkComplete: (size, accepted) => {
    out.chunks += 1
    out.progress.push(accepted)
  },
}

const upload = await new Promise((resolve, reject) => {
  let up
  if (phase === 'start') {
    up = new tus.Upload(data, {
      ...options,
      onProgress: (sent) => {
        if (up.url) fs.writeFileSync(urlFile, up.url)
        if (sent >= Number(killAt)) process.kill(process.pid, 'SIGKILL')
      },
      onSuccess: () => reject(new Error('the upload finished before it was interrupted')),
      onError: reject,
    })
  } else {
    up = new tus.Upload(data, {
      ...options,
      uploadUrl: fs.readFileSync(urlFile, 'utf8'),
      onSuccess: () => resolve(up),
      onError: reject,
    })
  }
  up.start()
})
out.url = upload.url
console.log(JSON.stringify(out))
