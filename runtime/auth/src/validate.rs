//! Input rules: email normalisation and format, password strength, one-time token hashing.

use crate::error::AuthError;
use sha2::{Digest, Sha224};
use subtle::ConstantTimeEq;

/// Trims and lower-cases an email, then checks its format the way GoTrue does (its RFC 5322 subset:
/// a dot-atom local part and a hostname of LDH labels). Normalised emails are what is stored and
/// compared, so `A@X.io` and `a@x.io ` are one user.
pub fn email(raw: &str) -> Result<String, AuthError> {
    let e = raw.trim().to_lowercase();
    let invalid = || AuthError::validation("Unable to validate email address: invalid format");
    if e.len() > 255 {
        return Err(AuthError::validation(
            "An email address is too long (maximum 255 characters)",
        ));
    }
    let (local, domain) = e.rsplit_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        });
    if local_ok && domain_ok {
        Ok(e)
    } else {
        Err(invalid())
    }
}

/// GoTrue's password rule: a minimum length in characters (configurable per project, at least 6).
pub fn password(p: &str, min_len: usize) -> Result<(), AuthError> {
    if p.chars().count() < min_len {
        return Err(AuthError::weak_password(min_len));
    }
    if p.len() > 72 {
        // bcrypt only reads 72 bytes; GoTrue refuses longer passwords rather than truncating them.
        return Err(AuthError::validation(
            "Password cannot be longer than 72 characters",
        ));
    }
    Ok(())
}

/// The stored form of a one-time token: GoTrue's `hex(sha224(email ‖ otp))`, which is also the
/// `token` of verification links.
pub fn token_hash(email: &str, otp: &str) -> String {
    let mut h = Sha224::new();
    h.update(email.as_bytes());
    h.update(otp.as_bytes());
    hex::encode(h.finalize())
}

/// Constant-time string equality (one-time tokens and their hashes).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        assert_eq!(
            email("a.b+tag@sub.example.io").unwrap(),
            "a.b+tag@sub.example.io"
        );
        for bad in [
            "", "plain", "@x.io", "a@", "a@-x.io", "a@x..io", "a b@x.io", "a@x_y.io",
        ] {
            let e = email(bad).unwrap_err();
            assert_eq!(e.code, "validation_failed", "{bad}");
            assert_eq!(e.status, 400);
        }
    }

    #[test]
    fn password_length() {
        assert!(password("12345", 6).is_err());
        assert!(password("123456", 6).is_ok());
        assert_eq!(password("1234567", 8).unwrap_err().code, "weak_password");
        assert!(password(&"x".repeat(73), 6).is_err());
    }

    #[test]
    fn token_hashes_match_gotrue() {
        // sha224("a@b.io123456"), computed independently with Python's hashlib.
        assert_eq!(
            token_hash("a@b.io", "123456"),
            "237b3b4af57f0388b409b0dd39a0670afc6061beec21ea1887c80780"
        );
        assert_eq!(token_hash("a@b.io", "123456").len(), 56);
        assert_ne!(
            token_hash("a@b.io", "123456"),
            token_hash("a@b.io", "123457")
        );
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
