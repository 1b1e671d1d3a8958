-- Per-project limits (statement timeout per API role, the login role's connection limit), stored as
-- overrides of the platform defaults: a missing field means the default (see src/limits.rs).
ALTER TABLE supactl.projects ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb;
