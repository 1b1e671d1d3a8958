//! Encryption of secrets at rest (API keys, JWT secrets, database passwords) with AES-256-GCM.
//! The stored form is `nonce (12 bytes) ‖ ciphertext+tag`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt a stored secret: wrong encryption key or corrupted data")]
pub struct DecryptError;

/// The platform's cipher, derived from its encryption key.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl Cipher {
    /// Derives the AES key as SHA-256 of the configured key string, so any high-entropy string works.
    pub fn new(key: &str) -> Cipher {
        let digest = Sha256::digest(key.as_bytes());
        Cipher(Aes256Gcm::new_from_slice(&digest).expect("32-byte key"))
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if sealed.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ct) = sealed.split_at(12);
        self.0
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| DecryptError)
    }

    pub fn open_string(&self, sealed: &[u8]) -> Result<String, DecryptError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| DecryptError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_key() {
        let c = Cipher::new("platform-key");
        let sealed = c.seal(b"sb_secret_abc");
        assert_ne!(&sealed[12..], b"sb_secret_abc");
        assert_eq!(c.open(&sealed).unwrap(), b"sb_secret_abc");
        assert!(Cipher::new("other").open(&sealed).is_err());
        assert_ne!(c.seal(b"x"), c.seal(b"x"), "nonces must differ");
    }
}
