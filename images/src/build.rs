//! Image assembly: the service table, the root filesystem (the `supactl` binary, the shared libraries it
//! links and their loader as `ldd` reports them, Debian's CA bundle, a non-root user) split into a system
//! layer and an application layer, a third layer with the pinned Deno binary (and the libraries it needs
//! beyond the system layer's) for the services that run or check Edge Functions, and the image config.
//! Same inputs → same bytes → same digest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::{Compression, GzBuilder};

use crate::oci::{self, Descriptor, History, ImageConfig, Layout, Manifest, RootFs, RunConfig};
use crate::tar::Tree;
use crate::Error;

/// One runtime service: an image is the `supactl` binary with this entrypoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    /// Arguments after `supactl` in the entrypoint.
    pub args: &'static [&'static str],
    /// Port the service listens on (exposed, and set through `port_env`).
    pub port: u16,
    pub port_env: &'static str,
    /// Whether the image carries Deno: the functions service runs workers on it, the tenant-manager parses
    /// every deploy with it.
    pub deno: bool,
}

/// Every service with an image. Adding one is one line.
pub const SERVICES: &[Service] = &[
    Service {
        name: "gateway",
        args: &["serve", "gateway"],
        port: 8000,
        port_env: "SUPACTL_PORT",
        deno: false,
    },
    Service {
        name: "tenant-manager",
        args: &["serve", "tenant-manager"],
        port: 3001,
        port_env: "SUPACTL_ADMIN_PORT",
        deno: true,
    },
    // Edge Functions: the supervisor of the Deno workers, for the gateway's functions upstream.
    Service {
        name: "functions",
        args: &["serve", "functions"],
        port: 8081,
        port_env: "SUPACTL_PORT",
        deno: true,
    },
    // One project per function behind a Function URL; Lambda ignores the port.
    Service {
        name: "rest-lambda",
        args: &["serve", "rest-lambda"],
        port: 8080,
        port_env: "SUPACTL_PORT",
        deno: false,
    },
];

/// Looks a service up by name; the error lists the known ones.
pub fn service(name: &str) -> Result<&'static Service, Error> {
    SERVICES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::UnknownService {
            name: name.to_string(),
            known: SERVICES
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Where the binary goes in the image.
pub const BINARY_PATH: &str = "/usr/local/bin/supactl";
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where Deno goes in the images that carry it (`SUPACTL_DENO` names it).
pub const DENO_PATH: &str = "/usr/local/bin/deno";
/// Deno's module cache for anything run outside a worker (workers and the deploy check set their own).
pub const DENO_DIR: &str = "/tmp/deno";
/// The non-root user the services run as (distroless' "nonroot" id).
pub const UID: u32 = 65532;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The `supactl` binary to ship (a stripped release build).
    pub binary: PathBuf,
    /// Source revision: label, annotation and push tag.
    pub revision: String,
    /// Seconds since the epoch for every mtime and `created` (SOURCE_DATE_EPOCH; 0 by default).
    pub epoch: u64,
    /// CA bundle to copy (Debian's by default).
    pub ca_bundle: PathBuf,
    /// gzip level 0–9.
    pub compression: u32,
    /// The Deno binary for the images that carry it (`scripts/setup.sh deno` installs the pinned one).
    pub deno: Option<PathBuf>,
}

impl BuildOptions {
    pub fn new(binary: impl Into<PathBuf>, revision: impl Into<String>) -> Self {
        BuildOptions {
            binary: binary.into(),
            revision: revision.into(),
            epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            ca_bundle: PathBuf::from(CA_BUNDLE),
            compression: 6,
            deno: None,
        }
    }
}

/// A built layer, compressed.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: &'static str,
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub files: usize,
}

/// The layers every service image shares (they hold the same binary), and Deno's for those that carry it.
#[derive(Debug, Clone)]
pub struct Layers {
    pub layers: Vec<Layer>,
    /// Deno and the libraries it needs that the system layer lacks, when a Deno binary was given.
    pub deno: Option<Layer>,
    /// The shared libraries found, as absolute paths in the image.
    pub libraries: Vec<String>,
}

