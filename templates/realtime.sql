-- What realtime (runtime/realtime) needs in every tenant database. Idempotent: it builds into the template
-- and the tenant-manager applies it again to project databases created before it changed.
--
-- Private channels, as Supabase authorizes them: RLS policies on realtime.messages that read
-- realtime.topic(). Realtime never keeps a row here: it inserts probe rows and tries inserts under the
-- joining role and claims inside a transaction it always rolls back.

CREATE TABLE IF NOT EXISTS realtime.messages (
  topic text NOT NULL,
  extension text NOT NULL,
  payload jsonb,
  event text,
  private boolean DEFAULT false,
  updated_at timestamp without time zone NOT NULL DEFAULT now(),
  inserted_at timestamp without time zone NOT NULL DEFAULT now(),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  PRIMARY KEY (id, inserted_at)
);
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated, service_role;

-- The channel (without `realtime:`) whose authorization is being checked.
CREATE OR REPLACE FUNCTION realtime.topic() RETURNS text
  LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('realtime.topic', true), '')::text $$;
GRANT EXECUTE ON FUNCTION realtime.topic() TO anon, authenticated, service_role;

-- Change capture for postgres_changes. A logical slot needs the REPLICATION attribute, and a login that
-- has it may also open a physical replication connection and read every database of the server. So no
-- login has it: these two SECURITY DEFINER functions belong to supactl_replication (NOLOGIN REPLICATION,
-- templates/roles.sql) and only supactl_realtime (NOLOGIN) may call them; the project's own login role is
-- a member and sets that role on its capture connection. They open temporary slots only (gone with the
-- session), at most 8 per database, named after this database (PostgreSQL also refuses to decode a slot
-- made in another database), and decode the supabase_realtime publication only. A server without the
-- replication role (its admin is neither a superuser nor able to grant rds_replication) gets neither
-- function: realtime then answers postgres_changes joins with a `system` error.
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supactl_replication')
     OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supactl_realtime') THEN
    RAISE WARNING 'supactl: no replication role on this server; postgres_changes is unavailable in %', current_database();
    RETURN;
  END IF;
  -- An admin that may not act as the replication role (ALTER ... OWNER TO) leaves the functions out.
  BEGIN
    -- Opens a temporary pgoutput slot for `replica` (letters, digits, `_`); returns its name.
    CREATE OR REPLACE FUNCTION realtime.supactl_capture_start(replica text) RETURNS text
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp
      AS $fn$
    DECLARE
      prefix text := 'supactl_rt_' || left(md5(current_database()), 16) || '_';
    BEGIN
      IF replica IS NULL OR replica !~ '^[a-z0-9_]{1,24}$' THEN
        RAISE EXCEPTION 'supactl: a capture slot suffix is 1 to 24 of a-z, 0-9 and _' USING ERRCODE = '22023';
      END IF;
      PERFORM pg_advisory_xact_lock(hashtext(prefix));
      IF (SELECT count(*) FROM pg_get_replication_slots() s
          WHERE left(s.slot_name, length(prefix)) = prefix) >= 8 THEN
        RAISE EXCEPTION 'supactl: this database already has 8 change capture slots' USING ERRCODE = '53400';
      END IF;
      PERFORM pg_create_logical_replication_slot(prefix || replica, 'pgoutput', true);
      RETURN prefix || replica;
    END
    $fn$;

    -- Up to `upto` changes of the supabase_realtime publication from a slot of this database.
    CREATE OR REPLACE FUNCTION realtime.supactl_capture_poll(slot text, upto integer) RETURNS SETOF bytea
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp
      AS $fn$
    BEGIN
      IF left(slot, 28) IS DISTINCT FROM 'supactl_rt_' || left(md5(current_database()), 16) || '_' THEN
        RAISE EXCEPTION 'supactl: not a capture slot of this database' USING ERRCODE = '42501';
      END IF;
      RETURN QUERY SELECT c.data FROM pg_logical_slot_get_binary_changes(slot, NULL, upto,
        'proto_version', '1', 'publication_names', 'supabase_realtime') c;
    END
    $fn$;

    ALTER FUNCTION realtime.supactl_capture_start(text) OWNER TO supactl_replication;
    ALTER FUNCTION realtime.supactl_capture_poll(text, integer) OWNER TO supactl_replication;
    REVOKE ALL ON FUNCTION realtime.supactl_capture_start(text), realtime.supactl_capture_poll(text, integer)
      FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION realtime.supactl_capture_start(text), realtime.supactl_capture_poll(text, integer)
      TO supactl_realtime;
    GRANT USAGE ON SCHEMA realtime TO supactl_realtime;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'supactl: % cannot give the capture functions to supactl_replication; postgres_changes is unavailable in %',
      current_user, current_database();
  END;
END
$do$;
