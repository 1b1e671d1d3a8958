//! The `state` parameter of a sign-in sent to a provider: which flow (a row of
//! `auth.supactl_oauth_flows`, consumed by the callback), which project, which provider, where the
//! browser goes afterwards and until when, signed with HMAC-SHA256 under a key derived from the
//! project's data key. Another project's state, an altered one or an expired one is refused before
//! anything is looked up; a replayed one finds its flow gone.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Seconds a sign-in may take at the provider.
pub const STATE_SECS: i64 = 600;
/// Longest `state` accepted (a redirect URL is at most 2 KiB).
const MAX_STATE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The flow's row.
    #[serde(rename = "f")]
    pub flow: String,
    #[serde(rename = "r")]
    pub project_ref: String,
    #[serde(rename = "p")]
    pub provider: String,
    /// Where the browser is sent back to (already checked against the allow list).
    #[serde(rename = "u")]
    pub redirect_to: String,
    /// Whether the client asked for PKCE (an auth code) rather than tokens in the fragment.
    #[serde(rename = "k")]
    pub pkce: bool,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum StateError {
    #[error("OAuth callback with invalid state")]
    Invalid,
    #[error("OAuth state has expired")]
    Expired,
}

fn mac(data_key: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(data_key.as_bytes()).expect("any key length");
    m.update(b"supactl oauth state\0");
    m
}

impl State {
    /// `payload.signature`, both base64url.
    pub fn sign(&self, data_key: &str) -> String {
        let payload = B64.encode(serde_json::to_vec(self).expect("state serialises"));
        let mut m = mac(data_key);
        m.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(m.finalize().into_bytes()))
    }

    /// The state `text` signed for project `project_ref`, if unexpired at `now`.
    pub fn verify(
        text: &str,
        data_key: &str,
        project_ref: &str,
        now: i64,
    ) -> Result<State, StateError> {
        if text.len() > MAX_STATE || data_key.is_empty() {
            return Err(StateError::Invalid);
        }
        let (payload, sig) = text.split_once('.').ok_or(StateError::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| StateError::Invalid)?;
        let mut m = mac(data_key);
        m.update(payload.as_bytes());
        m.verify_slice(&sig).map_err(|_| StateError::Invalid)?;
        let state: State = B64
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(StateError::Invalid)?;
        if state.project_ref != project_ref {
            return Err(StateError::Invalid);
        }
        if now >= state.expires_at {
            return Err(StateError::Expired);
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            flow: "0b7e8c1e-2d3f-4a5b-8c9d-0e1f2a3b4c5d".into(),
            project_ref: "abc".into(),
            provider: "corp".into(),
            redirect_to: "http://localhost:3000/cb".into(),
            pkce: true,
            expires_at: 1_000,
        }
    }

    #[test]
    fn signed_states_verify_only_for_their_project_key_and_time() {
        let s = state().sign("key-a");
        assert_eq!(State::verify(&s, "key-a", "abc", 999), Ok(state()));
        assert_eq!(
            State::verify(&s, "key-a", "abc", 1_000),
            Err(StateError::Expired)
        );
        assert_eq!(
            State::verify(&s, "key-b", "abc", 999),
            Err(StateError::Invalid)
        );
        assert_eq!(
            State::verify(&s, "key-a", "xyz", 999),
            Err(StateError::Invalid)
        );
        let (payload, sig) = s.split_once('.').unwrap();
        let mut other = state();
        other.redirect_to = "https://evil.example".into();
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&other).unwrap()));
        assert_ne!(forged.split_once('.').unwrap().0, payload);
        assert_eq!(
            State::verify(&forged, "key-a", "abc", 999),
            Err(StateError::Invalid)
        );
        assert_eq!(
            State::verify("nonsense", "key-a", "abc", 0),
            Err(StateError::Invalid)
        );
    }
}