impl Layers {
    /// The layers of `svc`'s image, in order; a service that carries Deno needs the Deno layer.
    pub fn of(&self, svc: &Service) -> Result<Vec<&Layer>, Error> {
        let mut out: Vec<&Layer> = self.layers.iter().collect();
        if svc.deno {
            out.push(self.deno.as_ref().ok_or_else(|| Error::NoDeno {
                service: svc.name.to_string(),
            })?);
        }
        Ok(out)
    }
}

/// What `build` produced for one service.
#[derive(Debug, Clone)]
pub struct Built {
    pub service: &'static str,
    pub manifest: Descriptor,
    pub config_digest: String,
    /// Compressed size: config plus layers.
    pub compressed_size: u64,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// The shared objects `binary` needs, as `ldd` resolves them on this machine: (path in the image, file on
/// disk). A static binary yields none. The loader is included under the path the binary names.
pub fn shared_libraries(binary: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Error::Tool {
            tool: "ldd",
            detail: format!("{e} (install libc-bin)"),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(Error::Tool {
            tool: "ldd",
            detail: format!(
                "{} failed: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("statically linked") {
            continue;
        }
        // `name => /path (0x…)`, `/lib64/ld-linux-x86-64.so.2 (0x…)`, or `linux-vdso.so.1 (0x…)`
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let p = rest.split_whitespace().next().unwrap_or("");
                if p == "not" {
                    return Err(Error::Tool {
                        tool: "ldd",
                        detail: format!("{}: {} not found", binary.display(), name.trim()),
                    });
                }
                p
            }
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') {
            libs.push((path.to_string(), PathBuf::from(path)));
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

fn gzip(data: &[u8], level: u32) -> Result<Vec<u8>, Error> {
    // fixed header: no name, mtime 0, OS "unknown"
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(data.len() / 2), Compression::new(level));
    enc.write_all(data)
        .and_then(|_| enc.finish())
        .map_err(|e| Error::Internal(format!("gzip: {e}")))
}

/// The system layer (libraries, CA bundle, users, /tmp) and the application layer (the binary).
pub fn layers(opts: &BuildOptions) -> Result<Layers, Error> {
    let mut system = Tree::new();
    let libs = shared_libraries(&opts.binary)?;
    for (in_image, on_disk) in &libs {
        system.file(in_image, 0o755, read(on_disk)?);
    }
    let ca = std::fs::read(&opts.ca_bundle).map_err(|e| Error::Tool {
        tool: "ca-certificates",
        detail: format!(
            "cannot read {}: {e} (install Debian's ca-certificates package)",
            opts.ca_bundle.display()
        ),
    })?;
    system.file(CA_BUNDLE, 0o644, ca);
    system.file(
        "etc/passwd",
        0o644,
        format!("root:x:0:0:root:/root:/sbin/nologin\nsupactl:x:{UID}:{UID}:supactl:/home/supactl:/sbin/nologin\n")
            .into_bytes(),
    );
    system.file(
        "etc/group",
        0o644,
        format!("root:x:0:\nsupactl:x:{UID}:\n").into_bytes(),
    );
    system.file(
        "etc/nsswitch.conf",
        0o644,
        b"passwd: files\ngroup: files\nhosts: files dns\n".to_vec(),
    );
    system.dir("tmp", 0o1777, 0, 0);
    system.dir("home/supactl", 0o755, UID, UID);

    let mut app = Tree::new();
    app.file(BINARY_PATH, 0o755, read(&opts.binary)?);

    let mut layers = Vec::new();
    for (name, tree) in [("system", &system), ("app", &app)] {
        layers.push(layer(name, tree, opts)?);
    }
    let deno = match &opts.deno {
        Some(bin) => {
            let mut tree = Tree::new();
            for (in_image, on_disk) in shared_libraries(bin)? {
                if !libs.iter().any(|(p, _)| *p == in_image) {
                    tree.file(&in_image, 0o755, read(&on_disk)?);
                }
            }
            tree.file(DENO_PATH, 0o755, read(bin)?);
            Some(layer("deno", &tree, opts)?)
        }
        None => None,
    };
    Ok(Layers {
        layers,
        deno,
        libraries: libs.into_iter().map(|(p, _)| p).collect(),
    })
}

fn layer(name: &'static str, tree: &Tree, opts: &BuildOptions) -> Result<Layer, Error> {
    let tar = tree.to_tar(opts.epoch)?;
    Ok(Layer {
        name,
        diff_id: oci::digest(&tar),
        blob: gzip(&tar, opts.compression)?,
        files: tree.paths().count(),
    })
}

/// RFC 3339 UTC of an epoch second (no date crate: days-to-civil).
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The image config of `svc` over its `layers` ([`Layers::of`]).
pub fn image_config(svc: &Service, layers: &[&Layer], opts: &BuildOptions) -> ImageConfig {
    let created = rfc3339(opts.epoch);
    let mut entrypoint = vec![BINARY_PATH.to_string()];
    entrypoint.extend(svc.args.iter().map(|a| a.to_string()));
    let labels = BTreeMap::from([
        (oci::REVISION.to_string(), opts.revision.clone()),
        (
            "org.opencontainers.image.title".to_string(),
            format!("supactl-{}", svc.name),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "org.opencontainers.image.licenses".to_string(),
            "Apache-2.0".to_string(),
        ),
    ]);
    ImageConfig {
        created: created.clone(),
        architecture: "amd64".to_string(),
        os: "linux".to_string(),
        config: RunConfig {
            user: format!("{UID}:{UID}"),
            exposed_ports: BTreeMap::from([(format!("{}/tcp", svc.port), Default::default())]),
            env: env(svc),
            entrypoint,
            working_dir: "/home/supactl".to_string(),
            labels,
        },
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: layers
            .iter()
            .map(|l| History {
                created: created.clone(),
                created_by: format!("supactl build: {} layer ({} entries)", l.name, l.files),
            })
            .collect(),
    }
}

/// The image's environment: where the CA bundle is, listening off loopback, the port, and for the images
/// that carry Deno where it is and a writable cache for it.
fn env(svc: &Service) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
        format!("SSL_CERT_FILE={CA_BUNDLE}"),
        // inside a container the service must accept connections from outside it
        "SUPACTL_LISTEN=0.0.0.0".to_string(),
        format!("{}={}", svc.port_env, svc.port),
    ];
    if svc.deno {
        env.extend([
            format!("SUPACTL_DENO={DENO_PATH}"),
            format!("DENO_DIR={DENO_DIR}"),
            "DENO_NO_UPDATE_CHECK=1".to_string(),
        ]);
    }
    env
}

/// Writes the image of `svc` into `layout` under the service's name.
pub fn write_image(
    layout: &Layout,
    svc: &Service,
    layers: &Layers,
    opts: &BuildOptions,
) -> Result<Built, Error> {
    let layers = layers.of(svc)?;
    let config = image_config(svc, &layers, opts);
    let config_bytes = serde_json::to_vec(&config).map_err(|e| Error::Internal(e.to_string()))?;
    let config_desc = layout.put_blob(oci::CONFIG_MEDIA_TYPE, &config_bytes)?;
    let mut layer_descs = Vec::new();
    for l in layers {
        layer_descs.push(layout.put_blob(oci::LAYER_MEDIA_TYPE, &l.blob)?);
    }
    let compressed_size = config_desc.size + layer_descs.iter().map(|d| d.size).sum::<u64>();
    let manifest = Manifest {
        schema_version: 2,
        media_type: oci::MANIFEST_MEDIA_TYPE.to_string(),
        config: config_desc.clone(),
        layers: layer_descs,
        annotations: BTreeMap::from([
            (oci::REVISION.to_string(), opts.revision.clone()),
            (oci::CREATED.to_string(), config.created.clone()),
        ]),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let desc = layout.put_blob(oci::MANIFEST_MEDIA_TYPE, &bytes)?;
    layout.set_ref(svc.name, desc.clone())?;
    Ok(Built {
        service: svc.name,
        manifest: desc,
        config_digest: config_desc.digest,
        compressed_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn unknown_service_lists_the_known_ones() {
        let e = service("gatewy").unwrap_err().to_string();
        assert!(
            e.contains("gatewy") && e.contains("gateway, tenant-manager"),
            "{e}"
        );
        assert_eq!(service("gateway").unwrap().port, 8000);
    }

    #[test]
    fn ldd_finds_libc_and_the_loader() {
        let libs = shared_libraries(Path::new("/bin/true")).unwrap();
        let paths: Vec<_> = libs.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.iter().any(|p| p.contains("libc.so")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("ld-linux")), "{paths:?}");
    }

    fn build_into(dir: &Path) -> Built {
        let mut opts = BuildOptions::new("/bin/true", "0123abcd");
        opts.epoch = 1_700_000_000;
        let layers = layers(&opts).unwrap();
        write_image(
            &Layout::new(dir),
            service("gateway").unwrap(),
            &layers,
            &opts,
        )
        .unwrap()
    }

    #[test]
    fn same_inputs_same_digest() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let x = build_into(a.path());
        let y = build_into(b.path());
        assert_eq!(x.manifest.digest, y.manifest.digest);
        assert_eq!(x.config_digest, y.config_digest);
        // and the layout holds a readable image with two layers and the service's entrypoint
        let (_, manifest, _) = Layout::new(a.path()).image("gateway").unwrap();
        assert_eq!(manifest.layers.len(), 2);
        let config: ImageConfig = serde_json::from_slice(
            &Layout::new(a.path())
                .read_blob(&manifest.config.digest)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config.config.entrypoint, [BINARY_PATH, "serve", "gateway"]);
        assert_eq!(config.created, "2023-11-14T22:13:20Z");
        assert_eq!(config.config.labels[oci::REVISION], "0123abcd");
    }

    #[test]
    fn another_revision_changes_the_config_but_not_the_layers() {
        let dir = tempfile::tempdir().unwrap();
        let a = build_into(dir.path());
        let mut opts = BuildOptions::new("/bin/true", "ffff0000");
        opts.epoch = 1_700_000_000;
        let l = layers(&opts).unwrap();
        let b = write_image(
            &Layout::new(dir.path()),
            service("gateway").unwrap(),
            &l,
            &opts,
        )
        .unwrap();
        assert_ne!(a.manifest.digest, b.manifest.digest);
        let la = Layout::new(dir.path());
        let (_, m, _) = la.image("gateway").unwrap();
        assert_eq!(m.annotations[oci::REVISION], "ffff0000");
    }

    #[test]
    fn deno_images_carry_a_third_layer_and_the_others_do_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let plain = build_into(dir.path());
        let functions = service("functions").unwrap();
        let mut opts = BuildOptions::new("/bin/true", "0123abcd");
        opts.epoch = 1_700_000_000;
        let without = layers(&opts).unwrap();
        let e = write_image(&layout, functions, &without, &opts).unwrap_err();
        assert!(e.to_string().contains("scripts/setup.sh deno"), "{e}");

        // any executable stands in for Deno here (cli/tests/images.rs ships the real one)
        opts.deno = Some(PathBuf::from("/bin/false"));
        let with = layers(&opts).unwrap();
        let deno = with.deno.as_ref().unwrap();
        // /bin/false links nothing the system layer lacks: the layer holds the binary alone (and its
        // parent directories usr, usr/local, usr/local/bin)
        assert_eq!(deno.files, 4);
        write_image(&layout, functions, &with, &opts).unwrap();
        let gw = write_image(&layout, service("gateway").unwrap(), &with, &opts).unwrap();
        assert_eq!(gw.manifest.digest, plain.manifest.digest);
        let (_, m, _) = layout.image("functions").unwrap();
        assert_eq!(m.layers.len(), 3);
        let config: ImageConfig =
            serde_json::from_slice(&layout.read_blob(&m.config.digest).unwrap()).unwrap();
        assert_eq!(
            config.config.entrypoint,
            [BINARY_PATH, "serve", "functions"]
        );
        for var in [
            "SUPACTL_DENO=/usr/local/bin/deno",
            "DENO_DIR=/tmp/deno",
            "SUPACTL_PORT=8081",
        ] {
            assert!(config.config.env.iter().any(|e| e == var), "{var}");
        }
    }
}
