//! Sign-in with an OAuth/OIDC provider, GoTrue's routes: `GET /authorize` sends the browser to the
//! provider (a signed `state`, a nonce, PKCE towards the provider), `GET /callback` (or `POST`, a form
//! as Apple's `form_post` sends it) exchanges the provider's code, learns who the user is (a verified ID token, or the userinfo endpoint) and sends
//! the browser back to `redirect_to` with the session in the fragment (implicit flow) or an auth code in
//! the query (PKCE: the client had sent a `code_challenge`), which `POST /token?grant_type=pkce`
//! exchanges with its `code_verifier` ([`super::pkce`], shared with the email links). `POST /token?grant_type=id_token` signs in with an ID token the
//! client got from the provider itself. A flow started by `GET /user/identities/authorize` links the
//! identity to the signed-in user instead ([`super::link`]). The protocol pieces live in
//! [`crate::oauth`].

use super::pkce::{create_flow, AUTH_CODE_SECS};
use super::request::{body, Ctx};
use super::{Auth, URL_VALUE};
use crate::error::{AuthError, AuthResult};
use crate::oauth::id_token::{self, Expected, Nonce};
use crate::oauth::identity::{self, Person};
use crate::oauth::provider::{self, provider_error, Endpoints, Provider};
use crate::oauth::state::{State as OAuthState, STATE_SECS};
use crate::store::User;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use supactl_common::jwt;
use supactl_common::keys::random_base62;

fn enc(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, URL_VALUE).to_string()
}

pub(super) fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `url` with `query` appended to its query string (before any fragment).
pub(super) fn with_query(url: &str, query: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{base}{sep}{query}#{f}"),
        None => format!("{base}{sep}{query}"),
    }
}

pub(super) fn redirect(location: &str, status: StatusCode) -> AuthResult<Response> {
    let mut res = status.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(AuthError::internal)?,
    );
    Ok(res)
}

/// The scopes asked of the provider: its defaults, the project's extra ones and the client's.
fn scopes(endpoints: &Endpoints, provider: &Provider, requested: Option<&String>) -> String {
    let mut all: Vec<&str> = Vec::new();
    for s in [endpoints.scopes, provider.scopes.as_str()]
        .into_iter()
        .chain(requested.map(String::as_str))
        .flat_map(|s| s.split([' ', ',']))
    {
        if !s.is_empty() && !all.contains(&s) && all.len() < 32 {
            all.push(s);
        }
    }
    all.join(" ")
}

pub(super) async fn authorize(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let url = start(&auth, &ctx, &q, None).await?;
    redirect(&url, StatusCode::FOUND)
}

/// Records a sign-in flow and answers the provider's authorization URL for it. With `link_user`, the
/// callback links the provider's identity to that (signed-in) user instead of signing in
/// (`GET /user/identities/authorize`, [`super::link`]).
pub(super) async fn start(
    auth: &Auth,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    link_user: Option<&str>,
) -> AuthResult<String> {
    let name = q
        .get("provider")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuthError::validation("Unsupported provider: missing provider"))?;
    let pkce = super::pkce::params(
        q.get("code_challenge").map(String::as_str),
        q.get("code_challenge_method").map(String::as_str),
    )?;
    let (mut client, s) = ctx.db(auth).await?;
    ctx.limit(auth, &s, "signin", s.limit_sign_in, None)?;
    let provider = provider::enabled(&client, &ctx.project, name).await?;
    let endpoints = provider
        .endpoints(&auth.oauth.fetcher, &auth.oauth.discovery)
        .await?;
    let redirect_to = s.redirect(q.get("redirect_to").map(String::as_str));
    let (nonce, verifier) = (random_base62(32), random_base62(64));
    let tx = client.transaction().await?;
    // Flows abandoned at the provider, and PKCE codes never exchanged, expire here.
    tx.execute(
        "DELETE FROM auth.supactl_oauth_flows WHERE created_at < now() - make_interval(secs => $1)",
        &[&(STATE_SECS as f64)],
    )
    .await?;
    let flow_state = match &pkce {
        Some(c) => {
            let ttl = STATE_SECS + AUTH_CODE_SECS;
            Some(create_flow(&tx, None, name, "oauth", c, ttl).await?)
        }
        None => None,
    };
    let flow: String = tx
        .query_one(
            "INSERT INTO auth.supactl_oauth_flows (id, provider, nonce, provider_code_verifier, redirect_to, \
               flow_state_id, link_user_id) \
             VALUES (gen_random_uuid(), $1, $2, $3, $4, $5::text::uuid, $6::text::uuid) RETURNING id::text",
            &[name, &nonce, &verifier, &redirect_to, &flow_state, &link_user],
        )
        .await?
        .get(0);
    tx.commit().await?;
    let state = OAuthState {
        flow,
        project_ref: ctx.project_ref().to_string(),
        provider: name.clone(),
        redirect_to,
        pkce: pkce.is_some(),
        expires_at: jwt::now() + STATE_SECS,
    }
    .sign(&ctx.project.data_key);
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    let callback = callback_url(auth, ctx);
    let scope = scopes(&endpoints, &provider, q.get("scopes"));
    let mut params = vec![
        ("client_id", provider.client_id.as_str()),
        ("redirect_uri", callback.as_str()),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if endpoints.issuer.is_some() {
        params.push(("nonce", nonce.as_str()));
    }
    // Apple posts its answer to the callback as a form (GoTrue asks it to).
    if provider.name == "apple" {
        params.push(("response_mode", "form_post"));
    }
    Ok(with_query(&endpoints.authorization, &query_string(&params)))
}

