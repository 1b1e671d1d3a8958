//! Encryption of secrets at rest (API keys, JWT secrets, database passwords) with AES-256-GCM.
//!
//! The stored form is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext+tag`, sealed with associated
//! data naming where the ciphertext lives (table, column and row, e.g. `supactl.api_keys.key_enc:<id>`):
//! a ciphertext copied into another row or column no longer opens. The version-less form that earlier
//! releases wrote (`nonce ‖ ciphertext+tag`, no associated data) opens only through
//! [`Cipher::open_legacy`], for the one-time migration of an existing platform database.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Constant-time equality of two secrets (hashed first so their lengths do not leak either): how every
/// service checks a bearer token against the admin key or the service token.
pub fn secret_eq(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

/// The first byte of every ciphertext sealed with associated data.
pub const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// The message is safe to show: it names neither the secret nor the key.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt a stored secret: wrong encryption key, corrupted data, or a ciphertext moved from another row")]
pub struct DecryptError;

/// The platform's cipher, derived from its encryption key, and the root of the keys derived from it
/// ([`Cipher::derive_key`]).
#[derive(Clone)]
pub struct Cipher(Aes256Gcm, [u8; 32]);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

impl Cipher {
    /// Derives the AES key as SHA-256 of the configured key string, so any high-entropy string works.
    pub fn new(key: &str) -> Cipher {
        let digest = Sha256::digest(key.as_bytes());
        let root = hmac_sha256(&digest, b"supactl derived keys v1");
        Cipher(
            Aes256Gcm::new_from_slice(&digest).expect("32-byte key"),
            root,
        )
    }

    /// A key for `purpose` (hex), derived from the encryption key (HMAC-SHA256 under a root that is
    /// itself derived, so it reveals nothing of the AES key): the same for the same key and purpose,
    /// unrelated across purposes. A project's data key (`auth-data:<ref>`, which seals its TOTP
    /// secrets) is one, handed to the data plane in the project's config.
    pub fn derive_key(&self, purpose: &str) -> String {
        hex::encode(hmac_sha256(&self.1, purpose.as_bytes()))
    }

    /// Seals `plaintext` bound to `aad`, which must be given again to open it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`Cipher::seal`] sealed with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
        match sealed.split_first() {
            Some((&VERSION, rest)) => self.decrypt(rest, aad),
            _ => Err(DecryptError),
        }
    }

    pub fn open_string(&self, sealed: &[u8], aad: &[u8]) -> Result<String, DecryptError> {
        String::from_utf8(self.open(sealed, aad)?).map_err(|_| DecryptError)
    }

    /// Opens the version-less form of earlier releases (no associated data). Only the start-up
    /// migration that re-seals such ciphertexts calls it.
    pub fn open_legacy(&self, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        self.decrypt(sealed, b"")
    }

    fn decrypt(&self, nonce_and_ct: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if nonce_and_ct.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ct) = nonce_and_ct.split_at(NONCE_LEN);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| DecryptError)
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_key() {
        let c = Cipher::new("platform-key");
        assert_eq!(c.derive_key("auth-data:a"), c.derive_key("auth-data:a"));
        assert_ne!(c.derive_key("auth-data:a"), c.derive_key("auth-data:b"));
        assert_ne!(
            c.derive_key("auth-data:a"),
            Cipher::new("other-key").derive_key("auth-data:a")
        );
        assert_eq!(c.derive_key("x").len(), 64);
    }

    #[test]
    fn seal_open_and_wrong_key() {
        let c = Cipher::new("platform-key");
        let sealed = c.seal(b"sb_secret_abc", b"t.c:1");
        assert_eq!(sealed[0], VERSION);
        assert!(!sealed.windows(13).any(|w| w == b"sb_secret_abc"));
        assert_eq!(c.open(&sealed, b"t.c:1").unwrap(), b"sb_secret_abc");
        assert!(Cipher::new("other").open(&sealed, b"t.c:1").is_err());
        assert_ne!(c.seal(b"x", b""), c.seal(b"x", b""), "nonces must differ");
    }

    #[test]
    fn associated_data_binds_the_ciphertext_to_its_place() {
        let c = Cipher::new("platform-key");
        let sealed = c.seal(b"secret", b"supactl.jwt_secrets.secret_enc:a");
        assert!(c
            .open(&sealed, b"supactl.jwt_secrets.secret_enc:b")
            .is_err());
        assert!(c.open(&sealed, b"supactl.api_keys.key_enc:a").is_err());
        assert!(c.open(&sealed, b"").is_err());
        assert!(c.open_legacy(&sealed).is_err());
    }

    #[test]
    fn legacy_form_opens_only_through_open_legacy() {
        let c = Cipher::new("platform-key");
        // What earlier releases stored: nonce ‖ ciphertext, no version byte, no associated data.
        let key = Sha256::digest(b"platform-key");
        let nonce = [7u8; NONCE_LEN];
        let ct = Aes256Gcm::new_from_slice(&key)
            .unwrap()
            .encrypt(Nonce::from_slice(&nonce), &b"old secret"[..])
            .unwrap();
        let legacy = [&nonce[..], &ct[..]].concat();
        assert_eq!(c.open_legacy(&legacy).unwrap(), b"old secret");
        assert!(c.open(&legacy, b"").is_err());
        assert!(c.open(&[], b"").is_err() && c.open_legacy(&[1, 2]).is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        assert_eq!(
            format!("{:?}", Cipher::new("platform-key")),
            "Cipher(<redacted>)"
        );
    }
}
