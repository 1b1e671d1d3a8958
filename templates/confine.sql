-- Confines a project database's roles to their own project. Every project on a worker shares the server's
-- catalogs: without this, any request running as anon could list every database and login role on the
-- server (that is, every other project's ref), every session and its client address, and other roles'
-- settings. Applied to the tenant template, and by the tenant-manager to project databases created before
-- it existed. The catalog objects belong to the bootstrap superuser, so only a superuser can revoke on them:
-- on a worker whose admin is not one (Aurora's master user), the catalogs stay readable and the
-- tenant-manager logs a warning.
DO $$
DECLARE
  f regprocedure;
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE WARNING 'supactl: % is not a superuser; the cluster-wide catalogs stay readable by project roles', current_user;
    RETURN;
  END IF;
  REVOKE SELECT ON
    pg_catalog.pg_stat_activity, pg_catalog.pg_stat_ssl, pg_catalog.pg_stat_gssapi,
    pg_catalog.pg_stat_replication, pg_catalog.pg_stat_subscription, pg_catalog.pg_replication_slots,
    pg_catalog.pg_stat_progress_analyze, pg_catalog.pg_stat_progress_basebackup,
    pg_catalog.pg_stat_progress_cluster, pg_catalog.pg_stat_progress_copy,
    pg_catalog.pg_stat_progress_create_index, pg_catalog.pg_stat_progress_vacuum,
    pg_catalog.pg_database, pg_catalog.pg_stat_database, pg_catalog.pg_stat_database_conflicts,
    pg_catalog.pg_roles, pg_catalog.pg_user, pg_catalog.pg_auth_members, pg_catalog.pg_db_role_setting,
    pg_catalog.pg_shdescription, pg_catalog.pg_shdepend
  FROM PUBLIC;
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname = 'pg_stat_get_activity' OR p.proname LIKE 'pg\_stat\_get\_backend\_%'
           OR p.proname = 'pg_stat_get_progress_info')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$$;
