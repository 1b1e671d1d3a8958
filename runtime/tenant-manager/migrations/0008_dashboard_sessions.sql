-- Dashboard (Studio) sessions: one per sign-in, found by the SHA-256 of the cookie's token (the token itself
-- is never stored). A session ends at sign-out, after its idle time, or at its absolute end, and belongs to
-- the admin key that opened it (by fingerprint), so changing the admin key ends every session.
CREATE TABLE supactl.dashboard_sessions (
  token_hash  bytea PRIMARY KEY,
  admin_key   text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  idle_until  timestamptz NOT NULL,
  ends_at     timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_idle_until ON supactl.dashboard_sessions (idle_until);
