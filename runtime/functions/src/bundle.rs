//! A worker's private directory: the function's files as deployed, the bootstrap that serves them, the
//! import map that ties the two together, and the worker's socket.
//!
//! ```text
//! <work_dir>/w-<random>/          (0700, removed with the worker)
//!   bundle/                       the function's files; the worker may read here and nowhere else of ours
//!     .supactl_import_map.json    the function's import map plus the std shim's entries
//!   runtime/bootstrap.mjs         see js/bootstrap.mjs
//!   runtime/std_http_server.mjs   stands in for https://deno.land/std@<v>/http/server.ts
//!   sock                          the worker's HTTP listener
//! ```
//! No part of a path comes from a request; file names come from the deployed bundle and are checked by
//! [`check`] (which the control plane can also run at deploy time).

use crate::store::Bundle;
use serde_json::{Map, Value};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

const BOOTSTRAP: &str = include_str!("js/bootstrap.mjs");
const STD_SHIM: &str = include_str!("js/std_http_server.mjs");
const IMPORT_MAP: &str = ".supactl_import_map.json";
/// Names the platform keeps for itself in a bundle's root.
const RESERVED_PREFIX: &str = ".supactl";
const STD_PREFIX: &str = "https://deno.land/std";
const STD_SUFFIX: &str = "/http/server.ts";
pub const MAX_FILES: usize = 1000;
/// Supabase's limit on a function's bundle.
pub const MAX_BUNDLE_BYTES: usize = 20 * 1024 * 1024;
const MAX_PATH_BYTES: usize = 1024;
/// std versions mapped per bundle; more distinct ones than this in one function is not a real program.
const MAX_STD_VERSIONS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("file name {0:?} must be a relative path without `..` (and not start with .supactl)")]
    BadName(String),
    #[error("the entrypoint {0:?} is not one of the bundle's files")]
    NoEntrypoint(String),
    #[error("a bundle holds at most {MAX_FILES} files and {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    #[error("the import map is not a JSON object with an optional \"imports\" object: {0}")]
    ImportMap(String),
}

/// Checks a bundle's file names, size, entrypoint and import map.
pub fn check(bundle: &Bundle) -> Result<(), BundleError> {
    let bytes: usize = bundle.files.iter().map(|f| f.content.len()).sum();
    if bundle.files.len() > MAX_FILES || bytes > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge);
    }
    for f in &bundle.files {
        relative(&f.name)?;
    }
    if !bundle.files.iter().any(|f| f.name == bundle.entrypoint) {
        return Err(BundleError::NoEntrypoint(bundle.entrypoint.clone()));
    }
    import_map(bundle).map(drop)
}

/// A name as a safe relative path.
fn relative(name: &str) -> Result<PathBuf, BundleError> {
    let bad = || BundleError::BadName(name.into());
    let path = Path::new(name);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    if name.is_empty()
        || name.len() > MAX_PATH_BYTES
        || !plain
        || name.starts_with(RESERVED_PREFIX)
        || name.contains(['\0', '\\'])
    {
        return Err(bad());
    }
    Ok(path.to_path_buf())
}

/// The function's import map with the std shim in place of std's `http/server.ts`: for every such URL the
/// bundle's files name, for every entry that maps to one, and for every prefix entry that maps to std's
/// root (`"std/": "https://deno.land/std@0.177.0/"`; a mapped address is not mapped again, so the more
/// specific `std/http/server.ts` is added). The function's own entries stay as they are otherwise.
fn import_map(bundle: &Bundle) -> Result<String, BundleError> {
    let mut map: Map<String, Value> = match &bundle.import_map {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(BundleError::ImportMap("not an object".into())),
            Err(e) => return Err(BundleError::ImportMap(e.to_string())),
        },
    };
    let imports = map
        .entry("imports")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(imports) = imports else {
        return Err(BundleError::ImportMap(
            "\"imports\" is not an object".into(),
        ));
    };
    let shim = || Value::String(SHIM_ADDRESS.into());
    let mut added = Vec::new();
    for (key, value) in imports.iter_mut() {
        let Some(tail) = value.as_str().and_then(|v| v.strip_prefix(STD_PREFIX)) else {
            continue;
        };
        if std_tail(tail, STD_SUFFIX) {
            *value = shim();
        } else if std_tail(tail, "/") && key.ends_with('/') {
            added.push(format!("{key}http/server.ts"));
        }
    }
    for key in added.into_iter().chain(std_server_urls(bundle)) {
        imports.entry(key).or_insert_with(shim);
    }
    Ok(Value::Object(map).to_string())
}