fn callback_url(auth: &Auth, ctx: &Ctx) -> String {
    format!("{}/auth/v1/callback", auth.api_url(ctx.project_ref()))
}

/// What a completed callback sends back.
enum Finished {
    /// PKCE: the auth code for `grant_type=pkce`.
    Code(String),
    /// Implicit: the session and the provider's tokens.
    Session(Value),
}

/// Longest form body `POST /callback` reads (Apple's: a code, the state, an ID token and the user's name).
pub(super) const CALLBACK_BODY_LIMIT: usize = 16 * 1024;
/// Most form fields read from that body.
const MAX_FORM_FIELDS: usize = 16;

/// `GET /callback`: the provider's answer in the query.
pub(super) async fn callback(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    complete(&auth, &ctx, &q).await
}

/// `POST /callback`: the provider's answer as an `application/x-www-form-urlencoded` body
/// (`response_mode=form_post`, as Apple answers); its fields win over the query's, as Go's
/// `FormValue` reads them in GoTrue.
pub(super) async fn callback_form(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(mut q): Query<HashMap<String, String>>,
    raw: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> AuthResult<Response> {
    let raw = raw.map_err(|_| {
        AuthError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        )
    })?;
    q.extend(form_fields(&raw));
    complete(&auth, &ctx, &q).await
}

/// The fields of a form body (the first of a repeated name; at most [`MAX_FORM_FIELDS`]).
fn form_fields(raw: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut out = HashMap::new();
    let text = String::from_utf8_lossy(raw);
    for pair in text
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_FORM_FIELDS)
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(decode(k)).or_insert_with(|| decode(v));
    }
    out
}

async fn complete(auth: &Auth, ctx: &Ctx, q: &HashMap<String, String>) -> AuthResult<Response> {
    let text = q.get("state").map(String::as_str).unwrap_or_default();
    let state = OAuthState::verify(text, &ctx.project.data_key, ctx.project_ref(), jwt::now())
        .map_err(|e| AuthError::bad_request("bad_oauth_state", e.to_string()))?;
    match finish(auth, ctx, &state, q).await {
        Ok(Finished::Code(code)) => redirect(
            &with_query(
                &state.redirect_to,
                &query_string(&[("code", code.as_str())]),
            ),
            StatusCode::FOUND,
        ),
        Ok(Finished::Session(session)) => {
            let field = |k: &str| match &session[k] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let pairs: Vec<(&str, String)> = [
                "access_token",
                "expires_at",
                "expires_in",
                "provider_refresh_token",
                "provider_token",
                "refresh_token",
                "token_type",
            ]
            .into_iter()
            .filter_map(|k| field(k).map(|v| (k, v)))
            .collect();
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let base = state.redirect_to.split('#').next().unwrap_or_default();
            redirect(
                &format!("{base}#{}", query_string(&pairs)),
                StatusCode::FOUND,
            )
        }
        Err(e) => {
            let error = if e.status.is_server_error() {
                "server_error"
            } else {
                "invalid_request"
            };
            let q = query_string(&[
                ("error", error),
                ("error_code", e.code),
                ("error_description", e.msg.as_str()),
            ]);
            let location = if state.pkce {
                with_query(&state.redirect_to, &q)
            } else {
                format!(
                    "{}#{q}",
                    state.redirect_to.split('#').next().unwrap_or_default()
                )
            };
            redirect(&location, StatusCode::FOUND)
        }
    }
}

