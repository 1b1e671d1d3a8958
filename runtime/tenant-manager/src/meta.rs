//! The metadata API for dashboards, in the shapes of supabase/postgres-meta:
//! `GET /admin/v1/projects/{ref}/database/{tables|views|materialized-views|functions|triggers|policies|
//! extensions|publications|types|roles|schemas}`. PostgreSQL renders each answer as JSON; system schemas
//! are left out unless `include_system_schemas=true`, and `included_schemas=a,b` narrows the result.
//! Beyond postgres-meta, a type also says what it is (`type`: base, enum, domain, composite, range,
//! multirange or pseudo, from `typtype`) and its `category` (`typcategory`, `Z` for internal use), so
//! the table editor offers the column types a table can have.

use crate::error::ApiError;
use crate::TenantManager;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaQuery {
    #[serde(default)]
    include_system_schemas: bool,
    included_schemas: Option<String>,
}

/// `$1`: include system schemas; `$2`: schemas to keep (NULL = all). Applied to a `nspname` column.
const SCHEMA_FILTER: &str = "($1 OR NOT (nspname LIKE 'pg\\_%' OR nspname = 'information_schema'))
    AND ($2::text[] IS NULL OR nspname = ANY($2))";

const COLUMNS: &str = "SELECT c.oid::int8 AS table_id, nc.nspname AS schema, c.relname AS table,
    c.oid || '.' || a.attnum AS id, a.attnum AS ordinal_position, a.attname AS name,
    pg_get_expr(ad.adbin, ad.adrelid) AS default_value,
    CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, NULL)
         WHEN t.typcategory = 'A' THEN 'ARRAY' WHEN t.typtype = 'e' THEN 'USER-DEFINED'
         ELSE format_type(a.atttypid, NULL) END AS data_type,
    t.typname AS format, a.attidentity IN ('a', 'd') AS is_identity,
    CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END AS identity_generation,
    a.attgenerated <> '' AS is_generated, NOT a.attnotnull AS is_nullable,
    c.relkind IN ('r', 'p') OR (c.relkind IN ('v', 'f') AND pg_column_is_updatable(c.oid, a.attnum, false)) AS is_updatable,
    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnatts = 1 AND i.indkey[0] = a.attnum) AS is_unique,
    coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid), '{}') AS enums,
    NULL::text AS check, col_description(c.oid, a.attnum) AS comment
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace nc ON nc.oid = c.relnamespace
  JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped";

