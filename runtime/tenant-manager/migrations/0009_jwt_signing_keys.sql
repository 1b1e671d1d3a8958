-- Asymmetric JWT signing keys (ES256/RS256) beside the HS256 secrets, in the same table: two families
-- that rotate on their own, each with at most one current key. `secret_enc` holds an asymmetric key's
-- sealed PKCS#8 private key; its public JWK is not secret and is kept in clear for listings.
ALTER TABLE supactl.jwt_secrets
  ADD COLUMN algorithm text NOT NULL DEFAULT 'HS256' CHECK (algorithm IN ('HS256', 'ES256', 'RS256')),
  ADD COLUMN public_jwk jsonb;
DROP INDEX IF EXISTS supactl.jwt_secrets_project_ref_idx;
CREATE UNIQUE INDEX jwt_secrets_current ON supactl.jwt_secrets (project_ref, (algorithm = 'HS256'))
  WHERE status = 'current';
