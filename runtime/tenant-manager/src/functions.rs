//! Edge Functions in the control plane: each project's functions and their code, kept in the platform
//! database (the last [`KEPT_VERSIONS`] versions of each), never on a shared file system.
//!
//! The admin API deploys (`POST …/functions`: a new function, 201, or a new version of one, 200), changes
//! code or settings (`PATCH …/functions/{slug}`), lists, shows and deletes. Every deploy is checked first
//! as the runtime would load it ([`::functions::check_syntax`]: names, size, import map, then each module
//! parsed by Deno), so a bundle that does not parse is refused with its file and line.
//!
//! **Without Deno the tenant-manager refuses deploys** (503 `deno_unavailable`, naming the fix) rather
//! than storing code it could not check: the check is the only place a syntax error is reported with
//! its file and line before users hit it, and a platform with no Deno cannot run functions either. Deno
//! is looked for on every deploy until found ([`::functions::find_deno`]: `$SUPACTL_DENO`, then the copy
//! `scripts/setup.sh deno` installs, then `PATH`), so installing it needs no restart.
//!
//! The workers read functions through the internal API, service token only ([`internal_function`],
//! [`internal_bundle`], [`internal_environment`]); the environment carries the project's secrets and
//! keys and is never on an admin or public endpoint.

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::TenantManager;
use ::functions::{Bundle, BundleFile, CheckError, NetPolicy, SupervisorConfig};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;
use supactl_common::error::HttpError;
use tokio::sync::Semaphore;

/// Versions kept per function (the current one and those before it).
pub const KEPT_VERSIONS: i32 = 10;
/// Functions a project may have.
pub const MAX_FUNCTIONS_PER_PROJECT: i64 = 100;
/// The largest deploy request: a full bundle ([`::functions::bundle::MAX_BUNDLE_BYTES`]) as JSON, whose
/// string escapes can double it, plus the rest of the request.
pub const MAX_DEPLOY_BODY: usize = 2 * ::functions::bundle::MAX_BUNDLE_BYTES + 8 * 1024 * 1024;
/// Deploys checked at once (each runs a Deno process and holds its bundle in memory).
const MAX_CHECKS: usize = 4;
/// How long a deploy waits for a check slot before answering 503.
const CHECK_WAIT: Duration = Duration::from_secs(20);
/// The entrypoint when the request names none (Supabase's).
const DEFAULT_ENTRYPOINT: &str = "index.ts";
/// The only status a stored function has (Supabase's name for a deployed one).
const STATUS_ACTIVE: &str = "ACTIVE";

/// A failure of a functions request: the control plane's own errors, or the deploy check's.
pub(crate) enum FnError {
    Api(ApiError),
    /// No Deno binary to check code with.
    DenoMissing,
    /// Every check slot stayed taken for [`CHECK_WAIT`].
    ChecksBusy,
}

impl From<ApiError> for FnError {
    fn from(e: ApiError) -> FnError {
        FnError::Api(e)
    }
}

impl From<tokio_postgres::Error> for FnError {
    fn from(e: tokio_postgres::Error) -> FnError {
        FnError::Api(e.into())
    }
}

impl IntoResponse for FnError {
    fn into_response(self) -> Response {
        let (e, retry) = match self {
            FnError::Api(e) => return e.into_response(),
            FnError::DenoMissing => (
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "deno_unavailable",
                    "the tenant-manager cannot check the function's code: Deno was not found \
                     (set SUPACTL_DENO to the deno binary, or run `scripts/setup.sh deno` on this host); \
                     nothing was deployed",
                ),
                None,
            ),
            FnError::ChecksBusy => (
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "checks_busy",
                    "too many deploys are being checked at once; retry after the Retry-After delay",
                ),
                Some(2u32),
            ),
        };
        let mut res = e.into_response();
        if let Some(s) = retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// Runs the deploy-time check with the Deno it finds, in a private directory of its own (removed with
/// the tenant-manager), a few at a time.
pub(crate) struct Checker {
    /// Where Deno is ([`::functions::find_deno`]).
    find_deno: fn() -> Result<std::path::PathBuf, ::functions::ConfigError>,
    found: Mutex<Option<(SupervisorConfig, tempfile::TempDir)>>,
    slots: Semaphore,
}

