-- What the REST engine (runtime/rest) needs in every tenant database: its schema cache is reloaded when
-- the schema changes. NOTIFY cannot cross databases, so the engine listens on its own pooled connections
-- to each project database (no extra connection); this event trigger sends PostgREST's usual reload
-- notification after every DDL command, so a table created through any client is queryable at once.
-- `NOTIFY pgrst, 'reload schema'` by hand works as with PostgREST.

CREATE OR REPLACE FUNCTION extensions.pgrst_ddl_watch() RETURNS event_trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  NOTIFY pgrst, 'reload schema';
END
$$;

DROP EVENT TRIGGER IF EXISTS pgrst_ddl_watch;
CREATE EVENT TRIGGER pgrst_ddl_watch ON ddl_command_end
  EXECUTE FUNCTION extensions.pgrst_ddl_watch();

DROP EVENT TRIGGER IF EXISTS pgrst_drop_watch;
CREATE EVENT TRIGGER pgrst_drop_watch ON sql_drop
  EXECUTE FUNCTION extensions.pgrst_ddl_watch();

-- The `pgrst.*` in-database settings of the connecting login role (`ALTER ROLE authenticator_<ref> SET
-- pgrst.db_schemas = …`) and of this database, for the engine's schema cache: the catalogs holding them
-- are not readable by project roles (templates/confine.sql), and this returns only the caller's own. The
-- login role that loads the schema cache needs USAGE on the schema (the API roles have it already).
GRANT USAGE ON SCHEMA extensions TO PUBLIC;
CREATE OR REPLACE FUNCTION extensions.pgrst_settings() RETURNS SETOF text
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT x FROM (
      SELECT unnest(s.setconfig) AS x, s.setrole, s.setdatabase FROM pg_db_role_setting s
      WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
        AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = session_user))
      ORDER BY s.setrole, s.setdatabase
    ) t WHERE x LIKE 'pgrst.%'
  $$;
