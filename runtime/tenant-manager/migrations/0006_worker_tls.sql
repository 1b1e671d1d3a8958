-- TLS to each worker (libpq's sslmode, less allow/prefer) and the PEM CA certificates that verify it
-- (NULL: the Amazon RDS bundle built into the binary). Workers registered before stay on plain TCP.
ALTER TABLE supactl.workers ADD COLUMN sslmode text NOT NULL DEFAULT 'disable'
  CHECK (sslmode IN ('disable', 'require', 'verify-ca', 'verify-full'));
ALTER TABLE supactl.workers ADD COLUMN ssl_root_cert text;
