//! Text messages to users' phones, sent the one way this platform has: the project's Send SMS hook
//! ([`crate::hook`], Supabase Auth's `send_sms`). The service makes the one-time code and the hook
//! delivers it (Twilio, a regional provider, WhatsApp, …): it is POSTed
//! `{"metadata": {uuid, time, name: "send-sms", ip_address}, "user": <the user>, "sms": {"otp", "phone",
//! "sms_type"?}}`. Phone numbers follow GoTrue's rule ([`phone`]). Codes are never logged; only their
//! hash is stored ([`crate::validate::token_hash`] of the number and the code).

use crate::error::{AuthError, AuthResult};
use crate::hook::Dispatcher;
use deadpool_postgres::Transaction;
use rand::Rng;
use serde_json::{json, Value};
use supactl_common::wire::ProjectConfig;

/// GoTrue's `validatePhone`: a leading `+` and every space dropped, then E.164's digits (a non-zero
/// first digit, 2 to 15 digits). The result is how numbers are stored and compared.
pub fn phone(raw: &str) -> AuthResult<String> {
    let p = format(raw);
    let b = p.as_bytes();
    if (2..=15).contains(&b.len()) && b[0] != b'0' && b.iter().all(u8::is_ascii_digit) {
        Ok(p)
    } else {
        Err(AuthError::validation(
            "Invalid phone number format (E.164 required)",
        ))
    }
}

/// GoTrue's `formatPhoneNumber`: without a leading `+` and without spaces (no other check, as the
/// password grant looks numbers up).
pub fn format(raw: &str) -> String {
    raw.strip_prefix('+').unwrap_or(raw).replace(' ', "")
}

/// A one-time code of `digits` decimal digits, each uniform (the OS's generator).
pub fn code(digits: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..digits.clamp(6, 10))
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// What a message is for: `Otp` codes sign in, confirm or change a number; `Mfa` answers a phone
/// factor's challenge (GoTrue's `sms_type: "mfa"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Otp,
    Mfa,
}

/// No hook, no way to send: GoTrue's answer when it has no SMS provider, with the fix in the log.
fn no_sender(project_ref: &str) -> AuthError {
    tracing::error!(
        project = project_ref,
        "the project has no enabled send_sms hook: set one with PUT /admin/v1/projects/{project_ref}/auth/hooks/send_sms"
    );
    AuthError::new(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "unexpected_failure",
        "Unable to get SMS provider",
    )
}

/// Sends `otp` to `to` through the project's hook, for `user` (its JSON as the API shows it).
#[allow(clippy::too_many_arguments)]
pub async fn send(
    dispatcher: &Dispatcher,
    project: &ProjectConfig,
    tx: &Transaction<'_>,
    ip: Option<&str>,
    user: &Value,
    to: &str,
    otp: &str,
    purpose: Purpose,
) -> AuthResult<()> {
    let hook = crate::hook::load(tx, project, "send_sms")
        .await?
        .filter(|h| h.enabled)
        .ok_or_else(|| no_sender(&project.project_ref))?;
    let metadata: Value = tx
        .query_one(
            "SELECT jsonb_build_object('uuid', gen_random_uuid(), 'time', now(), 'name', 'send-sms', \
             'ip_address', coalesce($1, ''))",
            &[&ip],
        )
        .await?
        .get(0);
    let mut sms = json!({"otp": otp, "phone": to});
    if purpose == Purpose::Mfa {
        sms["sms_type"] = json!("mfa");
    }
    let payload = json!({"metadata": metadata, "user": user, "sms": sms});
    dispatcher.call(&hook, &payload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_as_gotrue() {
        assert_eq!(phone("+1 555 010 9999").unwrap(), "15550109999");
        assert_eq!(phone("4915123456789").unwrap(), "4915123456789");
        assert_eq!(phone("+44 7700 900123").unwrap(), "447700900123");
        for bad in [
            "",
            "+",
            "0123456",
            "1",
            "1234567890123456",
            "+1-555-0100",
            "++15550100",
            "1555O100",
        ] {
            let e = phone(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "validation_failed"),
                "{bad}"
            );
            assert_eq!(e.msg, "Invalid phone number format (E.164 required)");
        }
        assert_eq!(format("+1 555"), "1555");
    }

    #[test]
    fn codes_are_digits_of_the_asked_length() {
        for n in [6, 8, 10] {
            let c = code(n);
            assert_eq!(c.len(), n);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(code(3).len(), 6, "GoTrue's minimum");
        assert_ne!(code(10), code(10));
    }
}