async fn finish(
    auth: &Auth,
    ctx: &Ctx,
    state: &OAuthState,
    q: &HashMap<String, String>,
) -> AuthResult<Finished> {
    let (client, s) = ctx.db(auth).await?;
    // Consumed first: a replayed state finds nothing, whatever happened to the first attempt.
    let flow = client
        .query_opt(
            "DELETE FROM auth.supactl_oauth_flows WHERE id = $1::text::uuid AND provider = $2 \
             RETURNING nonce, provider_code_verifier, flow_state_id::text, link_user_id::text",
            &[&state.flow, &state.provider],
        )
        .await?
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::NOT_FOUND,
                "flow_state_not_found",
                "Flow state not found",
            )
        })?;
    let (nonce, verifier, flow_state): (String, String, Option<String>) =
        (flow.get(0), flow.get(1), flow.get(2));
    let link_user: Option<String> = flow.get(3);
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map_or("", String::as_str);
        return Err(AuthError::forbidden(
            "bad_oauth_callback",
            format!("{error}: {description}"),
        ));
    }
    let code = q.get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        AuthError::bad_request(
            "bad_oauth_callback",
            "OAuth callback with missing authorization code",
        )
    })?;
    let provider = provider::enabled(&client, &ctx.project, &state.provider).await?;
    // The connection goes back to the pool while the provider answers.
    drop(client);
    let endpoints = provider
        .endpoints(&auth.oauth.fetcher, &auth.oauth.discovery)
        .await?;
    let callback = callback_url(auth, ctx);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let basic = match &provider.client_secret {
        Some(secret) => Some((provider.client_id.as_str(), secret.as_str())),
        None => {
            form.push(("client_id", provider.client_id.as_str()));
            None
        }
    };
    let tokens = auth
        .oauth
        .fetcher
        .post_form(&endpoints.token, &form, basic)
        .await
        .map_err(|e| provider_error(format!("code exchange with {}: {e}", provider.name)))?;
    let access_token = tokens["access_token"].as_str().unwrap_or_default();
    let person = person(auth, &provider, &endpoints, &tokens, &nonce).await?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = match &link_user {
        None => identity::sign_in_user(&tx, &s, &provider.name, &person).await?,
        Some(id) => {
            let linked = super::link::link(auth, ctx, &s, &tx, state, &person, id);
            match linked.await? {
                Ok(user) => user,
                // Linked, but the address it gave the user waits for confirmation (mailed).
                Err(e) => {
                    tx.commit().await?;
                    return Err(e);
                }
            }
        }
    };
    refuse_banned(&user)?;
    let refresh = tokens["refresh_token"].as_str();
    let done = match flow_state {
        Some(id) => Finished::Code(
            tx.query_one(
                "UPDATE auth.flow_state SET user_id = $2::text::uuid, auth_code_issued_at = now(), \
                   provider_access_token = $3, provider_refresh_token = $4, updated_at = now() \
                 WHERE id = $1::text::uuid RETURNING auth_code",
                &[&id, &user.id, &access_token, &refresh],
            )
            .await?
            .get(0),
        ),
        None => {
            let mut session = ctx.start_session(auth, &s, &tx, &user.id, "oauth").await?;
            session["provider_token"] = Value::from(access_token);
            if let Some(r) = refresh {
                session["provider_refresh_token"] = Value::from(r);
            }
            Finished::Session(session)
        }
    };
    tx.commit().await?;
    Ok(done)
}

