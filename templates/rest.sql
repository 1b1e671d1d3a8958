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
