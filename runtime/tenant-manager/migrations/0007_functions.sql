-- Edge Functions: each function of a project, and its code versions (the last few kept). The code lives
-- here and nowhere else: workers fetch it through the internal API.
CREATE TABLE supactl.functions (
  project_ref  text NOT NULL REFERENCES supactl.projects(ref) ON DELETE CASCADE,
  slug         text NOT NULL,
  -- the latest version's number (1, 2, …), per function
  version      integer NOT NULL,
  verify_jwt   boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_ref, slug)
);

CREATE TABLE supactl.function_versions (
  -- the deployment's id, unique across the platform: what workers key their code by, so a function
  -- deleted and created again never meets a worker of its former self
  id           bigserial PRIMARY KEY,
  project_ref  text NOT NULL,
  slug         text NOT NULL,
  version      integer NOT NULL,
  entrypoint   text NOT NULL,
  import_map   text,
  -- [{"name", "content"}, …] as JSON text (a jsonb string cannot hold U+0000)
  files        text NOT NULL,
  size_bytes   bigint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_ref, slug, version),
  FOREIGN KEY (project_ref, slug) REFERENCES supactl.functions (project_ref, slug) ON DELETE CASCADE
);
