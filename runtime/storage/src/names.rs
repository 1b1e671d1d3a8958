//! What a bucket id and an object name may be. Names never reach a file system path (the bytes are
//! stored under `<ref>/<version>`), so these rules are about what clients and policies can rely on, not
//! about escaping: names are UTF-8 (non-ASCII accepted, unlike Supabase), at most [`MAX_NAME_BYTES`],
//! without control characters (NUL included), `.`/`..` segments, empty segments or a leading `/`.

use crate::error::{StorageError, StorageResult};

/// S3's key limit.
pub const MAX_NAME_BYTES: usize = 1024;
/// Supabase's bucket name limit.
pub const MAX_BUCKET_CHARS: usize = 100;

/// Checks an object name (`folder/file.png`).
pub fn object_name(name: &str) -> StorageResult<&str> {
    if name.is_empty() {
        return Err(StorageError::invalid_key("the object name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(StorageError::invalid_key(format!(
            "the object name is longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StorageError::invalid_key(format!(
            "Invalid key: {}",
            name.escape_debug()
        )));
    }
    for segment in name.split('/') {
        if matches!(segment, "" | "." | "..") {
            return Err(StorageError::invalid_key(format!(
                "Invalid key: {}: empty, '.' and '..' path segments are not allowed",
                name.escape_debug()
            )));
        }
    }
    Ok(name)
}

/// Checks a folder prefix for listing: empty (the bucket's root) or a name, with an optional trailing
/// `/`. Returns it with exactly one trailing `/` (or empty).
pub fn folder_prefix(prefix: &str) -> StorageResult<String> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    object_name(trimmed)?;
    Ok(format!("{trimmed}/"))
}

/// Checks a bucket id (Supabase's character set: letters, digits and `_ .!*'()&$@=;:+,?-`).
pub fn bucket_id(id: &str) -> StorageResult<&str> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_ .!*'()&$@=;:+,?-".contains(c);
    if id.is_empty()
        || id.chars().count() > MAX_BUCKET_CHARS
        || matches!(id, "." | "..")
        || !id.chars().all(ok_char)
    {
        return Err(StorageError::bad_request(format!(
            "Bucket name invalid: {}",
            id.escape_debug()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_are_refused_and_unicode_is_kept() {
        for ok in [
            "a.txt",
            "folder/sub/file name.png",
            "日本語/ファイル.txt",
            "é",
            "a..b",
        ] {
            assert_eq!(object_name(ok).unwrap(), ok);
        }
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        for bad in [
            "",
            "../x",
            "a/../b",
            "a/./b",
            "/a",
            "a//b",
            "a/",
            "a\0b",
            "a\nb",
            long.as_str(),
        ] {
            assert!(object_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(object_name(&"é".repeat(512)).unwrap().len(), 1024);
    }

    #[test]
    fn prefixes_end_in_one_slash() {
        assert_eq!(folder_prefix("").unwrap(), "");
        assert_eq!(folder_prefix("/").unwrap(), "");
        assert_eq!(folder_prefix("a/b").unwrap(), "a/b/");
        assert_eq!(folder_prefix("a/b/").unwrap(), "a/b/");
        assert!(folder_prefix("../a").is_err());
    }

    #[test]
    fn bucket_ids() {
        for ok in ["avatars", "my bucket", "a-b_c.d", "x(1)"] {
            assert!(bucket_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", "é", "a\0", &"b".repeat(101)] {
            assert!(bucket_id(bad).is_err(), "{bad:?}");
        }
    }
}
