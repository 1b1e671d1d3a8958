//! Identity linking, GoTrue's manual linking: `GET /user/identities/authorize` starts an OAuth sign-in
//! bound to the signed-in user (the flow's row names them), whose callback links the provider's
//! identity to that user and answers a session as a sign-in does ([`super::oauth`]);
//! `DELETE /user/identities/{identity_id}` unlinks one. Both need a user's token and the project's
//! `security_manual_linking_enabled` (off by default, as GoTrue's
//! `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`); the user's identities are listed by `GET /user`.

use super::account::current_user;
use super::oauth::{redirect, refuse_banned, start};
use super::one_time::send_token;
use super::request::{ok_empty, Ctx};
use super::Auth;
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::mail::MailKind;
use crate::oauth::identity::{self, Linked, Person};
use crate::oauth::state::State as OAuthState;
use crate::store::{self, User};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::Transaction;
use http::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// GoTrue's 404 when the project has not turned manual linking on.
async fn require_manual_linking(tx: &Transaction<'_>) -> AuthResult<()> {
    let on: bool = tx
        .query_one(
            "SELECT security_manual_linking_enabled FROM auth.supactl_settings",
            &[],
        )
        .await?
        .get(0);
    if on {
        Ok(())
    } else {
        Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "manual_linking_disabled",
            "Manual linking is disabled",
        ))
    }
}

/// `GET /user/identities/authorize?provider=…&redirect_to=…&scopes=…[&code_challenge=…]`: the
/// provider's authorization URL for a flow that links to the caller, as `{"url"}` with
/// `skip_http_redirect=true` (what supabase-js and supabase-py ask for), else a redirect to it.
pub(super) async fn authorize(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    ctx.user_id()?;
    let user_id = {
        let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
        let tx = client.transaction().await?;
        let user = current_user(&tx, &ctx).await?;
        require_manual_linking(&tx).await?;
        user.id
    };
    let url = start(&auth, &ctx, &q, Some(&user_id)).await?;
    if q.get("skip_http_redirect").map(String::as_str) == Some("true") {
        return Ok(Json(json!({ "url": url })).into_response());
    }
    redirect(&url, StatusCode::FOUND)
}

/// The callback's side of a linking flow (`state`): links `person`'s identity at the flow's provider
/// to the flow's user, in `tx`. The outer error rolls back; the inner one is answered after
/// committing (an address waiting for its confirmation, mailed, as GoTrue does).
pub(super) async fn link(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &Transaction<'_>,
    state: &OAuthState,
    person: &Person,
    user_id: &str,
) -> AuthResult<AuthResult<User>> {
    let provider = state.provider.as_str();
    let user = store::user_by_id(tx, user_id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    refuse_banned(&user)?;
    let linked = identity::link_to_user(tx, s, provider, person, &user).await?;
    let user = store::user_by_id(tx, user_id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    if let Linked::Unverified = linked {
        if let Some(email) = user.email.clone() {
            let sent = send_token(
                auth,
                ctx,
                s,
                tx,
                &user,
                &email,
                MailKind::Confirmation,
                Some(&state.redirect_to),
                None,
            )
            .await;
            match sent {
                Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => return Err(e),
                Err(e) => tracing::warn!(code = e.code, "linking: confirmation mail not sent"),
                Ok(_) => {}
            }
        }
        return Ok(Err(AuthError::unprocessable(
            "email_not_confirmed",
            format!(
                "Unverified email with {provider}. A confirmation email has been sent to your {provider} email"
            ),
        )));
    }
    Ok(Ok(user))
}

/// `DELETE /user/identities/{identity_id}`: unlinks one of the caller's identities (never the last
/// one); a phone identity takes the phone with it, any other leaves the email to GoTrue's rule
/// ([`identity::email_from_identities`]).
pub(super) async fn unlink(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(identity_id): Path<String>,
) -> AuthResult<Response> {
    ctx.user_id()?;
    let (mut client, s) = ctx.db(&auth).await?;
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    require_manual_linking(&tx).await?;
    if !store::is_uuid(&identity_id) {
        return Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "validation_failed",
            "identity_id must be an UUID",
        ));
    }
    let identities: Vec<(String, String)> = tx
        .query(
            "SELECT id::text, provider FROM auth.identities WHERE user_id = $1::text::uuid FOR UPDATE",
            &[&user.id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if identities.len() <= 1 {
        return Err(AuthError::unprocessable(
            "single_identity_not_deletable",
            "User must have at least 1 identity after unlinking",
        ));
    }
    let (_, provider) = identities
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(&identity_id))
        .ok_or_else(|| AuthError::unprocessable("identity_not_found", "Identity doesn't exist"))?;
    tx.execute(
        "DELETE FROM auth.identities WHERE id = $1::text::uuid",
        &[&identity_id],
    )
    .await?;
    if provider == "phone" {
        tx.execute(
            "UPDATE auth.users SET phone = NULL, phone_confirmed_at = NULL, updated_at = now() \
             WHERE id = $1::text::uuid",
            &[&user.id],
        )
        .await?;
    } else if !identity::email_from_identities(&tx, &user.id, s.mailer_autoconfirm).await? {
        return Err(AuthError::unprocessable(
            "email_conflict_identity_not_deletable",
            "Unable to unlink identity due to email conflict",
        ));
    }
    identity::update_providers(&tx, &user.id).await?;
    tx.commit().await?;
    Ok(ok_empty())
}
