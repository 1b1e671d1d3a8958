//! Project databases made from an earlier template are brought up to the current project schema when
//! the tenant-manager starts, keeping their rows: the schema scripts (`templates/{realtime,storage,auth,
//! rest,confine}.sql`) run again on every database whose version mark differs, then the mark is set.
//!
//! The earlier template is reproduced in the project's own database: what the current `auth.sql` added
//! (the OAuth provider and flow tables, the flow-state indexes of PKCE, the identity-linking setting,
//! the hooks table and the phone settings) is dropped and the version mark is one an earlier release wrote.

use http::Method;
use serde_json::json;
use testkit::ControlPlane;

const REF: &str = "upgrade-me";

async fn comment(cp: &ControlPlane) -> Option<String> {
    cp.connect("postgres")
        .await
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&supactl_common::ident::database_name(REF)],
        )
        .await
        .unwrap()
        .get(0)
}

async fn oauth_tables(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'auth'
           AND tablename IN ('supactl_oauth_providers', 'supactl_oauth_flows')",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn an_older_project_database_is_upgraded_at_start_and_keeps_its_users() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    cp.create_project("upgrade", REF).await;
    let current = comment(&cp).await.expect("a new project carries the mark");
    assert!(current.starts_with("supactl schema "), "{current}");

    let (s, v) = cp
        .admin(
            Method::POST,
            &format!("/admin/v1/projects/{REF}/auth/users"),
            Some(json!({"email": "kept@example.com", "password": "secret-123", "email_confirm": true})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let user_id = v["data"]["id"].as_str().unwrap().to_string();

    let db = cp.project_db(REF).await;
    assert_eq!(oauth_tables(&db).await, 2);
    db.batch_execute(
        "DROP TABLE auth.supactl_oauth_flows, auth.supactl_oauth_providers;
         DROP INDEX auth.idx_auth_code, auth.flow_state_created_at_idx, auth.idx_user_id_auth_method;
         DROP TABLE auth.supactl_hooks;
         DROP INDEX auth.users_phone_change_idx, auth.unique_phone_factor_per_user;
         ALTER TABLE auth.supactl_settings DROP COLUMN phone_enabled, DROP COLUMN phone_autoconfirm,
           DROP COLUMN sms_otp_length, DROP COLUMN sms_otp_exp, DROP COLUMN sms_max_frequency,
           DROP COLUMN rate_limit_sms_sent, DROP COLUMN mfa_phone_enabled,
           DROP COLUMN security_manual_linking_enabled,
           DROP COLUMN security_update_password_require_reauthentication,
           DROP COLUMN mailer_secure_email_change_enabled;
         UPDATE auth.supactl_settings SET password_min_length = 9;",
    )
    .await
    .unwrap();
    let old_mark = "supactl confine 0123456789abcdef";
    cp.connect("postgres")
        .await
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS '{old_mark}'",
            supactl_common::ident::database_name(REF)
        ))
        .await
        .unwrap();
    assert_eq!(oauth_tables(&db).await, 0);

    cp.start_tenant_manager_again().await;

    assert_eq!(oauth_tables(&db).await, 2, "the OAuth tables are back");
    let flow_indexes: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'auth' AND tablename = 'flow_state' \
               AND indexname IN ('idx_auth_code', 'flow_state_created_at_idx', 'idx_user_id_auth_method')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(flow_indexes, 3, "the flow-state indexes are back");
    assert_eq!(comment(&cp).await.as_deref(), Some(current.as_str()));
    let users: Vec<(String, String)> = db
        .query("SELECT id::text, email FROM auth.users", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(users, vec![(user_id.clone(), "kept@example.com".into())]);
    let identities: i64 = db
        .query_one("SELECT count(*) FROM auth.identities", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(identities, 1);
    let settings: i64 = db
        .query_one("SELECT count(*) FROM auth.supactl_settings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(settings, 1, "the settings row is kept, not doubled");
    // The phone, linking, reauthentication and email-change settings and the hooks table are added,
    // the row keeping its values and each new column coming with its default.
    let r = db
        .query_one(
            "SELECT password_min_length, phone_enabled, sms_otp_exp, to_regclass('auth.supactl_hooks') IS NOT NULL, \
             security_manual_linking_enabled, security_update_password_require_reauthentication, \
             mailer_secure_email_change_enabled FROM auth.supactl_settings",
            &[],
        )
        .await
        .unwrap();
    let (min, phone, exp, hooks, linking): (i32, bool, i32, bool, bool) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!(
        (min, phone, exp, hooks, linking),
        (9, false, 60, true, false)
    );
    let (reauthentication, secure_change): (bool, bool) = (r.get(5), r.get(6));
    assert_eq!((reauthentication, secure_change), (false, true));

    // The project's auth service still finds the user: creating it again is refused.
    let (s, v) = cp
        .admin(
            Method::POST,
            &format!("/admin/v1/projects/{REF}/auth/users"),
            Some(json!({"email": "kept@example.com", "password": "secret-123"})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "the existing user is still there: {v}");

    // A second start finds nothing to do and leaves rows and mark alone.
    cp.start_tenant_manager_again().await;
    assert_eq!(comment(&cp).await.as_deref(), Some(current.as_str()));
}
