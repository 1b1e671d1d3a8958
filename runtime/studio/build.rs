//! Builds the dashboard's front end (`web/`, Vite + Preact from the npm registry, versions pinned by
//! `web/package-lock.json`) into `OUT_DIR` and writes the table of embedded files. npm must be installed
//! (`scripts/setup.sh npm`); its packages come from the registry npm is configured with, cached in ~/.npm.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &[
    "package.json",
    "package-lock.json",
    "index.html",
    "vite.config.js",
    "src",
];

fn main() {
    let web = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("web");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for s in SOURCES {
        println!("cargo:rerun-if-changed=web/{s}");
    }
    let work = out.join("web");
    for s in SOURCES {
        copy(&web.join(s), &work.join(s));
    }
    let dist = out.join("dist");
    npm(
        &work,
        &["ci", "--no-audit", "--no-fund", "--prefer-offline"],
        None,
    );
    npm(&work, &["run", "build"], Some(&dist));
    write_table(&dist, &out.join("assets.rs"));
}

/// Runs npm in `dir`, failing the build with npm's own output and the fix.
fn npm(dir: &Path, args: &[&str], out_dir: Option<&Path>) {
    let mut cmd = Command::new("npm");
    cmd.args(args).current_dir(dir);
    if let Some(o) = out_dir {
        cmd.env("STUDIO_OUT_DIR", o);
    }
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("studio: cannot run npm ({e}): install Node.js and npm (scripts/setup.sh npm) and build again")
    });
    if !output.status.success() {
        panic!(
            "studio: `npm {}` failed in {}:\n{}\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(from, to).unwrap_or_else(|e| panic!("studio: copy {}: {e}", from.display()));
    }
}

/// `assets.rs`: one `Asset` per built file, its bytes and a gzip copy, by URL path.
fn write_table(dist: &Path, table: &Path) {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut src = String::from("pub static ASSETS: &[Asset] = &[\n");
    for rel in files {
        let file = dist.join(&rel);
        let gz = file.with_extension(format!(
            "{}.gz",
            file.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&fs::read(&file).unwrap()).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        writeln!(
            src,
            "    Asset {{ path: {:?}, content_type: {:?}, body: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            format!("/{rel}"),
            content_type(&rel),
            file,
            gz
        )
        .unwrap();
    }
    src.push_str("];\n");
    fs::write(table, src).unwrap();
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else if p.extension().is_none_or(|x| x != "gz") {
            out.push(
                p.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}