/// Where the shim is, from the import map's place in the bundle's root.
const SHIM_ADDRESS: &str = "../runtime/std_http_server.mjs";

/// Whether what follows `https://deno.land/std` is `[@<version>]<suffix>`.
fn std_tail(tail: &str, suffix: &str) -> bool {
    let Some(version) = tail.strip_suffix(suffix) else {
        return false;
    };
    version.is_empty()
        || version.strip_prefix('@').is_some_and(|v| {
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        })
}

/// `https://deno.land/std[@version]/http/server.ts` as the bundle's files spell it.
fn std_server_urls(bundle: &Bundle) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for f in &bundle.files {
        for (at, _) in f.content.match_indices(STD_PREFIX) {
            let rest = &f.content[at + STD_PREFIX.len()..];
            let end = rest
                .find(|c: char| matches!(c, '"' | '\'' | '`') || c.is_whitespace())
                .unwrap_or(rest.len());
            // `@<version>/http/server.ts` is short; anything longer is another URL
            if end > 64 || !std_tail(&rest[..end], STD_SUFFIX) {
                continue;
            }
            let url = format!("{STD_PREFIX}{}", &rest[..end]);
            if !urls.contains(&url) && urls.len() < MAX_STD_VERSIONS {
                urls.push(url);
            }
        }
    }
    urls
}

/// A worker's directory on disk, removed when dropped.
#[derive(Debug)]
pub struct WorkerDir {
    pub root: PathBuf,
    /// The bundle's entrypoint, relative to [`WorkerDir::bundle`] (checked).
    entrypoint: PathBuf,
}

impl WorkerDir {
    /// Writes `bundle` under a new directory of `work_dir`.
    pub fn create(work_dir: &Path, bundle: &Bundle) -> Result<WorkerDir, io::Error> {
        let invalid = |e: BundleError| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        check(bundle).map_err(invalid)?;
        let map = import_map(bundle).map_err(invalid)?;
        let mut dirs = fs::DirBuilder::new();
        dirs.recursive(true).mode(0o700);
        dirs.create(work_dir)?;
        let root = work_dir.join(format!("w-{}", hex::encode(rand::random::<[u8; 8]>())));
        dirs.recursive(false).create(&root)?;
        // from here on, a failure removes what was written
        let entrypoint = relative(&bundle.entrypoint).map_err(invalid)?;
        let dir = WorkerDir { root, entrypoint };
        dirs.recursive(true);
        dirs.create(dir.bundle())?;
        dirs.create(dir.runtime())?;
        for f in &bundle.files {
            let path = dir.bundle().join(relative(&f.name).map_err(invalid)?);
            if let Some(parent) = path.parent() {
                dirs.create(parent)?;
            }
            write_new(&path, f.content.as_bytes())?;
        }
        write_new(&dir.bundle().join(IMPORT_MAP), map.as_bytes())?;
        write_new(&dir.bootstrap(), BOOTSTRAP.as_bytes())?;
        write_new(
            &dir.runtime().join("std_http_server.mjs"),
            STD_SHIM.as_bytes(),
        )?;
        Ok(dir)
    }

    pub fn bundle(&self) -> PathBuf {
        self.root.join("bundle")
    }

    pub fn runtime(&self) -> PathBuf {
        self.root.join("runtime")
    }

    pub fn bootstrap(&self) -> PathBuf {
        self.runtime().join("bootstrap.mjs")
    }

    pub fn import_map(&self) -> PathBuf {
        self.bundle().join(IMPORT_MAP)
    }

