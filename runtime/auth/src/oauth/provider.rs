//! A project's OAuth/OIDC providers: what the platform's admin API stores in
//! `auth.supactl_oauth_providers` (client id, the client secret sealed with the project's data key and
//! bound to the provider's name, an issuer, extra scopes), the presets' endpoints, and the endpoints of
//! a generic OIDC provider read from its discovery document (cached).
//!
//! A provider is either OIDC (an issuer and a JWKS: the ID token of the code exchange is verified and
//! names the user) or OAuth 2 with a userinfo endpoint (GitHub-style: the access token fetches the
//! user, and GitHub's address list supplies a verified email the profile lacks). Presets are data only: google, github, gitlab, azure and apple; any other name needs an
//! issuer, and an issuer given for a preset's name (a self-hosted GitLab, one Azure tenant) replaces
//! the preset's endpoints with the discovered ones.

use super::fetch::Fetcher;
use super::Cache;
use crate::error::{AuthError, AuthResult};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use deadpool_postgres::Object;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use supactl_common::crypto::Cipher;
use supactl_common::wire::ProjectConfig;

/// The endpoints of a provider.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    /// GitHub's list of the user's addresses (`[{email, primary, verified}]`), for a private or
    /// unverified profile email.
    pub emails: Option<String>,
    /// With `issuer`: the provider is OIDC and its ID tokens are verified against these keys.
    pub jwks_uri: Option<String>,
    pub issuer: Option<String>,
    /// Scopes always asked for.
    pub scopes: &'static str,
}

struct Preset {
    name: &'static str,
    authorization: &'static str,
    token: &'static str,
    userinfo: Option<&'static str>,
    emails: Option<&'static str>,
    jwks_uri: Option<&'static str>,
    issuer: Option<&'static str>,
    scopes: &'static str,
}

/// Well-known providers' public endpoints (as GoTrue's built-in providers use them).
const PRESETS: [Preset; 5] = [
    Preset {
        name: "google",
        authorization: "https://accounts.google.com/o/oauth2/v2/auth",
        token: "https://oauth2.googleapis.com/token",
        userinfo: Some("https://openidconnect.googleapis.com/v1/userinfo"),
        emails: None,
        jwks_uri: Some("https://www.googleapis.com/oauth2/v3/certs"),
        issuer: Some("https://accounts.google.com"),
        scopes: "openid email profile",
    },
    Preset {
        name: "github",
        authorization: "https://github.com/login/oauth/authorize",
        token: "https://github.com/login/oauth/access_token",
        userinfo: Some("https://api.github.com/user"),
        emails: Some("https://api.github.com/user/emails"),
        jwks_uri: None,
        issuer: None,
        scopes: "user:email",
    },
    Preset {
        name: "gitlab",
        authorization: "https://gitlab.com/oauth/authorize",
        token: "https://gitlab.com/oauth/token",
        userinfo: Some("https://gitlab.com/api/v4/user"),
        emails: None,
        jwks_uri: None,
        issuer: None,
        scopes: "read_user",
    },
    // Multi-tenant Azure ID tokens name the user's tenant as issuer, so the preset takes the user
    // from the userinfo endpoint; an issuer of one tenant makes it OIDC.
    Preset {
        name: "azure",
        authorization: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        userinfo: Some("https://graph.microsoft.com/oidc/userinfo"),
        emails: None,
        jwks_uri: None,
        issuer: None,
        scopes: "openid email profile",
    },
    Preset {
        name: "apple",
        authorization: "https://appleid.apple.com/auth/authorize",
        token: "https://appleid.apple.com/auth/token",
        userinfo: None,
        emails: None,
        jwks_uri: Some("https://appleid.apple.com/auth/keys"),
        issuer: Some("https://appleid.apple.com"),
        scopes: "openid email name",
    },
];

/// One provider of a project, its secret opened.
#[derive(Clone)]
pub struct Provider {
    pub name: String,
    pub enabled: bool,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub issuer: Option<String>,
    pub scopes: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &supactl_common::redact::optional(&self.client_secret),
            )
            .field("issuer", &self.issuer)
            .finish()
    }
}

fn aad(provider: &str) -> Vec<u8> {
    format!("auth.supactl_oauth_providers.client_secret:{provider}").into_bytes()
}

fn cipher(project: &ProjectConfig) -> AuthResult<Cipher> {
    if project.data_key.is_empty() {
        return Err(AuthError::internal(
            "the project's config carries no data key: OAuth client secrets cannot be opened",
        ));
    }
    Ok(Cipher::new(&project.data_key))
}

