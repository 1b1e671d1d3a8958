//! Connections to project databases and the project's auth settings.
//!
//! One small pool per project from the shared connection registry, dropped when idle. Connections log in as the project's own login role
//! (from the project directory, never worker admin credentials) and start with
//! `role=supabase_auth_admin`: the owner of the `auth` tables, which that login role may `SET ROLE` to
//! and which has no privilege outside the `auth` schema. Timestamps are rendered in UTC, and every
//! statement runs under [`STATEMENT_TIMEOUT`].

use crate::error::AuthError;
use deadpool_postgres::Object;
use std::time::Duration;
use supactl_common::connections::{self, Registry, ServiceSpec};
use supactl_common::wire::DbConfig;
use tokio_postgres::Row;

/// `statement_timeout` of every auth query, set when the connection opens (no extra round trip).
/// Auth's own queries are indexed lookups of a row or two; what can be slow is the project's own
/// triggers on `auth.users` (a profile row per sign-up, say), which get as long as an authenticated
/// REST request by default. A trigger that lifts it for its session lifts it on its own project's
/// connections only.
pub const STATEMENT_TIMEOUT: &str = "8s";

/// The project pools of auth in a connection registry ([`supactl_common::connections`]).
pub struct Pools {
    pools: connections::Pools,
}

impl Pools {
    /// Pools in `registry` of at most `max_size` connections, dropped after `idle` without use (as
    /// are single connections unused that long).
    pub fn new(registry: &Registry, max_size: usize, idle: Duration) -> Pools {
        Pools {
            pools: registry.service(ServiceSpec {
                application_name: "supactl-auth",
                options: Some(format!(
                    "-c role=supabase_auth_admin -c TimeZone=UTC -c statement_timeout={STATEMENT_TIMEOUT}"
                )),
                pool_size: max_size,
                idle_timeout: idle,
                connection_idle_timeout: idle,
            }),
        }
    }

    /// Drops a project's pool (deleted or paused project, changed credentials, lost connections).
    pub fn remove(&self, project_ref: &str) {
        self.pools.remove(project_ref);
    }

    pub async fn get(&self, project_ref: &str, db: &DbConfig) -> Result<Object, AuthError> {
        let (pool, _) = self.pools.get(project_ref, db);
        Ok(self.pools.checkout(&pool).await?)
    }
}

/// The outgoing mail server of a project.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub admin_email: String,
    pub sender_name: Option<String>,
    pub tls: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("pass", &supactl_common::redact::optional(&self.pass))
            .field("admin_email", &self.admin_email)
            .field("sender_name", &self.sender_name)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `auth.supactl_settings`: what GoTrue reads from its environment, per project.
#[derive(Debug, Clone)]
pub struct Settings {
    pub site_url: String,
    pub uri_allow_list: Vec<String>,
    pub disable_signup: bool,
    pub mailer_autoconfirm: bool,
    pub anonymous_users: bool,
    pub password_min_length: usize,
    pub jwt_exp: i64,
    pub reuse_interval: i64,
    pub otp_exp: i64,
    pub window: Duration,
    pub limit_sign_in: u32,
    pub limit_refresh: u32,
    pub limit_otp: u32,
    pub limit_verify: u32,
    pub limit_per_email: u32,
    pub max_frequency: i64,
    pub smtp: Option<Smtp>,
    pub phone: PhoneSettings,
    /// GoTrue's `SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`: a password change outside the
    /// session's first 24 hours must present the nonce of `/reauthenticate`.
    pub password_change_needs_nonce: bool,
    /// GoTrue's `MAILER_SECURE_EMAIL_CHANGE_ENABLED`: an email change is confirmed on both addresses.
    pub secure_email_change: bool,
}

/// Phone sign-in and phone MFA factors (codes go out through the project's `send_sms` hook).
#[derive(Debug, Clone)]
pub struct PhoneSettings {
    /// GoTrue's `external.phone`: phone sign-ups and sign-ins.
    pub enabled: bool,
    pub autoconfirm: bool,
    /// Digits of a code (6 to 10).
    pub otp_length: usize,
    /// Seconds a code stays valid.
    pub otp_exp: i64,
    /// Minimum seconds between two codes of one kind to one user (or one factor).
    pub max_frequency: i64,
    /// Codes sent per hour by the project, all numbers together (GoTrue's `RATE_LIMIT_SMS_SENT`).
    pub sms_per_hour: u32,
    /// Enrolling and challenging phone MFA factors (GoTrue's `MFA_PHONE_ENROLL/VERIFY_ENABLED`).
    pub mfa_enabled: bool,
}

