//! SQL identifier and literal quoting plus the naming rules for project refs and their database objects.

/// Quotes an identifier for PostgreSQL: `"…"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal: `'…'` with embedded quotes doubled (for the few statements that take no bind
/// parameters, such as `CREATE ROLE … PASSWORD`).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether `r` is a valid project ref: 3–40 characters of `a-z0-9-`, starting and ending alphanumeric.
/// Refs become DNS labels and database names, hence the narrow alphabet.
/// A fresh random UUID (version 4) in its hyphenated text form.
pub fn uuid_v4() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub fn valid_ref(r: &str) -> bool {
    let b = r.as_bytes();
    (3..=40).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Database of a project.
pub fn database_name(r: &str) -> String {
    format!("project_{}", r.replace('-', "_"))
}

/// The project's own login role (the REST engine connects as it).
pub fn login_role(r: &str) -> String {
    format!("authenticator_{}", r.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn refs() {
        assert!(valid_ref("abc"));
        assert!(valid_ref("my-project-1"));
        assert!(!valid_ref("ab"));
        assert!(!valid_ref("-abc"));
        assert!(!valid_ref("Abc"));
        assert!(!valid_ref("a_b"));
        assert_eq!(database_name("my-proj"), "project_my_proj");
    }
}