    /// The `file://` URL of the function's module (the paths are ours and the names checked, but a name may
    /// hold characters a URL must escape).
    pub fn entry_url(&self) -> String {
        use percent_encoding::{percent_encode, NON_ALPHANUMERIC};
        const PATH: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let path = self.bundle().join(&self.entrypoint);
        format!(
            "file://{}",
            percent_encode(path.as_os_str().as_encoded_bytes(), PATH)
        )
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("sock")
    }
}

impl Drop for WorkerDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.root) {
            tracing::warn!(dir = %self.root.display(), error = %e, "could not remove a worker's directory");
        }
    }
}

/// A new file readable by its owner only; never follows or replaces an existing one.
fn write_new(path: &Path, content: &[u8]) -> io::Result<()> {
    use io::Write;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BundleFile;

    fn bundle(files: &[(&str, &str)]) -> Bundle {
        Bundle {
            entrypoint: files[0].0.into(),
            files: files
                .iter()
                .map(|(n, c)| BundleFile {
                    name: (*n).into(),
                    content: (*c).into(),
                })
                .collect(),
            import_map: None,
        }
    }

    #[test]
    fn names_that_leave_the_bundle_are_refused() {
        for name in [
            "../x.ts",
            "/etc/passwd",
            "a/../../b",
            "",
            ".supactl_import_map.json",
            "a\\b",
        ] {
            let b = bundle(&[("index.ts", ""), (name, "")]);
            assert_eq!(check(&b), Err(BundleError::BadName(name.into())), "{name}");
        }
        assert_eq!(
            check(&bundle(&[("index.ts", ""), ("lib/a.ts", "")])),
            Ok(())
        );
        let mut b = bundle(&[("index.ts", "")]);
        b.entrypoint = "main.ts".into();
        assert_eq!(check(&b), Err(BundleError::NoEntrypoint("main.ts".into())));
    }

    #[test]
    fn std_server_imports_map_to_the_shim_and_the_functions_own_entries_stay() {
        let mut b = bundle(&[
            (
                "index.ts",
                "import { serve } from \"https://deno.land/std@0.168.0/http/server.ts\";\n\
                 import { x } from 'https://deno.land/std/http/server.ts';\n\
                 import { y } from \"https://deno.land/std@0.1.0/path/mod.ts\";",
            ),
            (
                "b.ts",
                "import 'https://deno.land/std@0.168.0/http/server.ts'",
            ),
        ]);
        b.import_map = Some(
            r#"{"imports":{"lodash":"npm:lodash@4","std/":"https://deno.land/std@0.177.0/",
                "server":"https://deno.land/std@0.1.0/http/server.ts",
                "path/":"https://deno.land/std@0.1.0/path/"},"scopes":{}}"#
                .into(),
        );
        let map: Value = serde_json::from_str(&import_map(&b).unwrap()).unwrap();
        let imports = map["imports"].as_object().unwrap();
        assert_eq!(imports.len(), 7, "{imports:?}");
        assert_eq!(imports["lodash"], "npm:lodash@4");
        assert_eq!(imports["std/"], "https://deno.land/std@0.177.0/");
        assert_eq!(imports["path/"], "https://deno.land/std@0.1.0/path/");
        for url in [
            "https://deno.land/std@0.168.0/http/server.ts",
            "https://deno.land/std/http/server.ts",
            "std/http/server.ts",
            "server",
        ] {
            assert_eq!(imports[url], SHIM_ADDRESS, "{url}");
        }
        assert!(map["scopes"].is_object());
        b.import_map = Some("[1]".into());
        assert!(matches!(import_map(&b), Err(BundleError::ImportMap(_))));
    }

    #[test]
    fn a_worker_dir_holds_the_bundle_and_goes_away_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = WorkerDir::create(tmp.path(), &bundle(&[("index.ts", "1"), ("lib/a.ts", "2")]))
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.bundle().join("lib/a.ts")).unwrap(),
            "2"
        );
        assert!(dir.bootstrap().is_file() && dir.import_map().is_file());
        let root = dir.root.clone();
        drop(dir);
        assert!(!root.exists());
    }
}
