//! Secrets a project's auth service keeps in its own database, sealed with the project's data key
//! (AES-256-GCM from its config, never stored) and bound to where they live: TOTP secrets of MFA
//! factors ([`crate::factors`]) and the signing secrets of its hooks ([`crate::hook`]). What is stored is
//! the base64 of [`Cipher::seal`]'s output; a ciphertext copied to another row does not open.

use crate::error::{AuthError, AuthResult};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use supactl_common::crypto::Cipher;
use supactl_common::wire::ProjectConfig;

fn cipher(project: &ProjectConfig, what: &str) -> AuthResult<Cipher> {
    if project.data_key.is_empty() {
        return Err(AuthError::internal(format!(
            "the project's config carries no data key: {what} cannot be sealed or opened"
        )));
    }
    Ok(Cipher::new(&project.data_key))
}

/// Seals `plain` for the place named by `aad` (e.g. `auth.mfa_factors.secret:<id>`).
pub fn seal(project: &ProjectConfig, aad: &str, plain: &str) -> AuthResult<String> {
    Ok(B64.encode(cipher(project, aad)?.seal(plain.as_bytes(), aad.as_bytes())))
}

/// Opens what [`seal`] sealed for the same `aad`.
pub fn open(project: &ProjectConfig, aad: &str, sealed: &str) -> AuthResult<String> {
    let raw = B64.decode(sealed).map_err(AuthError::internal)?;
    cipher(project, aad)?
        .open_string(&raw, aad.as_bytes())
        .map_err(AuthError::internal)
}
