//! Outgoing mail: confirmation, invite, magic-link, recovery, email-change and reauthentication messages through the project's
//! SMTP server. Without one, the service logs that no mailer is configured (never the link or the code)
//! and answers the client as GoTrue does after sending.

use crate::db::{Settings, Smtp};
use crate::error::{AuthError, AuthResult};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Confirmation,
    Invite,
    MagicLink,
    Recovery,
    /// To the new address of an email change.
    EmailChange,
    /// To the current address of an email change.
    EmailChangeCurrent,
    /// The nonce a password change may require (`/reauthenticate`): a code only.
    Reauthentication,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Confirmation => "confirmation",
            MailKind::Invite => "invite",
            MailKind::MagicLink => "magic link",
            MailKind::Recovery => "recovery",
            MailKind::EmailChange | MailKind::EmailChangeCurrent => "email change",
            MailKind::Reauthentication => "reauthentication",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            MailKind::Confirmation => "Confirm Your Signup",
            MailKind::Invite => "You have been invited",
            MailKind::MagicLink => "Your Magic Link",
            MailKind::Recovery => "Reset Your Password",
            MailKind::EmailChange => "Confirm Email Change",
            // GoTrue's subject of the current address's message.
            MailKind::EmailChangeCurrent => "Confirm Email Address",
            MailKind::Reauthentication => "Confirm reauthentication",
        }
    }

    fn action(self) -> &'static str {
        match self {
            MailKind::Confirmation => "confirm your user",
            MailKind::Invite => "accept the invite",
            MailKind::MagicLink => "log in",
            MailKind::Recovery => "reset the password",
            MailKind::EmailChange | MailKind::EmailChangeCurrent => {
                "confirm the update of your email"
            }
            MailKind::Reauthentication => "confirm the reauthentication",
        }
    }
}

/// The message body: GoTrue's default templates, in plain text, with both the link and the code.
pub fn body(kind: MailKind, link: &str, otp: &str) -> String {
    if kind == MailKind::Reauthentication {
        return format!("Enter the code: {otp}\n");
    }
    format!(
        "Follow this link to {}:\n\n{link}\n\nAlternatively, enter the code: {otp}\n",
        kind.action()
    )
}

/// Sends one message, or logs that the project has no mailer.
pub async fn deliver(
    project_ref: &str,
    settings: &Settings,
    to: &str,
    kind: MailKind,
    link: &str,
    otp: &str,
) -> AuthResult<()> {
    let Some(smtp) = &settings.smtp else {
        tracing::warn!(
            project = project_ref,
            kind = kind.as_str(),
            "no mailer configured for the project (auth.supactl_settings.smtp_host is null): email not sent"
        );
        return Ok(());
    };
    send(smtp, to, kind, &body(kind, link, otp))
        .await
        .map_err(|e| {
            tracing::error!(project = project_ref, kind = kind.as_str(), error = %e, "sending email failed");
            AuthError::internal(format!("Error sending {} email", kind.as_str()))
        })
}

async fn send(smtp: &Smtp, to: &str, kind: MailKind, text: &str) -> Result<(), String> {
    let from = Mailbox::new(
        smtp.sender_name.clone(),
        smtp.admin_email
            .parse()
            .map_err(|e| format!("sender: {e}"))?,
    );
    let msg = Message::builder()
        .from(from)
        .to(to.parse().map_err(|e| format!("recipient: {e}"))?)
        .subject(kind.subject())
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_string())
        .map_err(|e| e.to_string())?;
    let builder = match smtp.tls.as_str() {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
    }
    .map_err(|e| e.to_string())?;
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(10)));
    if let (Some(u), Some(p)) = (&smtp.user, &smtp.pass) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    builder
        .build()
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
