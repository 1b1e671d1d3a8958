//! Opaque API keys: `sb_publishable_` / `sb_secret_` followed by 32 base62 characters from the OS CSPRNG.
//! Keys are identified by the SHA-256 of the whole key; the plain key is only ever stored encrypted.

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Number of random characters after the type prefix.
pub const RANDOM_LEN: usize = 32;

/// The two kinds of opaque key Supabase clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Publishable,
    Secret,
}

impl KeyType {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyType::Publishable => "sb_publishable_",
            KeyType::Secret => "sb_secret_",
        }
    }

    /// The database role a key of this type maps to.
    pub fn role(self) -> Role {
        match self {
            KeyType::Publishable => Role::Anon,
            KeyType::Secret => Role::ServiceRole,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Publishable => "publishable",
            KeyType::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<KeyType> {
        match s {
            "publishable" => Some(KeyType::Publishable),
            "secret" => Some(KeyType::Secret),
            _ => None,
        }
    }
}

/// Database roles a request can run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Anon,
    Authenticated,
    ServiceRole,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anon => "anon",
            Role::Authenticated => "authenticated",
            Role::ServiceRole => "service_role",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "anon" => Some(Role::Anon),
            "authenticated" => Some(Role::Authenticated),
            "service_role" => Some(Role::ServiceRole),
            _ => None,
        }
    }
}

/// Random base62 string of `len` characters, without modulo bias (rejection sampling).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            // 248 = 4 * 62: bytes at or above it would bias the first characters.
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A freshly generated key.
pub fn generate(kind: KeyType) -> String {
    format!("{}{}", kind.prefix(), random_base62(RANDOM_LEN))
}

/// The type of a well-formed key, or None when the string is not shaped like one of ours.
pub fn parse_type(key: &str) -> Option<KeyType> {
    let (kind, rest) = if let Some(rest) = key.strip_prefix(KeyType::Publishable.prefix()) {
        (KeyType::Publishable, rest)
    } else if let Some(rest) = key.strip_prefix(KeyType::Secret.prefix()) {
        (KeyType::Secret, rest)
    } else {
        return None;
    };
    (rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(kind)
}

/// Whether a string looks like an opaque key at all (`sb_` prefix), as opposed to a JWT.
pub fn is_opaque(s: &str) -> bool {
    s.starts_with("sb_")
}

/// SHA-256 of the key: the lookup identity everywhere.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Hex form of [`hash`], used in URLs of the internal endpoint.
pub fn hash_hex(key: &str) -> String {
    hex::encode(hash(key))
}

/// The displayable prefix of a key: type prefix plus the first 8 random characters.
pub fn display_prefix(key: &str) -> String {
    let head = parse_type(key).map(|k| k.prefix().len()).unwrap_or(0);
    key.chars().take(head + 8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = generate(KeyType::Publishable);
        let b = generate(KeyType::Publishable);
        assert_ne!(a, b);
        assert_eq!(parse_type(&a), Some(KeyType::Publishable));
        assert_eq!(
            parse_type(&generate(KeyType::Secret)),
            Some(KeyType::Secret)
        );
        assert_eq!(a.len(), "sb_publishable_".len() + 32);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert_eq!(parse_type("sb_publishable_short"), None);
        assert_eq!(
            parse_type("sb_other_0123456789abcdef0123456789abcdef"),
            None
        );
        assert_eq!(
            parse_type("sb_secret_0123456789abcdef0123456789abcde!"),
            None
        );
    }

    #[test]
    fn prefix_shows_type_and_eight_chars() {
        let k = generate(KeyType::Secret);
        let p = display_prefix(&k);
        assert_eq!(p.len(), "sb_secret_".len() + 8);
        assert!(k.starts_with(&p));
    }

    #[test]
    fn base62_is_roughly_uniform() {
        let s = random_base62(62 * 400);
        let mut counts = [0usize; 62];
        for b in s.bytes() {
            counts[BASE62.iter().position(|c| *c == b).unwrap()] += 1;
        }
        // Expected 400 each; a modulo-biased generator would push the first 4 symbols ~25% higher.
        assert!(counts.iter().all(|c| (280..=520).contains(c)), "{counts:?}");
    }
}
