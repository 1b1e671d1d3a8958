//! Who a provider says the user is (from a verified ID token's claims or its userinfo answer), and the
//! auth user that person signs in as, by GoTrue's rules: the user already holding this provider
//! identity; else the user with the same email when the provider vouches for it (the identity is
//! linked to them); else a new user, unless sign-ups are off. A provider's unverified email never
//! takes over an existing account.

use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::store::{self, External, NewUser, User};
use deadpool_postgres::Transaction;
use serde_json::{json, Map, Value};

/// The user as the provider describes them.
#[derive(Debug, Clone)]
pub struct Person {
    /// The user's id at the provider (`sub`, or GitHub's numeric `id`).
    pub provider_id: String,
    /// Lower-cased.
    pub email: Option<String>,
    pub email_verified: bool,
    /// GoTrue's `identity_data` (also the new user's `user_metadata`).
    pub data: Value,
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl Person {
    /// From ID token claims or a userinfo answer (`issuer` recorded as `iss` when the claims have none).
    pub fn from_claims(claims: &Map<String, Value>, issuer: Option<&str>) -> AuthResult<Person> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        let provider_id = text("sub")
            .or_else(|| match claims.get("id") {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            })
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| {
                AuthError::bad_request(
                    "bad_oauth_callback",
                    "Error getting user profile from external provider: no user id",
                )
            })?;
        let email = text("email")
            .filter(|e| !e.is_empty())
            .map(|e| e.trim().to_lowercase());
        let email_verified = email.is_some() && truthy(claims.get("email_verified"));
        let name = text("name");
        let picture = text("picture").or_else(|| text("avatar_url"));
        let username = text("preferred_username")
            .or_else(|| text("login"))
            .or_else(|| text("username"));
        let mut data = json!({
            "iss": text("iss").or(issuer.map(str::to_string)),
            "sub": provider_id,
            "provider_id": provider_id,
            "email": email,
            "email_verified": email_verified,
            "phone_verified": false,
            "name": name,
            "full_name": name,
            "picture": picture,
            "avatar_url": picture,
            "preferred_username": username,
            "user_name": username,
        });
        if let Value::Object(m) = &mut data {
            m.retain(|_, v| !v.is_null());
        }
        Ok(Person {
            provider_id,
            email,
            email_verified,
            data,
        })
    }

    /// Takes the primary verified address of a GitHub-style `[{email, primary, verified}]` list when
    /// the profile gave none that is verified.
    pub fn with_listed_emails(mut self, list: &Value) -> Person {
        if self.email_verified {
            return self;
        }
        let primary = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["primary"] == Value::Bool(true) && e["verified"] == Value::Bool(true));
        if let Some(email) = primary.and_then(|e| e["email"].as_str()) {
            let email = email.trim().to_lowercase();
            self.data["email"] = Value::from(email.as_str());
            self.data["email_verified"] = Value::Bool(true);
            self.email = Some(email);
            self.email_verified = true;
        }
        self
    }
}

/// The auth user `person` signs in as with `provider` (found, linked or created), in `tx`.
pub async fn sign_in_user(
    tx: &Transaction<'_>,
    settings: &Settings,
    provider: &str,
    person: &Person,
) -> AuthResult<User> {
    let external = External {
        provider,
        provider_id: &person.provider_id,
        data: &person.data,
    };
    if let Some(user) = user_by_identity(tx, provider, &person.provider_id).await? {
        store::link_identity(tx, &user.id, &external).await?;
        return reread(tx, &user.id).await;
    }
    if let Some(email) = &person.email {
        if let Some(user) = store::user_by_email(tx, email).await? {
            if !person.email_verified {
                return Err(AuthError::unprocessable(
                    "email_exists",
                    format!(
                        "Unverified email with {provider}: a user with this email address has already been registered"
                    ),
                ));
            }
            store::link_identity(tx, &user.id, &external).await?;
            if !user.confirmed {
                store::confirm_email(tx, &user.id).await?;
            }
            return reread(tx, &user.id).await;
        }
    }
    if settings.disable_signup {
        return Err(AuthError::unprocessable(
            "signup_disabled",
            "Signups not allowed for this instance",
        ));
    }
    store::create_user(
        tx,
        NewUser {
            email: person.email.as_deref(),
            password_hash: None,
            user_metadata: person.data.clone(),
            app_metadata: json!({}),
            confirmed: person.email_verified || settings.mailer_autoconfirm,
            anonymous: false,
            role: "authenticated",
            identity_in_metadata: false,
            external: Some(external),
        },
    )
    .await?
    .ok_or_else(|| {
        AuthError::unprocessable(
            "email_exists",
            "A user with this email address has already been registered",
        )
    })
}

/// The user holding `provider`'s identity `provider_id`.
async fn user_by_identity(
    tx: &Transaction<'_>,
    provider: &str,
    provider_id: &str,
) -> AuthResult<Option<User>> {
    let sql = store::select_user(
        "u.id = (SELECT i.user_id FROM auth.identities i WHERE i.provider = $1 AND i.provider_id = $2) \
         AND u.deleted_at IS NULL",
    );
    let st = tx.prepare_cached(&sql).await?;
    Ok(tx
        .query_opt(&st, &[&provider, &provider_id])
        .await?
        .as_ref()
        .map(store::user_from))
}

async fn reread(tx: &Transaction<'_>, id: &str) -> AuthResult<User> {
    store::user_by_id(tx, id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished while signing in"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_claims_and_github_userinfo_both_name_a_person() {
        let oidc = json!({"sub": "abc", "email": "A@Example.com", "email_verified": true,
            "name": "Ann", "picture": "https://p/x.png"});
        let p = Person::from_claims(oidc.as_object().unwrap(), Some("https://id")).unwrap();
        assert_eq!(p.provider_id, "abc");
        assert_eq!(p.email.as_deref(), Some("a@example.com"));
        assert!(p.email_verified);
        assert_eq!(p.data["iss"], "https://id");
        assert_eq!(p.data["full_name"], "Ann");
        assert_eq!(p.data["avatar_url"], "https://p/x.png");

        let github = json!({"id": 42, "login": "octo", "email": "o@example.com"});
        let p = Person::from_claims(github.as_object().unwrap(), None).unwrap();
        assert_eq!(p.provider_id, "42");
        assert!(!p.email_verified, "no email_verified: not vouched for");
        assert_eq!(p.data["user_name"], "octo");
        assert!(p.data.get("iss").is_none());

        assert!(Person::from_claims(json!({"email": "x@y"}).as_object().unwrap(), None).is_err());

        let listed = p.with_listed_emails(&json!([
            {"email": "other@example.com", "primary": false, "verified": true},
            {"email": "Main@Example.com", "primary": true, "verified": true},
        ]));
        assert_eq!(listed.email.as_deref(), Some("main@example.com"));
        assert!(listed.email_verified);
        assert_eq!(listed.data["email"], "main@example.com");
        let unverified = json!([{"email": "x@example.com", "primary": true, "verified": false}]);
        let kept = Person::from_claims(github.as_object().unwrap(), None)
            .unwrap()
            .with_listed_emails(&unverified);
        assert_eq!(kept.email.as_deref(), Some("o@example.com"));
        assert!(!kept.email_verified);
    }
}
