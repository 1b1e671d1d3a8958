//! Files `supactl up` keeps in its data directory: `secrets.json` (generated once: encryption key,
//! service token, admin key, PostgreSQL superuser password) and `state.json` (the URLs and admin key
//! that other commands read). Both are mode 0600.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use supactl_common::keys::random_base62;
use supactl_common::redact::Redacted;

#[derive(Serialize, Deserialize, Clone)]
pub struct Secrets {
    pub encryption_key: String,
    pub service_token: String,
    pub admin_key: String,
    pub postgres_password: String,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct State {
    pub gateway_url: String,
    pub admin_url: String,
    pub admin_key: String,
    pub pid: u32,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("encryption_key", &Redacted)
            .field("service_token", &Redacted)
            .field("admin_key", &Redacted)
            .field("postgres_password", &Redacted)
            .finish()
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("gateway_url", &self.gateway_url)
            .field("admin_url", &self.admin_url)
            .field("admin_key", &Redacted)
            .field("pid", &self.pid)
            .finish()
    }
}

/// The default data directory: `/var/lib/supactl` for root (its cluster user must reach it), else
/// `$XDG_DATA_HOME/supactl` or `~/.local/share/supactl`.
pub fn default_data_dir() -> PathBuf {
    if std::env::var("USER").as_deref() == Ok("root") || is_root() {
        return PathBuf::from("/var/lib/supactl");
    }
    if let Ok(x) = std::env::var("XDG_DATA_HOME") {
        return PathBuf::from(x).join("supactl");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".local/share/supactl")
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Loads the secrets, generating and saving them on first use.
pub fn load_or_create_secrets(dir: &Path) -> anyhow::Result<Secrets> {
    let path = dir.join("secrets.json");
    if path.exists() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is corrupt; restore it from a backup (projects' secrets cannot be decrypted without it)", path.display()));
    }
    let s = Secrets {
        encryption_key: random_base62(48),
        service_token: random_base62(48),
        admin_key: random_base62(40),
        postgres_password: random_base62(32),
    };
    save_secrets(dir, &s)?;
    Ok(s)
}

pub fn save_secrets(dir: &Path, s: &Secrets) -> anyhow::Result<()> {
    write_private(
        &dir.join("secrets.json"),
        serde_json::to_string_pretty(s)?.as_bytes(),
    )
}

pub fn write_state(dir: &Path, s: &State) -> anyhow::Result<()> {
    write_private(
        &dir.join("state.json"),
        serde_json::to_string_pretty(s)?.as_bytes(),
    )
}

pub fn read_state(dir: &Path) -> anyhow::Result<State> {
    let path = dir.join("state.json");
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: start the platform with `supactl up`, or pass --admin-url and --admin-key",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))
}

pub fn remove_state(dir: &Path) {
    let _ = fs::remove_file(dir.join("state.json"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_carries_no_secret() {
        let secrets = Secrets {
            encryption_key: "encryption-key-0123".into(),
            service_token: "service-token-0123".into(),
            admin_key: "admin-key-0123".into(),
            postgres_password: "postgres-password-0123".into(),
        };
        let state = State {
            gateway_url: "http://127.0.0.1:54321".into(),
            admin_url: "http://127.0.0.1:54323".into(),
            admin_key: "admin-key-0123".into(),
            pid: 42,
        };
        for text in [
            format!("{secrets:?} {state:?}"),
            format!("{secrets:#?} {state:#?}"),
        ] {
            for secret in [
                "encryption-key-0123",
                "service-token-0123",
                "admin-key-0123",
                "postgres-password-0123",
            ] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(
                text.contains("http://127.0.0.1:54323") && text.contains("42"),
                "{text}"
            );
        }
    }
}