/// Who signed in at the provider: from the ID token of the code exchange (OIDC), else from the
/// userinfo endpoint with the access token.
async fn person(
    auth: &Auth,
    provider: &Provider,
    endpoints: &Endpoints,
    tokens: &Value,
    nonce: &str,
) -> AuthResult<Person> {
    let id_token = tokens["id_token"].as_str();
    if let (Some(issuer), Some(jwks), Some(token)) =
        (&endpoints.issuer, &endpoints.jwks_uri, id_token)
    {
        let expected = Expected {
            issuer,
            client_id: &provider.client_id,
            nonce: Nonce::Sent(nonce),
        };
        let claims = id_token::verify(&auth.oauth, jwks, token, expected).await?;
        return Person::from_claims(&claims, Some(issuer.as_str()));
    }
    let (Some(userinfo), Some(access)) = (&endpoints.userinfo, tokens["access_token"].as_str())
    else {
        return Err(provider_error(format!(
            "{} answered neither an ID token nor an access token for its userinfo",
            provider.name
        )));
    };
    let info = auth
        .oauth
        .fetcher
        .get_json(userinfo, Some(access))
        .await
        .map_err(|e| provider_error(format!("userinfo of {}: {e}", provider.name)))?;
    let claims = info
        .as_object()
        .ok_or_else(|| provider_error("userinfo is not a JSON object"))?;
    let person = Person::from_claims(claims, endpoints.issuer.as_deref())?;
    match &endpoints.emails {
        Some(url) if !person.email_verified => {
            let list = auth
                .oauth
                .fetcher
                .get_json(url, Some(access))
                .await
                .map_err(|e| provider_error(format!("emails of {}: {e}", provider.name)))?;
            Ok(person.with_listed_emails(&list))
        }
        _ => Ok(person),
    }
}

pub(super) fn refuse_banned(user: &User) -> AuthResult<()> {
    if user.banned {
        return Err(AuthError::bad_request("user_banned", "User is banned"));
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdTokenGrant {
    provider: Option<String>,
    id_token: Option<String>,
    nonce: Option<String>,
}

/// `POST /token?grant_type=id_token` `{provider, id_token, nonce?}`: a session for the user an ID token
/// of the project's provider names (issuer, audience, signature and expiry checked).
pub(super) async fn id_token_grant(auth: &Auth, ctx: &Ctx, raw: &Bytes) -> AuthResult<Response> {
    let g: IdTokenGrant = body(raw)?;
    let token = g
        .id_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::validation("id_token required"))?;
    let name = g
        .provider
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuthError::validation("provider required"))?;
    let (client, s) = ctx.db(auth).await?;
    ctx.limit(auth, &s, "signin", s.limit_sign_in, None)?;
    let provider = provider::enabled(&client, &ctx.project, &name).await?;
    drop(client);
    let endpoints = provider
        .endpoints(&auth.oauth.fetcher, &auth.oauth.discovery)
        .await?;
    let (Some(issuer), Some(jwks)) = (&endpoints.issuer, &endpoints.jwks_uri) else {
        return Err(AuthError::validation(format!(
            "provider {name} does not issue ID tokens"
        )));
    };
    let expected = Expected {
        issuer,
        client_id: &provider.client_id,
        nonce: Nonce::Given(g.nonce.as_deref().filter(|n| !n.is_empty())),
    };
    let claims = id_token::verify(&auth.oauth, jwks, &token, expected).await?;
    let person = Person::from_claims(&claims, Some(issuer.as_str()))?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = identity::sign_in_user(&tx, &s, &provider.name, &person).await?;
    refuse_banned(&user)?;
    let session = ctx.start_session(auth, &s, &tx, &user.id, "oauth").await?;
    tx.commit().await?;
    Ok(Json(session).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_decoded_and_bounded() {
        let f = form_fields(b"code=a%2Fb+c&state=s.t&state=other&user=%7B%22x%22%3A1%7D&flag");
        assert_eq!(f["code"], "a/b c");
        assert_eq!(f["state"], "s.t", "the first of a repeated field");
        assert_eq!(f["user"], r#"{"x":1}"#);
        assert_eq!(f["flag"], "");
        let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            form_fields(many.join("&").as_bytes()).len(),
            MAX_FORM_FIELDS
        );
    }

    #[test]
    fn queries_are_appended_before_the_fragment() {
        assert_eq!(with_query("http://a/cb", "code=1"), "http://a/cb?code=1");
        assert_eq!(
            with_query("http://a/cb?x=y#f", "code=1"),
            "http://a/cb?x=y&code=1#f"
        );
    }
}
