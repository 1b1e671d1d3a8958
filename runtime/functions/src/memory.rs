//! A [`FunctionStore`] held in memory: functions deployed by calls, or loaded from a directory laid out like
//! Supabase's `supabase/functions` (`<root>/<slug>/index.ts` and the files beside it). For a single
//! process without a control plane (local development, benchmarks) and as the control plane's test double;
//! the platform's store is the tenant-manager.

use crate::bundle::{check, BundleError, MAX_BUNDLE_BYTES, MAX_FILES};
use crate::store::{Bundle, BundleFile, FunctionMeta, FunctionStore, ProjectEnv, StoreError};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Mutex;

/// The entrypoint of a function loaded from a directory.
pub const DIR_ENTRYPOINT: &str = "index.ts";

#[derive(Default)]
pub struct MemoryStore {
    projects: Mutex<HashMap<String, Project>>,
}

#[derive(Default)]
struct Project {
    env: Option<ProjectEnv>,
    env_revision: u64,
    functions: HashMap<String, (FunctionMeta, Bundle)>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Sets a project's environment; its workers are replaced on their next invocation.
    pub fn set_environment(&self, project: &str, env: ProjectEnv) {
        self.update(project, |p| {
            p.env = Some(env);
            p.env_revision += 1;
        });
    }

    /// Sets one secret of a project that has an environment (false when it has none).
    pub fn set_secret(&self, project: &str, name: &str, value: &str) -> bool {
        self.update(project, |p| {
            let Some(env) = &mut p.env else { return false };
            env.secrets.retain(|(n, _)| n != name);
            env.secrets.push((name.into(), value.into()));
            p.env_revision += 1;
            true
        })
    }

    /// Deploys `bundle` as `slug` (a new version when it exists); returns the version.
    pub fn deploy(
        &self,
        project: &str,
        slug: &str,
        bundle: Bundle,
        verify_jwt: bool,
    ) -> Result<u64, BundleError> {
        check(&bundle)?;
        Ok(self.update(project, |p| {
            let version = p.functions.get(slug).map_or(1, |(m, _)| m.version + 1);
            let meta = FunctionMeta {
                version,
                verify_jwt,
                env_revision: 0,
            };
            p.functions.insert(slug.into(), (meta, bundle));
            version
        }))
    }

    /// Removes a function; false when there was none.
    pub fn delete(&self, project: &str, slug: &str) -> bool {
        self.update(project, |p| p.functions.remove(slug).is_some())
    }

    /// Deploys every `<root>/<slug>/` that holds an `index.ts` (with all the files under it) for `project`;
    /// returns the slugs, sorted.
    pub fn load_dir(
        &self,
        project: &str,
        root: &Path,
        verify_jwt: bool,
    ) -> io::Result<Vec<String>> {
        let mut slugs = Vec::new();
        for entry in fs::read_dir(root)? {
            let dir = entry?.path();
            let Some(slug) = dir.file_name().and_then(|n| n.to_str()).map(String::from) else {
                continue;
            };
            if !crate::router::valid_slug(&slug) || !dir.join(DIR_ENTRYPOINT).is_file() {
                continue;
            }
            let bundle = Bundle {
                entrypoint: DIR_ENTRYPOINT.into(),
                files: read_files(&dir)?,
                import_map: None,
            };
            self.deploy(project, &slug, bundle, verify_jwt)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{slug}: {e}")))?;
            slugs.push(slug);
        }
        slugs.sort();
        Ok(slugs)
    }

    fn update<T>(&self, project: &str, f: impl FnOnce(&mut Project) -> T) -> T {
        let mut projects = self.projects.lock().expect("store lock");
        f(projects.entry(project.into()).or_default())
    }
}

/// Every file under `dir` as a bundle's files, named relative to `dir`, within the bundle limits (what
/// a deploy from a directory sends).
pub fn read_files(dir: &Path) -> io::Result<Vec<BundleFile>> {
    let mut files = Vec::new();
    read_tree(dir, dir, &mut files)?;
    Ok(files)
}

/// The files under `dir` (names relative to `base`), within the bundle limits.
fn read_tree(base: &Path, dir: &Path, files: &mut Vec<BundleFile>) -> io::Result<()> {
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            BundleError::TooLarge.to_string(),
        )
    };
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(base, &path, files)?;
            continue;
        }
        let size: usize = files.iter().map(|f| f.content.len()).sum();
        if files.len() >= MAX_FILES || size + fs::metadata(&path)?.len() as usize > MAX_BUNDLE_BYTES
        {
            return Err(too_large());
        }
        let name = path.strip_prefix(base).map_err(io::Error::other)?;
        files.push(BundleFile {
            name: name.to_string_lossy().into_owned(),
            content: fs::read_to_string(&path)?,
        });
    }
    Ok(())
}

impl FunctionStore for MemoryStore {
    fn function<'a>(
        &'a self,
        project: &'a str,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Option<FunctionMeta>, StoreError>> {
        let projects = self.projects.lock().expect("store lock");
        let meta = projects.get(project).and_then(|p| {
            let (m, _) = p.functions.get(slug)?;
            Some(FunctionMeta {
                env_revision: p.env_revision,
                ..*m
            })
        });
        Box::pin(async move { Ok(meta) })
    }

    fn bundle<'a>(
        &'a self,
        project: &'a str,
        slug: &'a str,
        version: u64,
    ) -> BoxFuture<'a, Result<Bundle, StoreError>> {
        let projects = self.projects.lock().expect("store lock");
        let found = projects
            .get(project)
            .and_then(|p| p.functions.get(slug))
            .filter(|(m, _)| m.version == version)
            .map(|(_, b)| b.clone());
        Box::pin(async move { found.ok_or(StoreError::VersionGone) })
    }

    fn environment<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<ProjectEnv, StoreError>> {
        let env = self
            .projects
            .lock()
            .expect("store lock")
            .get(project)
            .and_then(|p| p.env.clone());
        Box::pin(async move {
            env.ok_or_else(|| StoreError::Unavailable("the project has no environment".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_of_functions_loads_and_redeploys_as_new_versions() {
        let root = tempfile::tempdir().unwrap();
        let hello = root.path().join("hello");
        fs::create_dir_all(hello.join("lib")).unwrap();
        fs::write(hello.join("index.ts"), "import './lib/a.ts'").unwrap();
        fs::write(hello.join("lib/a.ts"), "export {}").unwrap();
        fs::create_dir_all(root.path().join("_shared")).unwrap(); // no index.ts: not a function
        let store = MemoryStore::new();
        assert_eq!(store.load_dir("p", root.path(), false).unwrap(), ["hello"]);
        let meta = store.function("p", "hello").await.unwrap().unwrap();
        assert_eq!(meta.version, 1);
        let bundle = store.bundle("p", "hello", 1).await.unwrap();
        let mut names: Vec<_> = bundle.files.iter().map(|f| f.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["index.ts", "lib/a.ts"]);
        store.load_dir("p", root.path(), false).unwrap();
        assert_eq!(
            store.function("p", "hello").await.unwrap().unwrap().version,
            2
        );
        assert!(matches!(
            store.bundle("p", "hello", 1).await,
            Err(StoreError::VersionGone)
        ));
        assert!(store.environment("p").await.is_err());
        assert!(!store.set_secret("p", "A", "1"));
    }
}