impl Checker {
    pub(crate) fn new() -> Checker {
        Checker {
            find_deno: ::functions::find_deno,
            found: Mutex::new(None),
            slots: Semaphore::new(MAX_CHECKS),
        }
    }

    /// The check's settings once Deno is found (looked for again on each call until it is).
    fn config(&self) -> Result<SupervisorConfig, FnError> {
        let mut found = self.found.lock().expect("checker lock");
        if let Some((config, _)) = found.as_ref() {
            return Ok(config.clone());
        }
        let Ok(deno) = (self.find_deno)() else {
            tracing::warn!("a function deploy was refused: no Deno binary to check it with");
            return Err(FnError::DenoMissing);
        };
        let dir = tempfile::Builder::new()
            .prefix("supactl-tm-functions-")
            .tempdir()
            .map_err(|e| ApiError::internal(format!("function check directory: {e}")))?;
        // only `deno` and `work_dir` matter to the check
        let config = SupervisorConfig::new(
            deno,
            dir.path().to_path_buf(),
            NetPolicy::platform(None, &[]),
        );
        *found = Some((config.clone(), dir));
        Ok(config)
    }

    async fn check(&self, bundle: &Bundle) -> Result<(), FnError> {
        let _slot = tokio::time::timeout(CHECK_WAIT, self.slots.acquire())
            .await
            .map_err(|_| FnError::ChecksBusy)?
            .map_err(ApiError::internal)?;
        let config = self.config()?;
        ::functions::check_syntax(&config, bundle)
            .await
            .map_err(|e| match e {
                CheckError::Deno(detail) => ApiError::internal(format!("function check: {detail}")),
                other => ApiError::BadRequest(format!("code: {other}")),
            })?;
        Ok(())
    }
}

/// One file of a deploy request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    name: String,
    content: String,
}

/// A deploy (`POST`, `slug` required) or a change (`PATCH`, `slug` absent or the path's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    slug: Option<String>,
    /// The whole function as one module (the entrypoint).
    body: Option<String>,
    files: Option<Vec<FileIn>>,
    entrypoint: Option<String>,
    /// JSON text, or the import map itself.
    import_map: Option<Value>,
    verify_jwt: Option<bool>,
}

impl DeployBody {
    /// The files given, if any: `body` (as the entrypoint) or `files`, not both.
    fn files(&mut self, entrypoint: &str) -> Result<Option<Vec<BundleFile>>, ApiError> {
        match (self.body.take(), self.files.take()) {
            (Some(_), Some(_)) => Err(ApiError::BadRequest(
                "give either body or files, not both".into(),
            )),
            (Some(content), None) => Ok(Some(vec![BundleFile {
                name: entrypoint.to_string(),
                content,
            }])),
            (None, Some(files)) if files.is_empty() => {
                Err(ApiError::BadRequest("files: give at least one file".into()))
            }
            (None, Some(files)) => Ok(Some(
                files
                    .into_iter()
                    .map(|f| BundleFile {
                        name: f.name,
                        content: f.content,
                    })
                    .collect(),
            )),
            (None, None) => Ok(None),
        }
    }

    fn import_map(&mut self) -> Result<Option<Option<String>>, ApiError> {
        match self.import_map.take() {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(text)) => Ok(Some(Some(text))),
            Some(map @ Value::Object(_)) => Ok(Some(Some(map.to_string()))),
            Some(_) => Err(ApiError::BadRequest(
                "import_map: give the import map as an object or as JSON text".into(),
            )),
        }
    }
}

fn check_slug(slug: &str) -> Result<(), ApiError> {
    if ::functions::router::valid_slug(slug) {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "slug {slug:?}: must start with a letter and hold only letters, digits, '_' and '-' (at most {} characters)",
        ::functions::router::MAX_SLUG_LEN
    )))
}

