-- Platform metadata: workers, projects, API keys and JWT secrets. Every secret column holds AES-GCM
-- ciphertext (nonce ‖ ciphertext) under the platform encryption key; keys are found by their SHA-256.
CREATE TABLE supactl.workers (
  id              bigserial PRIMARY KEY,
  identifier      text NOT NULL UNIQUE,
  host            text NOT NULL,
  port            integer NOT NULL,
  admin_user      text NOT NULL,
  admin_password  bytea NOT NULL,
  region          text NOT NULL DEFAULT 'local',
  weight          integer NOT NULL DEFAULT 100,
  max_databases   integer NOT NULL DEFAULT 1000,
  status          text NOT NULL DEFAULT 'active',
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE supactl.projects (
  ref          text PRIMARY KEY,
  name         text NOT NULL,
  worker_id    bigint NOT NULL REFERENCES supactl.workers(id),
  db_name      text NOT NULL,
  db_user      text NOT NULL,
  db_password  bytea NOT NULL,
  status       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE supactl.api_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_ref  text NOT NULL REFERENCES supactl.projects(ref) ON DELETE CASCADE,
  name         text NOT NULL,
  type         text NOT NULL CHECK (type IN ('publishable', 'secret')),
  role         text NOT NULL CHECK (role IN ('anon', 'service_role')),
  prefix       text NOT NULL,
  key_hash     bytea NOT NULL UNIQUE,
  key_enc      bytea NOT NULL,
  status       text NOT NULL DEFAULT 'active',
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);
CREATE INDEX ON supactl.api_keys (project_ref);

CREATE TABLE supactl.jwt_secrets (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_ref  text NOT NULL REFERENCES supactl.projects(ref) ON DELETE CASCADE,
  secret_enc   bytea NOT NULL,
  status       text NOT NULL CHECK (status IN ('current', 'standby', 'previous')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz
);
CREATE UNIQUE INDEX ON supactl.jwt_secrets (project_ref) WHERE status = 'current';
