-- Control plane: worker lifecycle, project secrets, the audit log, and shared placement state.
ALTER TABLE supactl.workers ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE supactl.workers ADD CONSTRAINT workers_status_check CHECK (status IN ('active', 'draining'));

CREATE TABLE supactl.project_secrets (
  project_ref  text NOT NULL REFERENCES supactl.projects(ref) ON DELETE CASCADE,
  name         text NOT NULL,
  value_enc    bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_ref, name)
);

CREATE TABLE supactl.audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  method     text NOT NULL,
  path       text NOT NULL,
  status     integer NOT NULL,
  outcome    text NOT NULL CHECK (outcome IN ('success', 'failure'))
);
CREATE INDEX ON supactl.audit_log (at DESC);

-- Platform-wide settings (the default placement strategy).
CREATE TABLE supactl.settings (
  key    text PRIMARY KEY,
  value  jsonb NOT NULL
);

-- Round-robin placement state shared by every tenant-manager replica.
CREATE SEQUENCE supactl.placement_round_robin;
