//! Where auth may send a browser back to (`redirect_to` of links and of OAuth sign-ins), by GoTrue's
//! rule: a URL on the site URL's host, or one matching an entry of the project's allow list, where an
//! entry is a glob whose `*` and `?` stop at `.` and `/` and whose `**` crosses them
//! (`https://*.example.com/**`); anything else falls back to the site URL.

/// Longest `redirect_to` considered (longer ones fall back to the site URL).
const MAX_URL: usize = 2048;

/// `requested` when it is allowed, else `site_url`.
pub fn choose(site_url: &str, allow_list: &[String], requested: Option<&str>) -> String {
    match requested {
        Some(r) if allowed(site_url, allow_list, r) => r.to_string(),
        _ => site_url.to_string(),
    }
}

/// Whether GoTrue would redirect to `url`.
pub fn allowed(site_url: &str, allow_list: &[String], url: &str) -> bool {
    if url.is_empty() || url.len() > MAX_URL || url.chars().any(char::is_control) {
        return false;
    }
    if let (Some(site), Some(requested)) = (host(site_url), host(url)) {
        if site.eq_ignore_ascii_case(requested) {
            return true;
        }
    }
    allow_list
        .iter()
        .any(|p| !p.is_empty() && glob_match(p, url))
}

/// The host of an absolute `scheme://[userinfo@]host[:port]/…` URL (None for anything else).
fn host(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let h = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!h.is_empty()).then_some(h)
}

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`: one character other than a separator.
    One,
    /// `*`: any run of characters other than separators.
    Star,
    /// `**`: any run of characters.
    Any,
}

fn separator(c: char) -> bool {
    c == '.' || c == '/'
}

/// Whether the whole of `text` matches the glob `pattern` (dynamic programming over the pattern's
/// tokens: time bounded by their product, no backtracking blow-up).
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut toks = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                Tok::Any
            }
            '*' => Tok::Star,
            '?' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // at[j]: the tokens so far match text[..j].
    let mut at = vec![false; text.len() + 1];
    at[0] = true;
    for t in &toks {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match t {
                Tok::Lit(c) => j > 0 && at[j - 1] && text[j - 1] == *c,
                Tok::One => j > 0 && at[j - 1] && !separator(text[j - 1]),
                Tok::Star => at[j] || (j > 0 && next[j - 1] && !separator(text[j - 1])),
                Tok::Any => at[j] || (j > 0 && next[j - 1]),
            };
        }
        at = next;
    }
    at[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_site_urls_host_is_allowed_whatever_the_path() {
        let site = "https://app.example.com";
        assert!(allowed(site, &[], "https://app.example.com/welcome?x=1"));
        assert!(allowed(site, &[], "http://APP.example.com:8080/"));
        assert!(!allowed(
            site,
            &[],
            "https://evil.com/?https://app.example.com"
        ));
        assert!(!allowed(site, &[], "https://app.example.com.evil.com/"));
        assert!(!allowed(site, &[], "https://app.example.com@evil.com/"));
        assert_eq!(choose(site, &[], Some("https://evil.com/")), site);
        assert_eq!(choose(site, &[], None), site);
    }

    #[test]
    fn allow_list_entries_are_globs() {
        let site = "http://localhost:3000";
        let l = list(&[
            "https://*.example.com/**",
            "myapp://callback",
            "http://127.0.0.1:5555/cb?",
        ]);
        assert!(allowed(site, &l, "https://a.example.com/x/y"));
        assert!(
            !allowed(site, &l, "https://a.b.example.com/x"),
            "* stops at dots"
        );
        assert!(!allowed(site, &l, "https://example.com/x"));
        assert!(allowed(site, &l, "myapp://callback"));
        assert!(
            !allowed(site, &l, "myapp://callback/more"),
            "no prefix matching"
        );
        assert!(allowed(site, &l, "http://127.0.0.1:5555/cbx"));
        assert!(!allowed(site, &l, "http://127.0.0.1:5555/cb/"));
        assert!(glob_match("a\\*b", "a*b") && !glob_match("a\\*b", "axb"));
        let long = format!("https://a.example.com/{}", "x".repeat(MAX_URL));
        assert!(!allowed(site, &l, &long));
    }
}
