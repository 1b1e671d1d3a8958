-- What storage (runtime/storage) needs in every tenant database, in Supabase's shape so policies written
-- for Supabase work unchanged. Idempotent: it builds into the template and the tenant-manager applies it
-- again to project databases created before it changed.
--
-- Metadata only: the bytes live in the object store (the data directory locally, S3 on AWS) under
-- `<ref>/<version>`, so object names never reach a file system path. Every operation runs as the caller's
-- role with request.jwt.claims set: RLS on these tables decides for anon and authenticated, service_role
-- bypasses it. No policy exists by default (as on Supabase): only service_role can do anything until the
-- project adds some.

CREATE TABLE IF NOT EXISTS storage.buckets (
  id text PRIMARY KEY,
  name text NOT NULL,
  owner uuid,
  owner_id text,
  public boolean NOT NULL DEFAULT false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS bname ON storage.buckets (name);

CREATE TABLE IF NOT EXISTS storage.objects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- no ON DELETE CASCADE: a bucket is deleted only once it is empty
  bucket_id text NOT NULL REFERENCES storage.buckets (id),
  name text NOT NULL,
  owner uuid,
  owner_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_accessed_at timestamptz NOT NULL DEFAULT now(),
  metadata jsonb,
  path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
  -- the object's bytes in the store: `<ref>/<version>`; a new version per upload
  version text,
  user_metadata jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS bucketid_objname ON storage.objects (bucket_id, name);
-- listing a folder: names below a prefix, in byte order
CREATE INDEX IF NOT EXISTS name_prefix_search ON storage.objects (bucket_id, name text_pattern_ops);

ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
GRANT ALL ON storage.buckets, storage.objects TO anon, authenticated, service_role;

-- The helpers policies use: storage.foldername('a/b/c.png') = {a,b}, storage.filename(…) = 'c.png',
-- storage.extension(…) = 'png'.
CREATE OR REPLACE FUNCTION storage.foldername(name text) RETURNS text[]
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT coalesce(a[1:array_length(a, 1) - 1], '{}')
    FROM (SELECT string_to_array(name, '/') AS a) s
  $$;

CREATE OR REPLACE FUNCTION storage.filename(name text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT a[array_length(a, 1)] FROM (SELECT string_to_array(name, '/') AS a) s
  $$;

CREATE OR REPLACE FUNCTION storage.extension(name text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT reverse(split_part(reverse(storage.filename(name)), '.', 1))
  $$;

GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text)
  TO anon, authenticated, service_role;

-- Resumable (TUS) uploads in progress (runtime/storage/src/tus.rs): one row per upload, its id the
-- opaque random id of its URL, bound to the caller that created it. The bytes received so far are
-- segments in the object store under `<ref>/tus/<id>/`, listed here in order; the object appears
-- only when the last byte arrives. A finished upload keeps its row (no bytes) until it expires, so a
-- client that lost the last answer still reads the final offset. Only service_role reads it: storage
-- checks the caller itself.
CREATE TABLE IF NOT EXISTS storage.resumable_uploads (
  id text PRIMARY KEY,
  bucket_id text NOT NULL,
  name text NOT NULL,
  -- who may continue it: the creator's role and user (signed: the URL's owner, through the signature)
  caller_role text NOT NULL,
  caller_sub text,
  signed boolean NOT NULL DEFAULT false,
  upsert boolean NOT NULL DEFAULT false,
  upload_length bigint NOT NULL CHECK (upload_length >= 0),
  upload_offset bigint NOT NULL DEFAULT 0 CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
  segments text[] NOT NULL DEFAULT '{}',
  content_type text NOT NULL,
  cache_control text NOT NULL,
  user_metadata jsonb,
  -- the Upload-Metadata header as sent, answered again by HEAD
  upload_metadata text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  completed_at timestamptz
);
CREATE INDEX IF NOT EXISTS resumable_uploads_expires_at ON storage.resumable_uploads (expires_at);
ALTER TABLE storage.resumable_uploads ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON storage.resumable_uploads FROM anon, authenticated;
GRANT ALL ON storage.resumable_uploads TO service_role;
