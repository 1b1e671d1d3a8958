//! Email changes as GoTrue makes them. `PUT /user {email}` (and `/resend`) mails a confirmation to the
//! new address and, with secure email change (`mailer_secure_email_change_enabled`, GoTrue's
//! `MAILER_SECURE_EMAIL_CHANGE_ENABLED`, on by default), one to the current address too; `/verify` of
//! either token then counts as the first of two confirmations (`email_change_confirm_status` 0 → 1,
//! answered with GoTrue's message asking for the other) and the other token completes the change
//! (the status back to 0, as GoTrue's `ConfirmEmailChange`). Without secure email change the new
//! address's token completes it at once.

use super::one_time::{check_frequency, mail_token, start_flow};
use super::pkce::Challenge;
use super::request::{email_exists, Ctx};
use super::Auth;
use crate::db::Settings;
use crate::error::AuthResult;
use crate::mail::MailKind;
use crate::store::{self, TokenColumn};
use deadpool_postgres::Transaction;

/// GoTrue's answer to the first of two confirmations (`singleConfirmationAccepted`).
pub(super) const ONE_OF_TWO: &str =
    "Confirmation link accepted. Please proceed to confirm link sent to the other email";

/// Records `new_email` as the user's pending address, no confirmation received yet.
pub(super) async fn pend(tx: &Transaction<'_>, user_id: &str, new_email: &str) -> AuthResult<()> {
    store::set_email_change(tx, user_id, new_email).await?;
    set_status(tx, user_id, 0).await
}

/// Starts (or restarts) the change of `user`'s address to `new_email`: a token to the new address
/// and, with secure email change and a current address, one to the current address, both in the
/// client's PKCE flow if it sent a challenge. One send interval covers the pair, as in GoTrue.
#[allow(clippy::too_many_arguments)]
pub(super) async fn request(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &Transaction<'_>,
    user: &store::User,
    new_email: &str,
    redirect_to: Option<&str>,
    pkce: Option<&Challenge>,
) -> AuthResult<()> {
    check_frequency(s, tx, &user.id, TokenColumn::EmailChange).await?;
    pend(tx, &user.id, new_email).await?;
    let prefixed = start_flow(s, tx, &user.id, MailKind::EmailChange, pkce).await?;
    let (id, new) = (&user.id, MailKind::EmailChange);
    mail_token(auth, ctx, s, tx, id, new_email, new, redirect_to, prefixed).await?;
    match user.email.as_deref().filter(|_| s.secure_email_change) {
        Some(current) => {
            let kind = MailKind::EmailChangeCurrent;
            mail_token(auth, ctx, s, tx, id, current, kind, redirect_to, prefixed).await?;
        }
        // A token of an earlier request must not confirm this one.
        None => store::clear_token(tx, id, TokenColumn::EmailChangeCurrent).await?,
    }
    Ok(())
}

/// What a verified email-change token did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Confirmed {
    /// Recorded the first of the two confirmations; the change waits for the other.
    OneOfTwo,
    /// Moved the user to the new address.
    Changed,
}

/// Spends a verified email-change token of `column`. As GoTrue's `emailChangeVerify`, with secure
/// email change on (and emails not autoconfirmed) the first confirmation of a user with an address
/// is only recorded; any other completes the change. Unlike GoTrue, a change whose other token was
/// never issued (an admin link for one address, the setting turned on midway) completes rather than
/// waiting for a confirmation that cannot come.
pub(super) async fn confirm(
    tx: &Transaction<'_>,
    s: &Settings,
    user: &store::User,
    column: TokenColumn,
) -> AuthResult<Confirmed> {
    // Locked: two confirmations at once must not both count as the first.
    let row = tx
        .query_one(
            "SELECT email_change_confirm_status, coalesce(email_change_token_current, ''), \
               coalesce(email_change_token_new, ''), coalesce(email_change, '') \
             FROM auth.users WHERE id = $1::text::uuid FOR UPDATE",
            &[&user.id],
        )
        .await?;
    let status: i16 = row.get(0);
    let other: String = match column {
        TokenColumn::EmailChangeCurrent => row.get(2),
        _ => row.get(1),
    };
    let first = s.secure_email_change
        && !s.mailer_autoconfirm
        && status == 0
        && user.email.is_some()
        && !other.is_empty();
    if first {
        store::clear_token(tx, &user.id, column).await?;
        set_status(tx, &user.id, 1).await?;
        return Ok(Confirmed::OneOfTwo);
    }
    store::clear_token(tx, &user.id, TokenColumn::EmailChange).await?;
    store::clear_token(tx, &user.id, TokenColumn::EmailChangeCurrent).await?;
    let new_email: String = row.get(3);
    if new_email.is_empty() || !store::set_email(tx, &user.id, &new_email).await? {
        return Err(email_exists());
    }
    set_status(tx, &user.id, 0).await?;
    store::confirm_email(tx, &user.id).await?;
    Ok(Confirmed::Changed)
}

async fn set_status(tx: &Transaction<'_>, user_id: &str, status: i16) -> AuthResult<()> {
    tx.execute(
        "UPDATE auth.users SET email_change_confirm_status = $2 WHERE id = $1::text::uuid",
        &[&user_id, &status],
    )
    .await?;
    Ok(())
}
