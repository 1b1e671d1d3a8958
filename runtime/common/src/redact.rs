//! What hand-written `Debug` impls of secret-bearing types print in place of a secret, so that a
//! `{:?}` in a log line or a panic message never carries a key, token, password or JWT secret.

use std::fmt;

/// Prints `<redacted>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An optional secret: whether it is set (`Some(<redacted>)`), never its value.
pub fn optional<T>(secret: &Option<T>) -> Option<Redacted> {
    secret.as_ref().map(|_| Redacted)
}

/// A list of secrets: how many, never their values (`[<redacted>; 2]`).
pub struct Many(pub usize);

impl fmt::Debug for Many {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[<redacted>; {}]", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(format!("{Redacted:?}"), "<redacted>");
        assert_eq!(format!("{:?}", optional(&Some("pw"))), "Some(<redacted>)");
        assert_eq!(format!("{:?}", optional::<String>(&None)), "None");
        assert_eq!(format!("{:?}", Many(2)), "[<redacted>; 2]");
    }

    #[test]
    fn directory_config_hides_the_service_token() {
        let c = crate::directory::DirectoryConfig {
            url: "http://127.0.0.1:1".into(),
            service_token: "service-token-0123456789".into(),
            ttl: std::time::Duration::from_secs(1),
            stale_for: std::time::Duration::from_secs(300),
        };
        for text in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!text.contains("service-token-0123456789"), "{text}");
            assert!(text.contains("http://127.0.0.1:1"), "{text}");
        }
    }
}
