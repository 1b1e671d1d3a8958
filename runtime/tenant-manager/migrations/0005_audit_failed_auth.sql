-- Failed admin authentications are audited too: the client's address, an `unauthorized` outcome, and
-- `suppressed` summary rows standing for `attempts` failures that the rate limit did not record one by one.
ALTER TABLE supactl.audit_log ADD COLUMN client_addr text;
ALTER TABLE supactl.audit_log ADD COLUMN attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1);
ALTER TABLE supactl.audit_log DROP CONSTRAINT audit_log_outcome_check;
ALTER TABLE supactl.audit_log ADD CONSTRAINT audit_log_outcome_check
  CHECK (outcome IN ('success', 'failure', 'unauthorized', 'suppressed'));