const SETTINGS_SQL: &str = "SELECT site_url, uri_allow_list, disable_signup, mailer_autoconfirm, \
    anonymous_users_enabled, password_min_length, jwt_exp, refresh_token_reuse_interval, mailer_otp_exp, \
    rate_limit_window_secs, rate_limit_sign_in_sign_ups, rate_limit_token_refresh, rate_limit_otp, \
    rate_limit_verify, rate_limit_per_email, smtp_max_frequency, smtp_host, smtp_port, smtp_user, \
    smtp_pass, smtp_admin_email, smtp_sender_name, smtp_tls, \
    phone_enabled, phone_autoconfirm, sms_otp_length, sms_otp_exp, sms_max_frequency, \
    rate_limit_sms_sent, mfa_phone_enabled, security_update_password_require_reauthentication, \
    mailer_secure_email_change_enabled FROM auth.supactl_settings";

fn count(r: &Row, i: usize) -> u32 {
    r.get::<_, i32>(i).max(0) as u32
}

impl Settings {
    /// Reads the project's settings (one indexed row, a prepared statement per connection).
    pub async fn load(client: &Object) -> Result<Settings, AuthError> {
        let stmt = client.prepare_cached(SETTINGS_SQL).await?;
        let r = client
            .query_opt(&stmt, &[])
            .await?
            .ok_or_else(|| AuthError::internal("auth.supactl_settings has no row"))?;
        let smtp = r.get::<_, Option<String>>(16).map(|host| Smtp {
            host,
            port: r.get::<_, i32>(17).clamp(1, 65535) as u16,
            user: r.get(18),
            pass: r.get(19),
            admin_email: r
                .get::<_, Option<String>>(20)
                .unwrap_or_else(|| "noreply@localhost".into()),
            sender_name: r.get(21),
            tls: r.get(22),
        });
        Ok(Settings {
            site_url: r.get(0),
            uri_allow_list: r.get(1),
            disable_signup: r.get(2),
            mailer_autoconfirm: r.get(3),
            anonymous_users: r.get(4),
            password_min_length: r.get::<_, i32>(5).max(6) as usize,
            jwt_exp: r.get::<_, i32>(6).into(),
            reuse_interval: r.get::<_, i32>(7).into(),
            otp_exp: r.get::<_, i32>(8).into(),
            window: Duration::from_secs(r.get::<_, i32>(9).max(1) as u64),
            limit_sign_in: count(&r, 10),
            limit_refresh: count(&r, 11),
            limit_otp: count(&r, 12),
            limit_verify: count(&r, 13),
            limit_per_email: count(&r, 14),
            max_frequency: r.get::<_, i32>(15).into(),
            smtp,
            phone: PhoneSettings {
                enabled: r.get(23),
                autoconfirm: r.get(24),
                otp_length: r.get::<_, i32>(25).clamp(6, 10) as usize,
                otp_exp: r.get::<_, i32>(26).into(),
                max_frequency: r.get::<_, i32>(27).into(),
                sms_per_hour: count(&r, 28),
                mfa_enabled: r.get(29),
            },
            password_change_needs_nonce: r.get(30),
            secure_email_change: r.get(31),
        })
    }

    /// The redirect target for links and OAuth sign-ins: `requested` when GoTrue's rule allows it
    /// ([`crate::redirect`]), otherwise the site URL.
    pub fn redirect(&self, requested: Option<&str>) -> String {
        crate::redirect::choose(&self.site_url, &self.uri_allow_list, requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_debug_hides_the_password() {
        let smtp = Smtp {
            host: "smtp.example.com".into(),
            port: 587,
            user: Some("mailer".into()),
            pass: Some("smtp-password-0123".into()),
            admin_email: "admin@example.com".into(),
            sender_name: None,
            tls: "starttls".into(),
        };
        for text in [format!("{smtp:?}"), format!("{smtp:#?}")] {
            assert!(!text.contains("smtp-password-0123"), "{text}");
            assert!(
                text.contains("smtp.example.com") && text.contains("<redacted>"),
                "{text}"
            );
        }
    }
}
