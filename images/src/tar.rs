//! A deterministic ustar writer: entries sorted by path, parent directories added, fixed mtime, numeric
//! owners only (no user or group names), no extended headers. Enough for a container root filesystem layer.

use std::collections::BTreeMap;

use crate::Error;

const BLOCK: usize = 512;

/// What a path in the layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The tree of one layer, keyed by relative path without a leading `/` (`usr/local/bin/supactl`).
#[derive(Debug, Default, Clone)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file owned by root; parent directories are created (0755, root).
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.insert(
            path,
            Entry {
                kind: Kind::File(data),
                mode,
                uid: 0,
                gid: 0,
            },
        );
    }

    pub fn dir(&mut self, path: &str, mode: u32, uid: u32, gid: u32) {
        self.insert(
            path,
            Entry {
                kind: Kind::Dir,
                mode,
                uid,
                gid,
            },
        );
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(
            path,
            Entry {
                kind: Kind::Symlink(target.to_string()),
                mode: 0o777,
                uid: 0,
                gid: 0,
            },
        );
    }

    pub fn insert(&mut self, path: &str, entry: Entry) {
        let path = path.trim_matches('/').to_string();
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            self.entries.entry(p.to_string()).or_insert(Entry {
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
            parent = p;
        }
        self.entries.insert(path, entry);
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The tar archive: same tree, same bytes.
    pub fn to_tar(&self, mtime: u64) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        for (path, e) in &self.entries {
            let (name, typeflag, size, link) = match &e.kind {
                Kind::Dir => (format!("{path}/"), b'5', 0, ""),
                Kind::File(d) => (path.clone(), b'0', d.len() as u64, ""),
                Kind::Symlink(t) => (path.clone(), b'2', 0, t.as_str()),
            };
            out.extend_from_slice(&header(&name, e, size, mtime, typeflag, link)?);
            if let Kind::File(d) = &e.kind {
                out.extend_from_slice(d);
                let pad = (BLOCK - d.len() % BLOCK) % BLOCK;
                out.resize(out.len() + pad, 0);
            }
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        Ok(out)
    }
}

fn octal(field: &mut [u8], value: u64) -> Result<(), Error> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return Err(Error::Internal(format!(
            "tar: value {value} does not fit a {digits}-digit field"
        )));
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

fn header(
    name: &str,
    e: &Entry,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &str,
) -> Result<[u8; BLOCK], Error> {
    let mut h = [0u8; BLOCK];
    // ustar: names over 100 bytes are split at a `/` into prefix (155) and name (100)
    let (prefix, short) = if name.len() <= 100 {
        ("", name)
    } else {
        let cut = name[..name.len().min(156)]
            .rfind('/')
            .filter(|&i| name.len() - i - 1 <= 100 && i <= 155)
            .ok_or_else(|| Error::Internal(format!("tar: path too long: {name}")))?;
        (&name[..cut], &name[cut + 1..])
    };
    if link.len() > 100 {
        return Err(Error::Internal(format!(
            "tar: link target too long: {link}"
        )));
    }
    h[..short.len()].copy_from_slice(short.as_bytes());
    octal(&mut h[100..108], u64::from(e.mode))?;
    octal(&mut h[108..116], u64::from(e.uid))?;
    octal(&mut h[116..124], u64::from(e.gid))?;
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], mtime)?;
    h[148..156].fill(b' ');
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0)?;
    octal(&mut h[337..345], 0)?;
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn parents_are_added_and_entries_sorted() {
        let mut t = Tree::new();
        t.file("usr/local/bin/x", 0o755, b"hi".to_vec());
        t.file("etc/passwd", 0o644, b"root".to_vec());
        let paths: Vec<_> = t.paths().collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/passwd",
                "usr",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/x"
            ]
        );
    }

    #[test]
    fn system_tar_reads_it_back_with_modes_owners_and_contents() {
        let mut t = Tree::new();
        t.file("usr/local/bin/x", 0o755, b"hello\n".to_vec());
        t.dir("home/app", 0o750, 65532, 65532);
        t.dir("tmp", 0o1777, 0, 0);
        t.symlink("bin", "usr/bin");
        let long = format!("{}/file", "d".repeat(120));
        t.file(&long, 0o644, vec![7; 1000]);
        let tar = t.to_tar(1_700_000_000).unwrap();
        assert_eq!(tar.len() % BLOCK, 0);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("l.tar");
        std::fs::write(&f, &tar).unwrap();
        let out = Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(listing.contains("-rwxr-xr-x 0/0"), "{listing}");
        assert!(listing.contains("drwxr-x--- 65532/65532"), "{listing}");
        assert!(listing.contains("drwxrwxrwt 0/0"), "{listing}");
        assert!(listing.contains("bin -> usr/bin"), "{listing}");
        assert!(listing.contains(&long), "{listing}");
        assert!(listing.contains("2023-11-14"), "fixed mtime: {listing}");
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(&f)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read(x.join("usr/local/bin/x")).unwrap(),
            b"hello\n"
        );
        assert_eq!(std::fs::read(x.join(&long)).unwrap(), vec![7; 1000]);
    }

    #[test]
    fn same_tree_same_bytes() {
        let mk = |order: bool| {
            let mut t = Tree::new();
            if order {
                t.file("a/b", 0o644, b"1".to_vec());
                t.file("c", 0o644, b"2".to_vec());
            } else {
                t.file("c", 0o644, b"2".to_vec());
                t.file("a/b", 0o644, b"1".to_vec());
            }
            t.to_tar(0).unwrap()
        };
        assert_eq!(mk(true), mk(false));
    }
}
