//! Where each secret of the platform database lives, and the binding of its ciphertext to that place.
//!
//! Every secret column is sealed with associated data `supactl.<table>.<column>:<row>` (see
//! [`supactl_common::crypto`]), so a ciphertext copied into another row or column (one project's JWT
//! secret into another's row, a worker password into an API key) no longer decrypts. Platform databases
//! written by earlier releases hold version-less ciphertexts without associated data; [`migrate`]
//! re-seals them at start-up, in one transaction, and finds nothing to do on the next start.

use crate::error::ApiError;
use std::fmt;
use supactl_common::crypto::Cipher;

/// A secret column, named as its associated data names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Row: the worker's identifier.
    WorkerPassword,
    /// Row: the project's ref.
    ProjectDbPassword,
    /// Row: the key's id.
    ApiKey,
    /// Row: the secret's id.
    JwtSecret,
    /// Row: [`project_secret_row`], `<project ref>/<name>`.
    ProjectSecret,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Column::WorkerPassword => "supactl.workers.admin_password",
            Column::ProjectDbPassword => "supactl.projects.db_password",
            Column::ApiKey => "supactl.api_keys.key_enc",
            Column::JwtSecret => "supactl.jwt_secrets.secret_enc",
            Column::ProjectSecret => "supactl.project_secrets.value_enc",
        })
    }
}

impl Column {
    fn aad(self, row: &str) -> Vec<u8> {
        format!("{self}:{row}").into_bytes()
    }

    /// Seals `plaintext` for this column of `row`.
    pub fn seal(self, cipher: &Cipher, row: &str, plaintext: &str) -> Vec<u8> {
        cipher.seal(plaintext.as_bytes(), &self.aad(row))
    }

    /// Opens this column of `row`. A failure (wrong key, corrupted data, or a ciphertext of another row)
    /// is an internal error naming the place, never the secret.
    pub fn open(self, cipher: &Cipher, row: &str, sealed: &[u8]) -> Result<String, ApiError> {
        cipher
            .open_string(sealed, &self.aad(row))
            .map_err(|e| ApiError::Internal(format!("{self} of row {row}: {e}")))
    }

    /// Each column with a query listing `(row, ciphertext)` and an update that replaces the
    /// ciphertext of row `$1` with `$2` only while it still holds `$3`.
    fn queries(self) -> (&'static str, &'static str) {
        match self {
            Column::WorkerPassword => (
                "SELECT identifier, admin_password FROM supactl.workers",
                "UPDATE supactl.workers SET admin_password = $2 WHERE identifier = $1 AND admin_password = $3",
            ),
            Column::ProjectDbPassword => (
                "SELECT ref, db_password FROM supactl.projects",
                "UPDATE supactl.projects SET db_password = $2 WHERE ref = $1 AND db_password = $3",
            ),
            Column::ApiKey => (
                "SELECT id::text, key_enc FROM supactl.api_keys",
                "UPDATE supactl.api_keys SET key_enc = $2 WHERE id = $1::text::uuid AND key_enc = $3",
            ),
            Column::JwtSecret => (
                "SELECT id::text, secret_enc FROM supactl.jwt_secrets",
                "UPDATE supactl.jwt_secrets SET secret_enc = $2 WHERE id = $1::text::uuid AND secret_enc = $3",
            ),
            Column::ProjectSecret => (
                "SELECT project_ref || '/' || name, value_enc FROM supactl.project_secrets",
                "UPDATE supactl.project_secrets SET value_enc = $2
                 WHERE project_ref || '/' || name = $1 AND value_enc = $3",
            ),
        }
    }
}

const COLUMNS: [Column; 5] = [
    Column::WorkerPassword,
    Column::ProjectDbPassword,
    Column::ApiKey,
    Column::JwtSecret,
    Column::ProjectSecret,
];

/// The row of a project secret, as [`Column::ProjectSecret`] names it (refs hold no `/`).
pub fn project_secret_row(project_ref: &str, name: &str) -> String {
    format!("{project_ref}/{name}")
}

/// A fresh row id (a random UUID, v4), chosen before the insert so that the secret can be sealed for it.
pub fn new_row_id() -> String {
    supactl_common::ident::uuid_v4()
}

/// What [`migrate`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Ciphertexts of earlier releases, now re-sealed for their row.
    pub resealed: usize,
    /// Ciphertexts that open in neither form (wrong encryption key or corrupted data): left as they are,
    /// each logged; using them fails as an internal error.
    pub unreadable: usize,
}

/// Re-seals every ciphertext of an earlier release (no version byte, no associated data) for its row,
/// in one transaction; ciphertexts already bound to their row are left alone, so a second run changes
/// nothing. Replicas starting together take turns (advisory lock). `client` is a connection to the
/// platform database.
pub async fn migrate(
    client: &mut deadpool_postgres::Object,
    cipher: &Cipher,
) -> Result<Migrated, ApiError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7315002)", &[])
        .await?;
    let mut done = Migrated::default();
    for column in COLUMNS {
        let (select, update) = column.queries();
        for r in tx.query(select, &[]).await? {
            let (row, sealed): (String, Vec<u8>) = (r.get(0), r.get(1));
            if cipher.open(&sealed, &column.aad(&row)).is_ok() {
                continue;
            }
            match cipher.open_legacy(&sealed) {
                Ok(plain) => {
                    let resealed = cipher.seal(&plain, &column.aad(&row));
                    tx.execute(update, &[&row, &resealed, &sealed]).await?;
                    done.resealed += 1;
                }
                Err(e) => {
                    tracing::error!(%column, %row, error = %e, "a stored secret cannot be decrypted");
                    done.unreadable += 1;
                }
            }
        }
    }
    tx.commit().await?;
    if done.resealed > 0 {
        tracing::info!(
            resealed = done.resealed,
            "stored secrets re-sealed for their rows"
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_are_canonical_uuids() {
        let a = new_row_id();
        assert_ne!(a, new_row_id());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn a_ciphertext_opens_only_in_its_own_place() {
        let c = Cipher::new("k");
        let sealed = Column::JwtSecret.seal(&c, "row-a", "jwt-secret-value");
        assert_eq!(
            Column::JwtSecret.open(&c, "row-a", &sealed).unwrap(),
            "jwt-secret-value"
        );
        for (column, row) in [
            (Column::JwtSecret, "row-b"),
            (Column::ApiKey, "row-a"),
            (Column::ProjectSecret, "row-a"),
        ] {
            let e = column.open(&c, row, &sealed).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, ApiError::Internal(_)), "{text}");
            assert!(
                text.contains(&column.to_string()) && text.contains(row),
                "{text}"
            );
            assert!(!text.contains("jwt-secret-value"), "{text}");
        }
    }
}
