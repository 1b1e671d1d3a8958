//! The dashboard's front end (supactl Studio), embedded: the files Vite builds from `web/` (Preact + htm,
//! see `build.rs`), each with a gzip copy, looked up by URL path. This crate owns only the bytes; the
//! tenant-manager serves them, with the session and the admin API the pages call.

/// One built file.
pub struct Asset {
    /// The URL path, e.g. `/index.html` or `/assets/index-<hash>.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The same bytes, gzip-compressed at build time.
    pub gzip: &'static [u8],
}

impl Asset {
    /// Whether the name carries a content hash (Vite's `assets/` output), so it can be cached forever.
    pub fn immutable(&self) -> bool {
        self.path.starts_with("/assets/")
    }
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file at `path`, if the build produced one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The application's page (every dashboard address that is not a file answers with it).
pub fn index() -> &'static Asset {
    asset("/index.html").expect("the build always writes index.html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_embeds_the_page_and_its_scripts() {
        let page = std::str::from_utf8(index().body).unwrap();
        assert!(page.contains("<div id=\"app\">"), "{page}");
        let scripts: Vec<_> = ASSETS.iter().filter(|a| a.path.ends_with(".js")).collect();
        assert!(!scripts.is_empty());
        for s in &scripts {
            assert!(
                page.contains(s.path),
                "{} is not referenced by the page",
                s.path
            );
            assert!(s.immutable());
        }
        assert!(!index().immutable());
    }

    #[test]
    fn first_load_stays_under_300_kb_gzipped() {
        let total: usize = ASSETS.iter().map(|a| a.gzip.len()).sum();
        assert!(total <= 300 * 1024, "{total} bytes gzipped");
    }

    #[test]
    fn gzip_copies_decode_to_the_bodies() {
        use std::io::Read;
        for a in ASSETS {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(a.gzip)
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, a.body, "{}", a.path);
        }
    }
}