/// `POST /projects/{ref}/functions`: creates the function (201) or deploys a new version of it (200).
pub(crate) async fn deploy(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Response, FnError> {
    let mut req: DeployBody = body(&bytes)?;
    drop(bytes);
    let slug = req
        .slug
        .take()
        .ok_or_else(|| ApiError::BadRequest("slug: required".into()))?;
    check_slug(&slug)?;
    let entrypoint = req
        .entrypoint
        .take()
        .unwrap_or_else(|| DEFAULT_ENTRYPOINT.into());
    let files = req.files(&entrypoint)?.ok_or_else(|| {
        ApiError::BadRequest("give the code as body (one module) or files".into())
    })?;
    let bundle = Bundle {
        entrypoint,
        files,
        import_map: req.import_map()?.flatten(),
    };
    tm.project_or_404(&project_ref).await?;
    tm.checker.check(&bundle).await?;
    let created = store_version(&tm, &project_ref, &slug, &bundle, req.verify_jwt, None).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let f = function_json(&tm, &project_ref, &slug, false).await?;
    Ok((status, data(f)).into_response())
}

/// `PATCH /projects/{ref}/functions/{slug}`: new code, entrypoint or import map (a new version, the
/// rest taken from the current one), or new settings.
pub(crate) async fn update(
    State(tm): Tm,
    Path((project_ref, slug)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, FnError> {
    let mut req: DeployBody = body(&bytes)?;
    drop(bytes);
    if req.slug.as_ref().is_some_and(|s| *s != slug) {
        return Err(ApiError::BadRequest("slug: a function cannot be renamed".into()).into());
    }
    let import_map = req.import_map()?;
    let code_changes = req.body.is_some() || req.files.is_some();
    if !code_changes && req.entrypoint.is_none() && import_map.is_none() {
        let Some(verify_jwt) = req.verify_jwt else {
            return Err(ApiError::BadRequest(
                "nothing to change: give body or files, entrypoint, import_map or verify_jwt"
                    .into(),
            )
            .into());
        };
        let c = tm.store.client().await?;
        let n = c
            .execute(
                "UPDATE supactl.functions SET verify_jwt = $3, updated_at = now()
                 WHERE project_ref = $1 AND slug = $2",
                &[&project_ref, &slug, &verify_jwt],
            )
            .await?;
        if n == 0 {
            return Err(not_found(&project_ref, &slug).into());
        }
    } else {
        let (version, current) = current_bundle(&tm, &project_ref, &slug).await?;
        let entrypoint = req.entrypoint.take().unwrap_or(current.entrypoint);
        let bundle = Bundle {
            files: req.files(&entrypoint)?.unwrap_or(current.files),
            entrypoint,
            import_map: import_map.unwrap_or(current.import_map),
        };
        tm.checker.check(&bundle).await?;
        store_version(
            &tm,
            &project_ref,
            &slug,
            &bundle,
            req.verify_jwt,
            Some(version),
        )
        .await?;
    }
    Ok(data(function_json(&tm, &project_ref, &slug, false).await?).into_response())
}

fn not_found(project_ref: &str, slug: &str) -> ApiError {
    ApiError::NotFound(format!("no function {slug} in project {project_ref}"))
}

/// Stores `bundle` as the function's next version and drops the versions past [`KEPT_VERSIONS`], in
/// one transaction; returns whether the function was created. With `expect`, the function must exist
/// at that version (a change based on it), else 404 or 409.
async fn store_version(
    tm: &TenantManager,
    project_ref: &str,
    slug: &str,
    bundle: &Bundle,
    verify_jwt: Option<bool>,
    expect: Option<i32>,
) -> Result<bool, ApiError> {
    let files = serde_json::to_string(&bundle.files).map_err(ApiError::internal)?;
    let size: i64 = bundle.files.iter().map(|f| f.content.len() as i64).sum();
    let mut c = tm.store.client().await?;
    let tx = c.transaction().await?;
    // The upsert locks the function's row, so concurrent deploys of one slug take turns; `xmax = 0`
    // tells a row just inserted from one updated.
    let row = tx
        .query_one(
            "INSERT INTO supactl.functions (project_ref, slug, version, verify_jwt)
             VALUES ($1, $2, 1, coalesce($3::boolean, true))
             ON CONFLICT (project_ref, slug) DO UPDATE SET version = functions.version + 1,
               verify_jwt = coalesce($3::boolean, functions.verify_jwt), updated_at = now()
             RETURNING version, (xmax = 0)",
            &[&project_ref, &slug, &verify_jwt],
        )
        .await?;
    let (version, created): (i32, bool) = (row.get(0), row.get(1));
    match expect {
        Some(_) if created => return Err(not_found(project_ref, slug)),
        Some(v) if v + 1 != version => {
            return Err(ApiError::Conflict(format!(
                "function {slug} was deployed again meanwhile; retry the change"
            )))
        }
        _ => {}
    }
    if created {
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM supactl.functions WHERE project_ref = $1",
                &[&project_ref],
            )
            .await?
            .get(0);
        if n > MAX_FUNCTIONS_PER_PROJECT {
            return Err(ApiError::Conflict(format!(
                "project {project_ref} has {MAX_FUNCTIONS_PER_PROJECT} functions, the most it may have"
            )));
        }
    }
    tx.execute(
        "INSERT INTO supactl.function_versions
           (project_ref, slug, version, entrypoint, import_map, files, size_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &project_ref,
            &slug,
            &version,
            &bundle.entrypoint,
            &bundle.import_map,
            &files,
            &size,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM supactl.function_versions WHERE project_ref = $1 AND slug = $2 AND version <= $3",
        &[&project_ref, &slug, &(version - KEPT_VERSIONS)],
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// The function's current version number and code.
async fn current_bundle(
    tm: &TenantManager,
    project_ref: &str,
    slug: &str,
) -> Result<(i32, Bundle), ApiError> {
    let c = tm.store.client().await?;
    let row = c
        .query_opt(
            "SELECT f.version, v.entrypoint, v.import_map, v.files
             FROM supactl.functions f JOIN supactl.function_versions v
               ON v.project_ref = f.project_ref AND v.slug = f.slug AND v.version = f.version
             WHERE f.project_ref = $1 AND f.slug = $2",
            &[&project_ref, &slug],
        )
        .await?
        .ok_or_else(|| not_found(project_ref, slug))?;
    Ok((
        row.get(0),
        Bundle {
            entrypoint: row.get(1),
            import_map: row.get(2),
            files: stored_files(row.get(3))?,
        },
    ))
}

fn stored_files(text: &str) -> Result<Vec<BundleFile>, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("stored function files: {e}")))
}

const FUNCTION_COLS: &str = "f.slug, f.version, f.verify_jwt, to_json(f.created_at) #>> '{}',
     to_json(f.updated_at) #>> '{}', v.entrypoint, v.import_map IS NOT NULL, v.size_bytes";
const FUNCTION_FROM: &str = "supactl.functions f JOIN supactl.function_versions v
     ON v.project_ref = f.project_ref AND v.slug = f.slug AND v.version = f.version";

fn function_row(r: &tokio_postgres::Row) -> Value {
    json!({
        "slug": r.get::<_, String>(0),
        "name": r.get::<_, String>(0),
        "version": r.get::<_, i32>(1),
        "verify_jwt": r.get::<_, bool>(2),
        "status": STATUS_ACTIVE,
        "created_at": r.get::<_, String>(3),
        "updated_at": r.get::<_, String>(4),
        "entrypoint": r.get::<_, String>(5),
        "import_map": r.get::<_, bool>(6),
        "size_bytes": r.get::<_, i64>(7),
    })
}

/// 404 unless the project has a function `slug`.
pub(crate) async fn ensure_exists(
    tm: &TenantManager,
    project_ref: &str,
    slug: &str,
) -> Result<(), ApiError> {
    function_json(tm, project_ref, slug, false).await.map(drop)
}

/// The function as the admin API shows it; with `versions`, the versions kept too (newest first).
async fn function_json(
    tm: &TenantManager,
    project_ref: &str,
    slug: &str,
    versions: bool,
) -> Result<Value, ApiError> {
    let c = tm.store.client().await?;
    let sql = format!(
        "SELECT {FUNCTION_COLS} FROM {FUNCTION_FROM} WHERE f.project_ref = $1 AND f.slug = $2"
    );
    let row = c
        .query_opt(&sql, &[&project_ref, &slug])
        .await?
        .ok_or_else(|| not_found(project_ref, slug))?;
    let mut f = function_row(&row);
    if versions {
        let rows = c
            .query(
                "SELECT version, to_json(created_at) #>> '{}', entrypoint, size_bytes
                 FROM supactl.function_versions WHERE project_ref = $1 AND slug = $2 ORDER BY version DESC",
                &[&project_ref, &slug],
            )
            .await?;
        f["versions"] = rows
            .iter()
            .map(|r| {
                json!({
                    "version": r.get::<_, i32>(0), "created_at": r.get::<_, String>(1),
                    "entrypoint": r.get::<_, String>(2), "size_bytes": r.get::<_, i64>(3),
                })
            })
            .collect();
    }
    Ok(f)
}

/// `GET /projects/{ref}/functions/{slug}/code`: the current version's files, entrypoint and import map
/// (the dashboard's editor loads them; code is the project's own, not a secret of the platform).
pub(crate) async fn code(
    State(tm): Tm,
    Path((project_ref, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let bundle = crate::functions_internal::stored_bundle(&c, &project_ref, &slug, None).await?;
    Ok(data(json!({
        "slug": slug,
        "entrypoint": bundle.entrypoint,
        "import_map": bundle.import_map,
        "files": bundle.files,
    })))
}

/// `GET /projects/{ref}/functions`, by slug.
pub(crate) async fn list(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let sql = format!(
        "SELECT {FUNCTION_COLS} FROM {FUNCTION_FROM} WHERE f.project_ref = $1 ORDER BY f.slug"
    );
    let rows = c.query(&sql, &[&project_ref]).await?;
    Ok(data(rows.iter().map(function_row).collect()))
}

/// `GET /projects/{ref}/functions/{slug}`, with the versions kept.
pub(crate) async fn show(
    State(tm): Tm,
    Path((project_ref, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(data(function_json(&tm, &project_ref, &slug, true).await?))
}

/// `DELETE /projects/{ref}/functions/{slug}`: the function and every version of it.
pub(crate) async fn delete(
    State(tm): Tm,
    Path((project_ref, slug)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let c = tm.store.client().await?;
    let n = c
        .execute(
            "DELETE FROM supactl.functions WHERE project_ref = $1 AND slug = $2",
            &[&project_ref, &slug],
        )
        .await?;
    if n == 0 {
        return Err(not_found(&project_ref, &slug));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_deno_a_deploy_is_refused_naming_the_fix() {
        let checker = Checker {
            find_deno: || Err(::functions::ConfigError::DenoMissing),
            ..Checker::new()
        };
        let bundle = Bundle {
            entrypoint: "index.ts".into(),
            files: vec![BundleFile {
                name: "index.ts".into(),
                content: "export {};".into(),
            }],
            import_map: None,
        };
        let err = checker.check(&bundle).await.expect_err("refused");
        let res = err.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "deno_unavailable");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("scripts/setup.sh deno") && message.contains("SUPACTL_DENO"));
        assert!(
            checker.found.lock().unwrap().is_none(),
            "looked for again next time"
        );
        let res = FnError::ChecksBusy.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_deploy_gives_body_or_files() {
        let parse = |v: Value| serde_json::from_value::<DeployBody>(v).unwrap();
        let mut both = parse(json!({"body": "x", "files": [{"name": "a.ts", "content": ""}]}));
        assert!(both.files("index.ts").is_err());
        let mut one = parse(json!({"body": "export {}"}));
        let files = one.files("main.ts").unwrap().unwrap();
        assert_eq!(files[0].name, "main.ts");
        let mut map = parse(json!({"import_map": {"imports": {}}}));
        assert_eq!(
            map.import_map().unwrap(),
            Some(Some(r#"{"imports":{}}"#.into()))
        );
        assert!(parse(json!({"import_map": 3})).import_map().is_err());
        assert!(check_slug("hello-world_2").is_ok());
        assert!(check_slug("2hello").is_err());
    }
}
