#!/usr/bin/env bash
# PostgreSQL's own cost of the statements the REST engine sends for a read, in instructions per execution
# (callgrind counts them exactly, so the figures do not drift with the machine's load): a backend of a
# throwaway cluster serves pgbench (-M prepared, one client) under valgrind, as a login role whose `role`
# is `anon` with the request GUCs set and RLS on, as in bench/rest.sh. Each statement is the shape the engine
# sends for `GET /items?id=eq.N` and for `GET /items?select=id,name&order=id&limit=100&offset=37` (limit and offset
# are literals in the statement, as PostgREST writes them, so a connection plans each such statement once):
#   bare    the SELECT alone (what pgbench runs in bench/rest.sh)
#   setup   the statement before every plain read: the role and request GUCs set for the session
#   json    PostgreSQL renders the body (json_agg) with the response GUCs as columns: every read that is not
#           a plain column read (embeds, aggregates, other media types)
#   binary  the rows in binary and one trailer row with the total and the response GUCs: plain JSON reads
#   read    a plain JSON read as sent: setup (each request with its own x-request-id), then binary
#   local   not what the engine sends, a measured alternative: one statement, the request GUCs set for its
#           transaction in a MATERIALIZED CTE that a LATERAL (... OFFSET 0) read waits for, guarded by
#           role, search_path and statement_timeout being what an earlier session-level setup left
#   floor   not what the engine sends: only role, search_path and statement_timeout set (none of
#           PostgREST's request GUCs), then binary; what a read costs with no request GUC at all
# Usage: bench/rest-statements.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh valgrind
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
DIR="$(mktemp -d /tmp/supactl-stmts-XXXX)"
chmod 777 "$DIR"
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGOPTS=(-h "$DIR" -p "$PORT")
cleanup() {
  as_owner "$PGBIN/pg_ctl" -D "$DIR/data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$DIR" 2>/dev/null || { sleep 2; rm -rf "$DIR"; }   # callgrind may still be writing
}
trap cleanup EXIT
as_owner "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust >/dev/null
as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -o "-p $PORT -k $DIR -c listen_addresses=''" -l "$DIR/log" start >/dev/null
psql "${PGOPTS[@]}" -U postgres -q <<'SQL'
create role anon nologin; create role bench login; grant anon to bench;
create table cats (id int primary key, name text not null);
insert into cats select g, 'cat ' || g from generate_series(1, 100) g;
create table items (id int primary key, name text not null, cat_id int references cats(id));
insert into items select g, md5(g::text), 1 + g % 100 from generate_series(1, 10000) g;
alter table items enable row level security; create policy read_all on items for select to anon using (true);
grant select on items, cats to anon; analyze items; analyze cats;
alter role bench set role = 'anon';
alter role bench set "request.jwt.claims" = '{"role":"anon","iss":"supactl","ref":"bench-1","iat":1700000000,"exp":1700003600}';
alter role bench set "request.method" = 'GET'; alter role bench set "request.path" = '/items';
alter role bench set "request.headers" = '{"apikey":"x","host":"127.0.0.1"}'; alter role bench set "request.cookies" = '{}';
alter role bench set "response.headers" = ''; alter role bench set "response.status" = '';
alter role bench set default_transaction_read_only = on; alter role bench set statement_timeout = '8s';
alter role bench set search_path = public, extensions;
SQL
as_owner "$PGBIN/pg_ctl" -D "$DIR/data" stop -m fast >/dev/null