fn query_for(kind: &str) -> Option<String> {
    let f = SCHEMA_FILTER;
    Some(match kind {
        "schemas" => format!(
            "SELECT n.oid::int8 AS id, n.nspname AS name, pg_get_userbyid(n.nspowner) AS owner
             FROM pg_namespace n WHERE {f} ORDER BY n.nspname"
        ),
        "tables" => format!(
            "SELECT c.oid::int8 AS id, nspname AS schema, c.relname AS name, c.relrowsecurity AS rls_enabled,
                c.relforcerowsecurity AS rls_forced,
                CASE c.relreplident WHEN 'd' THEN 'DEFAULT' WHEN 'i' THEN 'INDEX' WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END AS replica_identity,
                pg_total_relation_size(c.oid)::int8 AS bytes, pg_size_pretty(pg_total_relation_size(c.oid)) AS size,
                pg_stat_get_live_tuples(c.oid) AS live_rows_estimate, pg_stat_get_dead_tuples(c.oid) AS dead_rows_estimate,
                obj_description(c.oid, 'pg_class') AS comment,
                coalesce((SELECT json_agg(json_build_object('schema', nspname, 'table_name', c.relname, 'name', a.attname, 'table_id', c.oid::int8))
                   FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                   WHERE i.indrelid = c.oid AND i.indisprimary), '[]') AS primary_keys,
                coalesce((SELECT json_agg(json_build_object('id', k.oid::int8, 'constraint_name', k.conname,
                     'source_schema', sn.nspname, 'source_table_name', sc.relname, 'source_column_name', sa.attname,
                     'target_table_schema', tn.nspname, 'target_table_name', tc.relname, 'target_column_name', ta.attname))
                   FROM pg_constraint k
                   JOIN pg_class sc ON sc.oid = k.conrelid JOIN pg_namespace sn ON sn.oid = sc.relnamespace
                   JOIN pg_class tc ON tc.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                   CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(s, t)
                   JOIN pg_attribute sa ON sa.attrelid = k.conrelid AND sa.attnum = u.s
                   JOIN pg_attribute ta ON ta.attrelid = k.confrelid AND ta.attnum = u.t
                   WHERE k.contype = 'f' AND (k.conrelid = c.oid OR k.confrelid = c.oid)), '[]') AS relationships,
                coalesce((SELECT json_agg(col ORDER BY col.ordinal_position) FROM ({COLUMNS}) col WHERE col.table_id = c.oid::int8), '[]') AS columns
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND {f} ORDER BY nspname, c.relname"
        ),
        "views" => format!(
            "SELECT c.oid::int8 AS id, nspname AS schema, c.relname AS name,
                (pg_relation_is_updatable(c.oid, false) & 20) = 20 AS is_updatable,
                obj_description(c.oid, 'pg_class') AS comment,
                coalesce((SELECT json_agg(col ORDER BY col.ordinal_position) FROM ({COLUMNS}) col WHERE col.table_id = c.oid::int8), '[]') AS columns
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'v' AND {f} ORDER BY nspname, c.relname"
        ),
        "materialized-views" => format!(
            "SELECT c.oid::int8 AS id, nspname AS schema, c.relname AS name, c.relispopulated AS is_populated,
                obj_description(c.oid, 'pg_class') AS comment
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'm' AND {f} ORDER BY nspname, c.relname"
        ),
        "functions" => format!(
            "SELECT p.oid::int8 AS id, nspname AS schema, p.proname AS name, l.lanname AS language,
                CASE WHEN l.lanname = 'internal' THEN p.prosrc ELSE p.prosrc END AS definition,
                pg_get_functiondef(p.oid) AS complete_statement,
                coalesce((SELECT json_agg(json_build_object(
                    'mode', CASE coalesce(p.proargmodes[i], 'i') WHEN 'i' THEN 'in' WHEN 'o' THEN 'out' WHEN 'b' THEN 'inout' WHEN 'v' THEN 'variadic' ELSE 'table' END,
                    'name', coalesce(p.proargnames[i], ''), 'type_id', coalesce(p.proallargtypes[i], p.proargtypes[i - 1])::int8,
                    'has_default', false) ORDER BY i)
                  FROM generate_series(1, coalesce(array_length(p.proallargtypes, 1), p.pronargs)) i), '[]') AS args,
                pg_get_function_arguments(p.oid) AS argument_types,
                pg_get_function_identity_arguments(p.oid) AS identity_argument_types,
                p.prorettype::int8 AS return_type_id, pg_get_function_result(p.oid) AS return_type,
                nullif(rt.typrelid, 0)::int8 AS return_type_relation_id, p.proretset AS is_set_returning_function,
                CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END AS behavior,
                p.prosecdef AS security_definer,
                (SELECT json_object_agg(split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)) FROM unnest(p.proconfig) c) AS config_params
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
             JOIN pg_type rt ON rt.oid = p.prorettype
             WHERE p.prokind = 'f' AND {f}
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
             ORDER BY nspname, p.proname"
        ),
        "triggers" => format!(
            "SELECT t.oid::int8 AS id, c.oid::int8 AS table_id,
                CASE t.tgenabled WHEN 'O' THEN 'ORIGIN' WHEN 'D' THEN 'DISABLED' WHEN 'R' THEN 'REPLICA' WHEN 'A' THEN 'ALWAYS' END AS enabled_mode,
                t.tgname AS name, c.relname AS table, nspname AS schema,
                CASE WHEN t.tgtype & 1 = 1 THEN 'ROW' ELSE 'STATEMENT' END AS orientation,
                CASE WHEN t.tgtype & 2 = 2 THEN 'BEFORE' WHEN t.tgtype & 64 = 64 THEN 'INSTEAD OF' ELSE 'AFTER' END AS activation,
                array_remove(ARRAY[CASE WHEN t.tgtype & 4 = 4 THEN 'INSERT' END, CASE WHEN t.tgtype & 8 = 8 THEN 'DELETE' END,
                                   CASE WHEN t.tgtype & 16 = 16 THEN 'UPDATE' END, CASE WHEN t.tgtype & 32 = 32 THEN 'TRUNCATE' END], NULL) AS events,
                fn.function_schema, p.proname AS function_name,
                (SELECT substring(pg_get_triggerdef(t.oid) FROM 'WHEN \\((.*)\\) EXECUTE')) AS condition
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_proc p ON p.oid = t.tgfoid
             JOIN (SELECT oid AS fn_oid, nspname AS function_schema FROM pg_namespace) fn ON fn.fn_oid = p.pronamespace
             WHERE NOT t.tgisinternal AND {f} ORDER BY nspname, c.relname, t.tgname"
        ),
        "policies" => format!(
            "SELECT pol.oid::int8 AS id, nspname AS schema, c.relname AS table, c.oid::int8 AS table_id, pol.polname AS name,
                CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END AS action,
                CASE WHEN pol.polroles = '{{0}}' THEN ARRAY['public']::name[]
                     ELSE ARRAY(SELECT rolname FROM pg_roles WHERE oid = ANY(pol.polroles) ORDER BY rolname) END AS roles,
                CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
                pg_get_expr(pol.polqual, pol.polrelid) AS definition, pg_get_expr(pol.polwithcheck, pol.polrelid) AS check
             FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {f} ORDER BY nspname, c.relname, pol.polname"
        ),
        "extensions" => "SELECT a.name, e.extnamespace::regnamespace::text AS schema, a.default_version,
                e.extversion AS installed_version, a.comment
             FROM pg_available_extensions a LEFT JOIN pg_extension e ON e.extname = a.name
             WHERE $1 OR $1 IS NOT NULL OR $2::text[] IS NULL ORDER BY a.name"
            .to_string(),
        "publications" => "SELECT p.oid::int8 AS id, p.pubname AS name, pg_get_userbyid(p.pubowner) AS owner,
                p.pubinsert AS publish_insert, p.pubupdate AS publish_update, p.pubdelete AS publish_delete,
                p.pubtruncate AS publish_truncate,
                CASE WHEN p.puballtables THEN NULL ELSE coalesce((SELECT json_agg(json_build_object('id', c.oid::int8, 'name', c.relname, 'schema', n.nspname))
                  FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE pr.prpubid = p.oid), '[]') END AS tables
             FROM pg_publication p WHERE $1 OR $1 IS NOT NULL OR $2::text[] IS NULL ORDER BY p.pubname"
            .to_string(),
        "types" => format!(
            "SELECT t.oid::int8 AS id, t.typname AS name, nspname AS schema, format_type(t.oid, NULL) AS format,
                coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{{}}') AS enums,
                coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type_id', a.atttypid::int8) ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS attributes,
                obj_description(t.oid, 'pg_type') AS comment,
                CASE t.typtype WHEN 'b' THEN 'base' WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite'
                  WHEN 'r' THEN 'range' WHEN 'm' THEN 'multirange' ELSE 'pseudo' END AS type,
                t.typcategory::text AS category
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE (t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid))
               AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid)
               AND {f} ORDER BY nspname, t.typname"
        ),
        "roles" => "SELECT r.oid::int8 AS id, r.rolname AS name, r.rolsuper AS is_superuser, r.rolcreatedb AS can_create_db,
                r.rolcreaterole AS can_create_role, r.rolinherit AS inherit_role, r.rolcanlogin AS can_login,
                r.rolreplication AS is_replication_role, r.rolbypassrls AS can_bypass_rls,
                (SELECT count(*) FROM pg_stat_activity s WHERE s.usename = r.rolname) AS active_connections,
                r.rolconnlimit AS connection_limit, '********' AS password,
                to_json(r.rolvaliduntil) #>> '{}' AS valid_until, r.rolconfig AS config
             FROM pg_roles r WHERE ($1 OR r.rolname NOT LIKE 'pg\\_%') AND ($2::text[] IS NULL OR true) ORDER BY r.rolname"
            .to_string(),
        _ => return None,
    })
}

pub async fn list(
    State(tm): State<Arc<TenantManager>>,
    Path((project_ref, kind)): Path<(String, String)>,
    Query(q): Query<MetaQuery>,
) -> Result<Json<Value>, ApiError> {
    let sql = query_for(&kind).ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown metadata kind {kind}: use tables, views, materialized-views, functions, triggers, policies, extensions, publications, types, roles or schemas"
        ))
    })?;
    let p = tm.project_or_404(&project_ref).await?;
    let worker = tm.store.worker(p.worker_id, &tm.cipher).await?;
    let client = crate::store::connect(&worker.pg_config(&p.db_name)).await?;
    let schemas: Option<Vec<String>> = q.included_schemas.map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let wrapped = format!("SELECT coalesce(json_agg(m), '[]')::text FROM ({sql}) m");
    let text: String = client
        .query_one(&wrapped, &[&q.include_system_schemas, &schemas])
        .await?
        .get(0);
    Ok(Json(serde_json::json!({
        "data": serde_json::from_str::<Value>(&text).map_err(ApiError::internal)?
    })))
}
