-- The auth schema of a project database, with GoTrue's (Supabase Auth's) table and column names so that
-- `references auth.users(id)`, policies and queries written for Supabase work unchanged. Run after
-- tenant.sql, as the worker's superuser, when the template is built.
--
-- Idempotent, as every script of the project schema (runtime/tenant-manager's `provision`): it builds into
-- the template and the tenant-manager applies it again, at start, to every project database whose schema
-- version mark differs, so a change here must keep existing rows: new tables with IF NOT EXISTS, new
-- columns with ALTER TABLE … ADD COLUMN IF NOT EXISTS, new enum values with ADD VALUE IF NOT EXISTS.
--
-- Ownership and privileges (least privilege): the tables belong to `supabase_auth_admin`, a NOLOGIN role
-- without BYPASSRLS. The auth service connects as the project's own login role and switches to it with
-- `SET ROLE`; that login role can only connect to its own project's database, so it can only ever touch
-- that project's users. The API roles (anon, authenticated, service_role) get no privilege on these tables:
-- users reach them only through the auth API, exactly as on Supabase.

GRANT USAGE, CREATE ON SCHEMA auth TO supabase_auth_admin;
GRANT USAGE ON SCHEMA extensions TO supabase_auth_admin;

SET ROLE supabase_auth_admin;

DO $$ BEGIN
  CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE auth.code_challenge_method AS ENUM ('s256', 'plain');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE auth.one_time_token_type AS ENUM (
    'confirmation_token', 'reauthentication_token', 'recovery_token',
    'email_change_token_new', 'email_change_token_current', 'phone_change_token'
  );
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS auth.instances (
  id uuid NOT NULL PRIMARY KEY,
  uuid uuid,
  raw_base_config text,
  created_at timestamptz,
  updated_at timestamptz
);

CREATE TABLE IF NOT EXISTS auth.schema_migrations (version varchar(255) NOT NULL PRIMARY KEY);

CREATE TABLE IF NOT EXISTS auth.users (
  instance_id uuid,
  id uuid NOT NULL PRIMARY KEY,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text UNIQUE DEFAULT NULL,
  phone_confirmed_at timestamptz,
  phone_change text DEFAULT '',
  phone_change_token varchar(255) DEFAULT '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz GENERATED ALWAYS AS (least(email_confirmed_at, phone_confirmed_at)) STORED,
  email_change_token_current varchar(255) DEFAULT '',
  email_change_confirm_status smallint DEFAULT 0
    CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
  banned_until timestamptz,
  reauthentication_token varchar(255) DEFAULT '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean NOT NULL DEFAULT false,
  deleted_at timestamptz,
  is_anonymous boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
-- Emails are stored normalised (trimmed, lower case), so one unique index covers case variants.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_partial_key ON auth.users (email) WHERE is_sso_user = false;
CREATE INDEX IF NOT EXISTS users_instance_id_idx ON auth.users (instance_id);
CREATE INDEX IF NOT EXISTS users_instance_id_email_idx ON auth.users (instance_id, lower(email));
CREATE INDEX IF NOT EXISTS users_is_anonymous_idx ON auth.users (is_anonymous);
CREATE UNIQUE INDEX IF NOT EXISTS confirmation_token_idx ON auth.users (confirmation_token)
  WHERE confirmation_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX IF NOT EXISTS recovery_token_idx ON auth.users (recovery_token)
  WHERE recovery_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX IF NOT EXISTS email_change_token_new_idx ON auth.users (email_change_token_new)
  WHERE email_change_token_new !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX IF NOT EXISTS email_change_token_current_idx ON auth.users (email_change_token_current)
  WHERE email_change_token_current !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX IF NOT EXISTS reauthentication_token_idx ON auth.users (reauthentication_token)
  WHERE reauthentication_token !~ '^[0-9 ]*$';

CREATE TABLE IF NOT EXISTS auth.identities (
  provider_id text NOT NULL,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  identity_data jsonb NOT NULL,
  provider text NOT NULL,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
  id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider)
);
CREATE INDEX IF NOT EXISTS identities_user_id_idx ON auth.identities (user_id);
CREATE INDEX IF NOT EXISTS identities_email_idx ON auth.identities (email text_pattern_ops);

CREATE TABLE IF NOT EXISTS auth.sessions (
  id uuid NOT NULL PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  created_at timestamptz,
  updated_at timestamptz,
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp,
  user_agent text,
  ip inet,
  tag text
);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON auth.sessions (user_id);
CREATE INDEX IF NOT EXISTS user_id_created_at_idx ON auth.sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_not_after_idx ON auth.sessions (not_after DESC);

CREATE TABLE IF NOT EXISTS auth.refresh_tokens (
  instance_id uuid,
  id bigserial NOT NULL PRIMARY KEY,
  token varchar(255) UNIQUE,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid REFERENCES auth.sessions (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS refresh_tokens_instance_id_idx ON auth.refresh_tokens (instance_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens (instance_id, user_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_parent_idx ON auth.refresh_tokens (parent);
CREATE INDEX IF NOT EXISTS refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked);
CREATE INDEX IF NOT EXISTS refresh_tokens_updated_at_idx ON auth.refresh_tokens (updated_at DESC);

CREATE TABLE IF NOT EXISTS auth.mfa_factors (
  id uuid NOT NULL PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  friendly_name text,
  factor_type auth.factor_type NOT NULL,
  status auth.factor_status NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  secret text,
  phone text,
  last_challenged_at timestamptz UNIQUE
);
CREATE INDEX IF NOT EXISTS factor_id_created_at_idx ON auth.mfa_factors (user_id, created_at);

CREATE TABLE IF NOT EXISTS auth.mfa_challenges (
  id uuid NOT NULL PRIMARY KEY,
  factor_id uuid NOT NULL REFERENCES auth.mfa_factors (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  verified_at timestamptz,
  ip_address inet NOT NULL,
  otp_code text
);

CREATE TABLE IF NOT EXISTS auth.mfa_amr_claims (
  session_id uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  authentication_method text NOT NULL,
  id uuid NOT NULL PRIMARY KEY,
  CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey UNIQUE (session_id, authentication_method)
);

CREATE TABLE IF NOT EXISTS auth.flow_state (
  id uuid NOT NULL PRIMARY KEY,
  user_id uuid,
  auth_code text NOT NULL,
  code_challenge_method auth.code_challenge_method NOT NULL,
  code_challenge text NOT NULL,
  provider_type text NOT NULL,
  provider_access_token text,
  provider_refresh_token text,
  created_at timestamptz,
  updated_at timestamptz,
  authentication_method text NOT NULL,
  auth_code_issued_at timestamptz
);

CREATE TABLE IF NOT EXISTS auth.one_time_tokens (
  id uuid NOT NULL PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  token_type auth.one_time_token_type NOT NULL,
  token_hash text NOT NULL CHECK (char_length(token_hash) > 0),
  relates_to text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT one_time_tokens_user_id_token_type_key UNIQUE (user_id, token_type)
);
CREATE INDEX IF NOT EXISTS one_time_tokens_token_hash_hash_idx ON auth.one_time_tokens USING hash (token_hash);
CREATE INDEX IF NOT EXISTS one_time_tokens_relates_to_hash_idx ON auth.one_time_tokens USING hash (relates_to);

CREATE TABLE IF NOT EXISTS auth.audit_log_entries (
  instance_id uuid,
  id uuid NOT NULL PRIMARY KEY,
  payload json,
  created_at timestamptz,
  ip_address varchar(64) NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_logs_instance_id_idx ON auth.audit_log_entries (instance_id);

-- The project's auth settings (what GoTrue reads from its environment), one row, read by the auth
-- service on every request: change them with SQL and they apply at once. Not a GoTrue table.
CREATE TABLE IF NOT EXISTS auth.supactl_settings (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  site_url text NOT NULL DEFAULT 'http://localhost:3000',
  uri_allow_list text[] NOT NULL DEFAULT '{}',
  disable_signup boolean NOT NULL DEFAULT false,
  mailer_autoconfirm boolean NOT NULL DEFAULT true,
  anonymous_users_enabled boolean NOT NULL DEFAULT false,
  password_min_length integer NOT NULL DEFAULT 6 CHECK (password_min_length >= 6),
  jwt_exp integer NOT NULL DEFAULT 3600 CHECK (jwt_exp > 0),
  refresh_token_reuse_interval integer NOT NULL DEFAULT 10 CHECK (refresh_token_reuse_interval >= 0),
  mailer_otp_exp integer NOT NULL DEFAULT 3600 CHECK (mailer_otp_exp > 0),
  -- Rate limits: requests per window per client IP, and per email address.
  rate_limit_window_secs integer NOT NULL DEFAULT 300 CHECK (rate_limit_window_secs > 0),
  rate_limit_sign_in_sign_ups integer NOT NULL DEFAULT 30,
  rate_limit_token_refresh integer NOT NULL DEFAULT 150,
  rate_limit_otp integer NOT NULL DEFAULT 30,
  rate_limit_verify integer NOT NULL DEFAULT 30,
  rate_limit_per_email integer NOT NULL DEFAULT 30,
  -- Minimum seconds between two emails of one kind to one user (GoTrue's SMTP max frequency).
  smtp_max_frequency integer NOT NULL DEFAULT 60,
  -- Outgoing mail; no host means no mailer (the service logs that and answers as GoTrue does).
  smtp_host text,
  smtp_port integer NOT NULL DEFAULT 587,
  smtp_user text,
  smtp_pass text,
  smtp_admin_email text,
  smtp_sender_name text,
  smtp_tls text NOT NULL DEFAULT 'starttls' CHECK (smtp_tls IN ('starttls', 'tls', 'none'))
);
INSERT INTO auth.supactl_settings DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Phone sign-in and phone MFA factors (codes are sent through the project's `send_sms` hook below).
ALTER TABLE auth.supactl_settings
  ADD COLUMN IF NOT EXISTS phone_enabled boolean NOT NULL DEFAULT false,
  ADD COLUMN IF NOT EXISTS phone_autoconfirm boolean NOT NULL DEFAULT false,
  ADD COLUMN IF NOT EXISTS sms_otp_length integer NOT NULL DEFAULT 6 CHECK (sms_otp_length BETWEEN 6 AND 10),
  ADD COLUMN IF NOT EXISTS sms_otp_exp integer NOT NULL DEFAULT 60 CHECK (sms_otp_exp > 0),
  -- Minimum seconds between two codes of one kind to one user (or one phone factor).
  ADD COLUMN IF NOT EXISTS sms_max_frequency integer NOT NULL DEFAULT 60 CHECK (sms_max_frequency >= 0),
  -- Codes the project sends per hour, all numbers together (per auth replica).
  ADD COLUMN IF NOT EXISTS rate_limit_sms_sent integer NOT NULL DEFAULT 30,
  ADD COLUMN IF NOT EXISTS mfa_phone_enabled boolean NOT NULL DEFAULT false;

-- The project's auth hooks (Supabase Auth's HTTP hooks), set through the platform's admin API. Not a
-- GoTrue table (GoTrue reads these from its environment).
CREATE TABLE IF NOT EXISTS auth.supactl_hooks (
  hook text PRIMARY KEY CHECK (hook ~ '^[a-z_]{1,40}$'),
  enabled boolean NOT NULL DEFAULT true,
  -- An https endpoint (http only on loopback).
  uri text NOT NULL,
  -- The Standard Webhooks secrets (`v1,whsec_…`), AES-256-GCM with the project's data key, bound to
  -- the hook's name; never returned.
  secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- A pending phone change is looked up by the new number (`/verify` type phone_change); one phone
-- factor per user and number (GoTrue's index).
CREATE INDEX IF NOT EXISTS users_phone_change_idx ON auth.users (phone_change) WHERE phone_change <> '';
CREATE UNIQUE INDEX IF NOT EXISTS unique_phone_factor_per_user ON auth.mfa_factors (user_id, phone);

CREATE INDEX IF NOT EXISTS idx_auth_code ON auth.flow_state (auth_code);
CREATE INDEX IF NOT EXISTS flow_state_created_at_idx ON auth.flow_state (created_at DESC);
-- A PKCE email link finds its user's latest flow of the link's method (GoTrue's index).
CREATE INDEX IF NOT EXISTS idx_user_id_auth_method ON auth.flow_state (user_id, authentication_method);

-- The OAuth/OIDC providers users sign in with (`GET /authorize?provider=…`), set through the platform's
-- admin API. Not a GoTrue table (GoTrue reads these from its environment).
CREATE TABLE IF NOT EXISTS auth.supactl_oauth_providers (
  provider text PRIMARY KEY CHECK (provider ~ '^[a-z0-9_-]{1,40}$'),
  enabled boolean NOT NULL DEFAULT true,
  client_id text NOT NULL,
  -- AES-256-GCM with the project's data key, bound to the provider's name; never returned.
  client_secret text,
  -- A generic OIDC provider's issuer: its endpoints come from `{issuer}/.well-known/openid-configuration`.
  issuer text,
  scopes text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Sign-ins sent to a provider and waiting for its callback: one row per `/authorize`, named by the signed
-- `state` and consumed by the first `/callback` that presents it (a replayed state finds nothing).
CREATE TABLE IF NOT EXISTS auth.supactl_oauth_flows (
  id uuid PRIMARY KEY,
  provider text NOT NULL,
  nonce text NOT NULL,
  -- PKCE towards the provider (RFC 7636), whatever the client's own flow.
  provider_code_verifier text NOT NULL,
  redirect_to text NOT NULL,
  -- The client's PKCE flow (`auth.flow_state`), absent for the implicit flow.
  flow_state_id uuid REFERENCES auth.flow_state (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS supactl_oauth_flows_created_at_idx ON auth.supactl_oauth_flows (created_at);

-- Identity linking (`GET /user/identities/authorize`): the flow's signed-in user, whom the callback links the
-- provider identity to instead of signing in; and the project's switch for it, off by default as GoTrue's
-- GOTRUE_SECURITY_MANUAL_LINKING_ENABLED.
ALTER TABLE auth.supactl_oauth_flows ADD COLUMN IF NOT EXISTS link_user_id uuid REFERENCES auth.users (id) ON DELETE CASCADE;
ALTER TABLE auth.supactl_settings ADD COLUMN IF NOT EXISTS security_manual_linking_enabled boolean NOT NULL DEFAULT false;

-- GoTrue's GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION (a password change outside the
-- session's first 24 hours needs the nonce of /reauthenticate) and GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED
-- (an email change is confirmed on the current address and on the new one), with GoTrue's defaults.
ALTER TABLE auth.supactl_settings
  ADD COLUMN IF NOT EXISTS security_update_password_require_reauthentication boolean NOT NULL DEFAULT false,
  ADD COLUMN IF NOT EXISTS mailer_secure_email_change_enabled boolean NOT NULL DEFAULT true;

RESET ROLE;
