//! The token a request is forwarded with. A key-only request (the anon or the service role, no user
//! JWT) gets the same claims as every other of its project and role but for `iat` and `exp`, so each
//! serving thread reuses such a token for up to [`REUSE_SECS`] (a fifth of its lifetime at most) instead
//! of signing one per request: the service still sees at least four fifths of the lifetime left. A
//! user's token is minted for each request, its claims being the user's.

use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use supactl_common::forwarded;
use supactl_common::keys::Role;
use supactl_common::wire::ProjectConfig;

/// Longest reuse of a key-only token.
const REUSE_SECS: i64 = 60;
/// Projects a thread keeps tokens of (only projects whose key authenticated: all of them on most
/// platforms; past it the cache starts over).
const MAX_PROJECTS: usize = 4096;

struct Entry {
    role: Role,
    /// The project configuration it was minted under: held weakly, so its allocation is not reused while
    /// the entry exists and the same address means the same configuration (the same signing secret).
    project: Weak<ProjectConfig>,
    minted_at: i64,
    token: String,
    claims: String,
}

thread_local! {
    /// By project ref (looked up without allocating), one entry per role.
    static TOKENS: RefCell<HashMap<String, Vec<Entry>>> = RefCell::new(HashMap::new());
}

/// `(token, claims JSON)` for `role` with `claims` on `project`, minted at `now` for `ttl_secs`.
pub fn token(
    project: &Arc<ProjectConfig>,
    role: Role,
    claims: Map<String, Value>,
    now: i64,
    ttl_secs: i64,
) -> (String, String) {
    let reuse = REUSE_SECS.min(ttl_secs / 5);
    if !claims.is_empty() || reuse <= 0 {
        return forwarded::mint(project, role, claims, now, ttl_secs);
    }
    TOKENS.with(|cell| {
        let mut tokens = cell.borrow_mut();
        let fresh = |e: &&Entry| {
            e.role == role
                && std::ptr::eq(e.project.as_ptr(), Arc::as_ptr(project))
                && (e.minted_at..e.minted_at + reuse).contains(&now)
        };
        if let Some(e) = tokens
            .get(project.project_ref.as_str())
            .and_then(|roles| roles.iter().find(fresh))
        {
            return (e.token.clone(), e.claims.clone());
        }
        let (token, json) = forwarded::mint(project, role, Map::new(), now, ttl_secs);
        if tokens.len() >= MAX_PROJECTS {
            tokens.clear();
        }
        let roles = tokens.entry(project.project_ref.clone()).or_default();
        roles.retain(|e| e.role != role);
        roles.push(Entry {
            role,
            project: Arc::downgrade(project),
            minted_at: now,
            token: token.clone(),
            claims: json.clone(),
        });
        (token, json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use supactl_common::forwarded::RefRule;

    fn project(secret: &str) -> Arc<ProjectConfig> {
        Arc::new(testkit::project_config("abcdefghijklmnopqrst", secret))
    }

    #[test]
    fn key_only_tokens_are_reused_within_the_window_and_verify() {
        let p = project("a-secret-of-at-least-thirty-two-bytes!!");
        // verified against the clock: minted now
        let now = supactl_common::jwt::now();
        let (t1, c1) = token(&p, Role::Anon, Map::new(), now, 300);
        assert_eq!(
            token(&p, Role::Anon, Map::new(), now + 59, 300),
            (t1.clone(), c1)
        );
        // another role, a later minute, a user's claims: minted anew
        assert_ne!(token(&p, Role::ServiceRole, Map::new(), now, 300).0, t1);
        let (t2, _) = token(&p, Role::Anon, Map::new(), now + 60, 300);
        assert_ne!(t2, t1);
        let mut user = Map::new();
        user.insert("sub".into(), "u1".into());
        let (t3, c3) = token(&p, Role::Authenticated, user.clone(), now + 60, 300);
        assert!(c3.contains("\"sub\":\"u1\""));
        assert_ne!(token(&p, Role::Authenticated, user, now + 60, 300).0, "");
        assert!(forwarded::verify(&p, &t2, RefRule::MustName).is_ok());
        assert!(forwarded::verify(&p, &t3, RefRule::MustName).is_ok());
    }

    #[test]
    fn a_new_configuration_mints_with_its_own_secret() {
        let now = supactl_common::jwt::now();
        let old = project("the-old-secret-of-at-least-32-bytes!!!!");
        let (t_old, _) = token(&old, Role::Anon, Map::new(), now, 300);
        let new = project("the-new-secret-of-at-least-32-bytes!!!!");
        let (t_new, _) = token(&new, Role::Anon, Map::new(), now + 1, 300);
        assert_ne!(t_old, t_new);
        assert!(forwarded::verify(&new, &t_new, RefRule::MustName).is_ok());
        assert!(forwarded::verify(&new, &t_old, RefRule::MustName).is_err());
    }
}
