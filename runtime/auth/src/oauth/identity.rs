//! Who a provider says the user is (from a verified ID token's claims or its userinfo answer), and the
//! auth user that person signs in as, by GoTrue's rules: the user already holding this provider
//! identity; else the user with the same email when the provider vouches for it (the identity is
//! linked to them); else a new user, unless sign-ups are off. A provider's unverified email never
//! takes over an existing account. Manual linking ([`link_to_user`]) adds an identity to a signed-in
//! user instead, and [`email_from_identities`] keeps a user's email in step with their identities.

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

/// What linking an identity to a user did (GoTrue's manual linking).
pub enum Linked {
    /// The identity is the user's.
    Done,
    /// The identity is the user's, and its address, which its provider does not vouch for, became the
    /// user's email: GoTrue mails a confirmation and answers `email_not_confirmed`.
    Unverified,
}

/// Links `person`'s identity at `provider` to `user` (signed in when the flow started), by GoTrue's
/// rules: an identity already held, by this user or another, is `identity_already_exists`; a user
/// without an email takes the one of their identities ([`email_from_identities`]) and, when the
/// provider vouches for it, is confirmed and stops being anonymous.
pub async fn link_to_user(
    tx: &Transaction<'_>,
    settings: &Settings,
    provider: &str,
    person: &Person,
    user: &User,
) -> AuthResult<Linked> {
    let holder = tx
        .query_opt(
            "SELECT user_id::text FROM auth.identities WHERE provider = $1 AND provider_id = $2",
            &[&provider, &person.provider_id],
        )
        .await?;
    let already = |msg: &str| AuthError::unprocessable("identity_already_exists", msg);
    match holder.map(|r| r.get::<_, String>(0)) {
        Some(id) if id == user.id => return Err(already("Identity is already linked")),
        Some(_) => return Err(already("Identity is already linked to another user")),
        None => {}
    }
    let inserted = tx
        .execute(
            "INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, \
               created_at, updated_at) VALUES ($1, $2::text::uuid, $3::jsonb, $4, now(), now(), now()) \
             ON CONFLICT (provider_id, provider) DO NOTHING",
            &[&person.provider_id, &user.id, &person.data, &provider],
        )
        .await?;
    if inserted == 0 {
        return Err(already("Identity is already linked to another user"));
    }
    let mut outcome = Linked::Done;
    if user.email.is_none() {
        if !email_from_identities(tx, &user.id, settings.mailer_autoconfirm).await? {
            return Err(AuthError::bad_request(
                "email_exists",
                "A user with this email address has already been registered",
            ));
        }
        if person.email_verified {
            tx.execute(
                "UPDATE auth.users SET email_confirmed_at = now(), confirmation_token = '', \
                   is_anonymous = false, updated_at = now(), \
                   raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || '{\"email_verified\": true}'::jsonb \
                 WHERE id = $1::text::uuid",
                &[&user.id],
            )
            .await?;
        } else {
            outcome = Linked::Unverified;
        }
    }
    update_providers(tx, &user.id).await?;
    Ok(outcome)
}

/// GoTrue's rule for a user's email once their identities changed: kept while one of them has that
/// address; else the address of the first identity, by rank (its provider verified it, then
/// unverified, then none; oldest first), that no other user has, with every pending token dropped,
/// and unconfirmed unless verified by its provider or the project autoconfirms. False when every
/// such address belongs to another user (nothing changed).
pub async fn email_from_identities(
    tx: &Transaction<'_>,
    user_id: &str,
    autoconfirm: bool,
) -> AuthResult<bool> {
    let rows = tx
        .query(
            "SELECT coalesce(lower(u.email), ''), coalesce(i.email, ''), \
               coalesce(i.identity_data ->> 'email_verified', '') = 'true' \
             FROM auth.users u JOIN auth.identities i ON i.user_id = u.id WHERE u.id = $1::text::uuid \
             ORDER BY CASE WHEN coalesce(i.email, '') = '' THEN 2 \
               WHEN i.identity_data ->> 'email_verified' = 'true' THEN 0 ELSE 1 END, i.created_at, i.id::text",
            &[&user_id],
        )
        .await?;
    if rows
        .iter()
        .any(|r| r.get::<_, String>(0) == r.get::<_, String>(1))
    {
        return Ok(true);
    }
    for r in &rows {
        let (email, verified): (String, bool) = (r.get(1), r.get(2));
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM auth.users WHERE lower(email) = $1 AND NOT is_sso_user \
                   AND id <> $2::text::uuid)",
                &[&email, &user_id],
            )
            .await?
            .get(0);
        if taken {
            continue;
        }
        let unconfirm = email.is_empty() || (!verified && !autoconfirm);
        tx.execute(
            "UPDATE auth.users SET email = nullif($2, ''), confirmation_token = '', confirmation_sent_at = NULL, \
               recovery_token = '', recovery_sent_at = NULL, email_change = '', email_change_token_current = '', \
               email_change_token_new = '', email_change_sent_at = NULL, email_change_confirm_status = 0, \
               phone_change = '', phone_change_token = '', phone_change_sent_at = NULL, \
               reauthentication_token = '', reauthentication_sent_at = NULL, updated_at = now(), \
               email_confirmed_at = CASE WHEN $3 THEN NULL ELSE email_confirmed_at END, \
               raw_user_meta_data = CASE WHEN $3 \
                 THEN coalesce(raw_user_meta_data, '{}'::jsonb) || '{\"email_verified\": false}'::jsonb \
                 ELSE raw_user_meta_data END \
             WHERE id = $1::text::uuid",
            &[&user_id, &email, &unconfirm],
        )
        .await?;
        tx.execute(
            "DELETE FROM auth.one_time_tokens WHERE user_id = $1::text::uuid",
            &[&user_id],
        )
        .await?;
        return Ok(true);
    }
    Ok(false)
}

/// `app_metadata.providers` from the user's identities (oldest first) and `provider` the first of
/// them, as GoTrue keeps them.
pub async fn update_providers(tx: &Transaction<'_>, user_id: &str) -> AuthResult<()> {
    tx.execute(
        "UPDATE auth.users u SET updated_at = now(), raw_app_meta_data = coalesce(u.raw_app_meta_data, '{}'::jsonb) \
           || jsonb_build_object('providers', p.list) \
           || CASE WHEN jsonb_array_length(p.list) > 0 THEN jsonb_build_object('provider', p.list -> 0) \
                ELSE '{}'::jsonb END \
         FROM (SELECT coalesce(jsonb_agg(provider ORDER BY since), '[]'::jsonb) AS list FROM \
           (SELECT provider, min(created_at) AS since FROM auth.identities \
            WHERE user_id = $1::text::uuid GROUP BY provider) x) p \
         WHERE u.id = $1::text::uuid",
        &[&user_id],
    )
    .await?;
    Ok(())
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