/// The provider `name` of the project (None: not configured).
pub async fn load(
    client: &Object,
    project: &ProjectConfig,
    name: &str,
) -> AuthResult<Option<Provider>> {
    let row = client
        .query_opt(
            "SELECT enabled, client_id, client_secret, issuer, scopes \
             FROM auth.supactl_oauth_providers WHERE provider = $1",
            &[&name],
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    let client_secret = match r.get::<_, Option<String>>(2) {
        Some(sealed) => {
            let raw = B64.decode(sealed).map_err(AuthError::internal)?;
            Some(
                cipher(project)?
                    .open_string(&raw, &aad(name))
                    .map_err(AuthError::internal)?,
            )
        }
        None => None,
    };
    Ok(Some(Provider {
        name: name.to_string(),
        enabled: r.get(0),
        client_id: r.get(1),
        client_secret,
        issuer: r.get(3),
        scopes: r.get(4),
    }))
}

/// The enabled providers' names (for `/settings`).
pub async fn enabled_names(client: &Object) -> AuthResult<Vec<String>> {
    Ok(client
        .query(
            "SELECT provider FROM auth.supactl_oauth_providers WHERE enabled ORDER BY provider",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// An enabled provider, or GoTrue's errors for an unknown or disabled one.
pub async fn enabled(client: &Object, project: &ProjectConfig, name: &str) -> AuthResult<Provider> {
    match load(client, project, name).await? {
        Some(p) if p.enabled => Ok(p),
        Some(_) => Err(AuthError::bad_request(
            "provider_disabled",
            "Unsupported provider: provider is not enabled",
        )),
        None => Err(AuthError::bad_request(
            "validation_failed",
            format!("Unsupported provider: Provider {name} could not be found"),
        )),
    }
}

impl Provider {
    /// The provider's endpoints: discovered from its issuer when it has one (cached), else its
    /// preset's.
    pub async fn endpoints(&self, fetcher: &Fetcher, cache: &Cache) -> AuthResult<Arc<Endpoints>> {
        if let Some(issuer) = &self.issuer {
            return discover(fetcher, cache, issuer).await;
        }
        let p = PRESETS
            .iter()
            .find(|p| p.name == self.name)
            .ok_or_else(|| AuthError::internal(format!("provider {} has no issuer", self.name)))?;
        Ok(Arc::new(Endpoints {
            authorization: p.authorization.into(),
            token: p.token.into(),
            userinfo: p.userinfo.map(str::to_string),
            emails: p.emails.map(str::to_string),
            jwks_uri: p.jwks_uri.map(str::to_string),
            issuer: p.issuer.map(str::to_string),
            scopes: p.scopes,
        }))
    }
}

/// The endpoints of an OIDC provider from `{issuer}/.well-known/openid-configuration`, whose `issuer`
/// must be the configured one (OpenID Connect Discovery §4.3).
async fn discover(fetcher: &Fetcher, cache: &Cache, issuer: &str) -> AuthResult<Arc<Endpoints>> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = cache
        .get_or_fetch(&url, || fetcher.get_json(&url, None))
        .await
        .map_err(|e| provider_error(format!("discovery document of {issuer}: {e}")))?;
    let field = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    if field("issuer").as_deref() != Some(issuer) {
        return Err(provider_error(format!(
            "discovery document of {issuer} names another issuer"
        )));
    }
    let required = |k: &str| {
        field(k).ok_or_else(|| provider_error(format!("discovery document of {issuer} has no {k}")))
    };
    Ok(Arc::new(Endpoints {
        authorization: required("authorization_endpoint")?,
        token: required("token_endpoint")?,
        userinfo: field("userinfo_endpoint"),
        emails: None,
        jwks_uri: Some(required("jwks_uri")?),
        issuer: Some(issuer.to_string()),
        scopes: "openid email profile",
    }))
}

/// A provider that cannot be reached or answers nonsense: the detail is logged.
pub fn provider_error(detail: impl std::fmt::Display) -> AuthError {
    tracing::warn!(%detail, "oauth provider call failed");
    AuthError::new(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "unexpected_failure",
        "Error getting user profile from external provider",
    )
}

/// The admin API's body for one provider (`PUT …/auth/providers/{name}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderUpdate {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub client_id: String,
    /// Kept as stored when left out.
    pub client_secret: Option<String>,
    pub issuer: Option<String>,
    #[serde(default)]
    pub scopes: String,
}

fn yes() -> bool {
    true
}

/// Checks a provider's name and issuer: an issuer is an `https` URL (`http` only on loopback, for
/// tests), and a name without a preset needs one.
fn validate(name: &str, u: &ProviderUpdate) -> AuthResult<()> {
    let name_ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !name_ok {
        return Err(AuthError::validation(
            "provider names are 1-40 characters of a-z, 0-9, _ and -",
        ));
    }
    if u.client_id.trim().is_empty() || u.client_id.len() > 512 {
        return Err(AuthError::validation("client_id is required"));
    }
    match &u.issuer {
        Some(i) => {
            let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                .iter()
                .any(|p| i.starts_with(p));
            let parsed = i.parse::<http::Uri>().ok();
            if !(i.starts_with("https://") || loopback)
                || parsed.is_none_or(|u| u.host().is_none() || u.query().is_some())
            {
                return Err(AuthError::validation(
                    "issuer must be an https URL without a query",
                ));
            }
        }
        None if PRESETS.iter().any(|p| p.name == name) => {}
        None => {
            return Err(AuthError::validation(format!(
                "provider {name} has no preset: give its issuer (OIDC discovery)"
            )))
        }
    }
    if u.scopes.len() > 1024 || u.client_secret.as_ref().is_some_and(|s| s.len() > 4096) {
        return Err(AuthError::validation("scopes or client_secret too long"));
    }
    Ok(())
}

const PROVIDER_JSON: &str = "jsonb_build_object('provider', provider, 'enabled', enabled, \
    'client_id', client_id, 'client_secret_set', client_secret IS NOT NULL, 'issuer', issuer, \
    'scopes', scopes, 'created_at', created_at, 'updated_at', updated_at)";

/// Creates or replaces provider `name`; its JSON, without the secret.
pub async fn upsert(
    client: &Object,
    project: &ProjectConfig,
    name: &str,
    u: ProviderUpdate,
) -> AuthResult<Value> {
    validate(name, &u)?;
    let sealed = match &u.client_secret {
        Some(s) => Some(B64.encode(cipher(project)?.seal(s.as_bytes(), &aad(name)))),
        None => None,
    };
    let sql = format!(
        "INSERT INTO auth.supactl_oauth_providers AS p (provider, enabled, client_id, client_secret, issuer, scopes) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (provider) DO UPDATE SET enabled = EXCLUDED.enabled, client_id = EXCLUDED.client_id, \
           client_secret = coalesce(EXCLUDED.client_secret, p.client_secret), issuer = EXCLUDED.issuer, \
           scopes = EXCLUDED.scopes, updated_at = now() \
         RETURNING {PROVIDER_JSON}"
    );
    let row = client
        .query_one(
            &sql,
            &[
                &name,
                &u.enabled,
                &u.client_id,
                &sealed,
                &u.issuer,
                &u.scopes,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Every provider of the project, without secrets.
pub async fn list(client: &Object) -> AuthResult<Value> {
    let sql = format!(
        "SELECT coalesce(jsonb_agg({PROVIDER_JSON} ORDER BY provider), '[]'::jsonb) \
         FROM auth.supactl_oauth_providers"
    );
    Ok(client.query_one(&sql, &[]).await?.get(0))
}

/// Deletes provider `name`; whether it existed.
pub async fn delete(client: &Object, name: &str) -> AuthResult<bool> {
    Ok(client
        .execute(
            "DELETE FROM auth.supactl_oauth_providers WHERE provider = $1",
            &[&name],
        )
        .await?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(issuer: Option<&str>) -> ProviderUpdate {
        ProviderUpdate {
            enabled: true,
            client_id: "client".into(),
            client_secret: Some("very-secret-value".into()),
            issuer: issuer.map(str::to_string),
            scopes: String::new(),
        }
    }

    #[test]
    fn names_and_issuers_are_checked() {
        assert!(validate("github", &update(None)).is_ok());
        assert!(
            validate("keycloak", &update(None)).is_err(),
            "no preset, no issuer"
        );
        assert!(validate("corp", &update(Some("https://id.example.com/realms/x"))).is_ok());
        assert!(validate("corp", &update(Some("http://127.0.0.1:4000"))).is_ok());
        assert!(validate("corp", &update(Some("http://id.example.com"))).is_err());
        assert!(validate("corp", &update(Some("https://id.example.com/?a=b"))).is_err());
        assert!(validate("Corp", &update(Some("https://id.example.com"))).is_err());
        assert!(validate("", &update(None)).is_err());
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let p = Provider {
            name: "corp".into(),
            enabled: true,
            client_id: "id".into(),
            client_secret: Some("very-secret-value".into()),
            issuer: None,
            scopes: String::new(),
        };
        assert!(!format!("{p:?}").contains("very-secret-value"));
    }
}
