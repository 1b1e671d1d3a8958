-- Cluster-wide roles every project database relies on (Supabase's names, so policies written for Supabase
-- work unchanged). Run by the tenant-manager on each worker, idempotently, before the template is built.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  -- Owner of the auth schema's tables (templates/auth.sql). No LOGIN and no BYPASSRLS: the auth service
  -- reaches it only through a project's own login role (`SET ROLE`), which can connect to that project's
  -- database alone.
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin') THEN
    CREATE ROLE supabase_auth_admin NOLOGIN NOINHERIT;
  END IF;
  -- Realtime's change capture (templates/realtime.sql): supactl_realtime may call the capture functions,
  -- and every project login role is a member (it sets that role on its capture connection only);
  -- supactl_replication owns them and holds the replication right no login has. Without a superuser admin,
  -- Amazon RDS's rds_replication membership is that right.
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supactl_realtime') THEN
    CREATE ROLE supactl_realtime NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supactl_replication') THEN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
      CREATE ROLE supactl_replication NOLOGIN NOINHERIT REPLICATION;
    ELSIF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') THEN
      BEGIN
        CREATE ROLE supactl_replication NOLOGIN INHERIT;
        GRANT rds_replication TO supactl_replication;
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'supactl: % cannot grant rds_replication; postgres_changes is unavailable on this server', current_user;
      END;
    ELSE
      RAISE WARNING 'supactl: % can grant no replication right; postgres_changes is unavailable on this server', current_user;
    END IF;
  END IF;
END
$$;