SETUP="SELECT pg_catalog.num_nulls(pg_catalog.set_config('role', 'anon', false), pg_catalog.set_config('request.jwt.claims', '{\"role\":\"anon\",\"iss\":\"supactl\",\"ref\":\"bench-1\",\"iat\":1700000000,\"exp\":1700003600}', false), pg_catalog.set_config('request.method', 'GET', false), pg_catalog.set_config('request.path', '/items', false), pg_catalog.set_config('request.headers', '{\"apikey\":\"x\",\"host\":\"127.0.0.1\",\"x-request-id\":\"' || :rid::text || '\"}', false), pg_catalog.set_config('request.cookies', '{}', false), pg_catalog.set_config('search_path', 'public, extensions', false), pg_catalog.set_config('statement_timeout', '8s', false), pg_catalog.set_config('default_transaction_read_only', 'on', false), pg_catalog.set_config('response.headers', '', false), pg_catalog.set_config('response.status', '', false))"
RESP="current_setting('response.headers', true), current_setting('response.status', true)"
LOCAL="SELECT pg_catalog.num_nulls(pg_catalog.set_config('request.jwt.claims', '{\"role\":\"anon\",\"iss\":\"supactl\",\"ref\":\"bench-1\",\"iat\":1700000000,\"exp\":1700003600}', true), pg_catalog.set_config('request.method', 'GET', true), pg_catalog.set_config('request.path', '/items', true), pg_catalog.set_config('request.headers', '{\"apikey\":\"x\",\"host\":\"127.0.0.1\",\"x-request-id\":\"' || :rid::text || '\"}', true), pg_catalog.set_config('request.cookies', '{}', true), pg_catalog.set_config('transaction_read_only', 'on', true), pg_catalog.set_config('response.headers', '', true), pg_catalog.set_config('response.status', '', true)) AS \"g\" WHERE current_user = 'anon' AND pg_catalog.current_setting('search_path') = 'public, extensions' AND pg_catalog.current_setting('statement_timeout') = '8s'"
FLOOR="SELECT pg_catalog.num_nulls(pg_catalog.set_config('role', 'anon', false), pg_catalog.set_config('search_path', 'public, extensions', false), pg_catalog.set_config('statement_timeout', '8s', false))"
GET='SELECT "items".* FROM "public"."items" AS "items" WHERE "items"."id" = :n'
LIST='SELECT "items"."id" AS "id", "items"."name" AS "name" FROM "public"."items" AS "items" ORDER BY "items"."id" LIMIT 100 OFFSET 37'
write() { # name range inner value-columns nulls
  printf '\\set n random(%s)\n%s;\n' "$2" "$3" >"$DIR/$1-bare.sql"
  printf '\\set rid random(1, 1000000000)\n%s;\n' "$SETUP" >"$DIR/$1-setup.sql"
  printf '\\set n random(%s)\nSELECT coalesce(json_agg("pgrst_r"), %s)::text, count(*), NULL::bigint, %s, NULL::text FROM (%s) AS "pgrst_r";\n' \
    "$2" "'[]'" "$RESP" "$3" >"$DIR/$1-json.sql"
  printf '\\set n random(%s)\nSELECT %s, NULL::text[] AS "pgrst_trailer" FROM (%s) AS "pgrst_r" UNION ALL SELECT %s ARRAY[(NULL::bigint)::text, %s] WHERE pg_backend_pid() IS NOT NULL;\n' \
    "$2" "$4" "$3" "$5" "$RESP" >"$DIR/$1-binary.sql"
  cat "$DIR/$1-setup.sql" "$DIR/$1-binary.sql" >"$DIR/$1-read.sql"
  printf '\\set n random(%s)\n\\set rid random(1, 1000000000)\nWITH "pgrst_g" AS MATERIALIZED (%s) SELECT %s, NULL::text[] AS "pgrst_trailer" FROM "pgrst_g", LATERAL (SELECT * FROM (%s) AS "pgrst_i" WHERE "pgrst_g"."g" IS NOT NULL OFFSET 0) AS "pgrst_r" UNION ALL SELECT %s ARRAY[(NULL::bigint)::text, %s] FROM "pgrst_g" WHERE pg_backend_pid() IS NOT NULL;\n' \
    "$2" "$LOCAL" "$4" "$3" "$5" "$RESP" >"$DIR/$1-local.sql"
  { printf '%s;\n' "$FLOOR"; cat "$DIR/$1-binary.sql"; } >"$DIR/$1-floor.sql"
}
write get "1, 10000" "$GET" '"pgrst_r"."id", "pgrst_r"."name", "pgrst_r"."cat_id"' "NULL, NULL, NULL,"
write list "0, 99" "$LIST" '"pgrst_r"."id", "pgrst_r"."name"' "NULL, NULL,"

mkdir -m 777 "$DIR/cg"
as_owner valgrind --tool=callgrind --callgrind-out-file="$DIR/cg/out.%p" "$PGBIN/postgres" -D "$DIR/data" -p "$PORT" \
  -k "$DIR" -c listen_addresses='' -c autovacuum=off >"$DIR/valgrind.log" 2>&1 &
for _ in $(seq 1 120); do pg_isready -q "${PGOPTS[@]}" && break; sleep 1; done
backend_instructions() { # script transactions -> instructions of the backend that served them
  local before; before=$(ls "$DIR/cg" | sort)
  "$PGBIN/pgbench" "${PGOPTS[@]}" -U bench -n -M prepared -c 1 -t "$2" -f "$1" postgres >/dev/null
  sleep 2   # the backend writes its counts when it exits
  local f; f=$(cd "$DIR/cg" && ls -S $(comm -13 <(echo "$before") <(ls | sort)) | head -1)
  grep -oP '^(summary|totals): \K[0-9]+' "$DIR/cg/$f" | head -1
}
# The guarded statement must find the session as set (else it reads nothing, and its figure means nothing).
for shape in get list; do
  rows=$(grep -v '^.set' "$DIR/$shape-local.sql" | sed 's/:rid/1/; s/:n/7/' | psql "${PGOPTS[@]}" -U bench -qAt postgres | wc -l)
  [ "$rows" -gt 1 ] || { echo "the guarded $shape statement read nothing"; exit 1; }
done
for shape in get list; do
  for kind in bare setup json binary read local floor; do
    a=$(backend_instructions "$DIR/$shape-$kind.sql" 100)
    b=$(backend_instructions "$DIR/$shape-$kind.sql" 600)
    printf '%-5s %-15s %8d instructions per execution\n' "$shape" "$kind" $(((b - a) / 500))
  done
done
