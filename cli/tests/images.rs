//! `supactl build` and `supactl push` (text and `--output json`) against real parts: Debian's `docker-registry` (the CNCF distribution
//! registry) on a loopback port with a throwaway config, and `skopeo`, a registry client nobody here wrote,
//! to inspect and copy back what we pushed. The image is unpacked and its binary run from the unpacked root
//! filesystem (in a chroot when we are root, and always through the unpacked loader) to prove it is
//! self-contained; the functions image's Deno (the pinned one, from `scripts/setup.sh deno`) too. Needs
//! `docker-registry` and `skopeo` on PATH (scripts/setup.sh installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn supactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supactl"))
        .args(args)
        .env_remove("SUPACTL_REGISTRY_USERNAME")
        .env_remove("SUPACTL_REGISTRY_PASSWORD")
        .env_remove("SUPACTL_IMAGES_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run supactl")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A `docker-registry` on a free loopback port, storing into a temp dir, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(htpasswd: Option<&str>) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let auth = match htpasswd {
            Some(line) => {
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, format!("{line}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: supactl-test\n    path: {}\n",
                    f.display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-only\n{auth}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect(
                "start docker-registry (install the docker-registry package: scripts/setup.sh)",
            );
        let r = Registry {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                std::fs::read_to_string(&r.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Blob uploads the registry saw (access log lines of upload starts and finishes).
    fn uploads(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let starts = log
            .lines()
            .filter(|l| l.contains("\"POST /v2/") && l.contains("/blobs/uploads/"))
            .count();
        let puts = log
            .lines()
            .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
            .count();
        (starts, puts)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test binary itself, stripped (a debug build carries ~800 MB of debug info).
fn stripped_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("supactl");
    run(Command::new("strip")
        .arg("-o")
        .arg(&bin)
        .arg(env!("CARGO_BIN_EXE_supactl")));
    bin
}

/// The pinned Deno (`$SUPACTL_DENO`, else installed by `scripts/setup.sh deno`, which prints its path).
fn deno() -> String {
    if let Ok(p) = std::env::var("SUPACTL_DENO") {
        return p;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/setup.sh");
    run(Command::new(script).arg("deno")).trim().to_string()
}

fn build(dir: &Path) -> PathBuf {
    let bin = stripped_binary(dir);
    let out = dir.join("images");
    let deno = deno();
    let o = supactl(&[
        "build",
        "gateway",
        "tenant-manager",
        "functions",
        "--deno",
        &deno,
        "--binary",
        bin.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--revision",
        REVISION,
        "--compression",
        "1",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "build failed: {stderr}");
    assert!(stdout.contains("gateway  sha256:"), "{stdout}");
    assert!(stdout.contains("tenant-manager  sha256:"), "{stdout}");
    assert!(stdout.contains("functions  sha256:"), "{stdout}");
    assert!(stderr.contains("libc.so.6"), "{stderr}");
    assert!(stderr.contains("layer deno"), "{stderr}");
    out
}

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo {args:?}: {e}: {out}"))
}

fn manifest_digest(layout: &Path, name: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("{name} not in {index}"))
        .to_string()
}

/// Copies `image` back with skopeo and unpacks its layers into a root filesystem under `dir`.
fn unpack(dir: &Path, image: &str, name: &str) -> PathBuf {
    let copy = dir.join(format!("copy-{name}"));
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        image,
        &format!("oci:{}:{name}", copy.display()),
    ]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        copy.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&mdigest)).unwrap()).unwrap();
    let rootfs = dir.join(format!("rootfs-{name}"));
    std::fs::create_dir(&rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        run(Command::new("tar")
            .arg("-xzf")
            .arg(blob(layer["digest"].as_str().unwrap()))
            .arg("-C")
            .arg(&rootfs));
    }
    rootfs
}

/// `<program> --version` from an unpacked root filesystem: through its own loader and libraries, and in
/// a chroot when we are root (then nothing from the host is visible, only what the image holds).
fn run_in(rootfs: &Path, program: &str) -> String {
    let libdirs: Vec<String> = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64"]
        .iter()
        .map(|d| rootfs.join(d))
        .filter(|d| d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    let out = run(Command::new(rootfs.join("lib64/ld-linux-x86-64.so.2"))
        .arg("--library-path")
        .arg(libdirs.join(":"))
        .arg(rootfs.join(program.trim_start_matches('/')))
        .arg("--version"));
    let euid = run(Command::new("id").arg("-u"));
    if euid.trim() == "0" {
        let chrooted = run(Command::new("chroot")
            .arg(rootfs)
            .args([program, "--version"]));
        assert_eq!(chrooted, out, "{program} in a chroot");
    }
    out
}

#[test]
fn gateway_image_pushes_inspects_copies_back_and_runs_from_its_own_rootfs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = build(tmp.path());
    let gw_digest = manifest_digest(&layout, "gateway");
    let reg = Registry::start(None);
    let dest = format!("{}/supactl", reg.host());

    // first push: both images; their shared layers go up once (mounted into the second repository)
    let o = supactl(&[
        "push",
        "--registry",
        &dest,
        "--images",
        layout.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "push failed: {stderr}");
    assert!(
        stdout.contains(&format!("{}/supactl/gateway@{gw_digest}", reg.host())),
        "{stdout}"
    );
    // gateway first (config + 2 layers), then the Deno images: functions uploads its config and the
    // Deno layer, tenant-manager only its config
    assert!(stderr.contains("functions: 2 uploaded"), "{stderr}");
    assert!(stderr.contains("tenant-manager: 1 uploaded"), "{stderr}");
    assert!(stderr.contains("3 mounted"), "{stderr}");
    let (starts, puts) = reg.uploads();
    assert!(
        starts >= 6 && puts == 6,
        "uploads seen by the registry: {starts} starts, {puts} puts"
    );

    // skopeo: the manifest, both tags, the config
    let image = format!("docker://{}/supactl/gateway", reg.host());
    let inspect = skopeo_json(&["inspect", "--tls-verify=false", &format!("{image}:latest")]);
    assert_eq!(inspect["Digest"], gw_digest.as_str());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        inspect["Labels"]["org.opencontainers.image.revision"],
        REVISION
    );
    let tags: Vec<&str> = inspect["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tags.contains(&"latest") && tags.contains(&REVISION),
        "{tags:?}"
    );
    let by_rev = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        &format!("{image}:{REVISION}"),
    ]);
    assert_eq!(by_rev["Digest"], gw_digest.as_str());
    let config = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("{image}:latest"),
    ]);
    let c = &config["config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/supactl", "serve", "gateway"])
    );
    assert_eq!(c["User"], "65532:65532");
    assert!(c["ExposedPorts"].get("8000/tcp").is_some(), "{c}");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    assert!(env.contains(&"SUPACTL_PORT=8000"), "{env:?}");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(2)
    );
    let tm = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("docker://{}/supactl/tenant-manager:latest", reg.host()),
    ]);
    assert_eq!(
        tm["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/supactl", "serve", "tenant-manager"])
    );
    assert_eq!(tm["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(3));
    let f = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("docker://{}/supactl/functions:latest", reg.host()),
    ]);
    assert_eq!(
        f["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/supactl", "serve", "functions"])
    );
    let fenv = f["config"]["Env"].to_string();
    assert!(
        fenv.contains("SUPACTL_DENO=/usr/local/bin/deno") && fenv.contains("SUPACTL_PORT=8081"),
        "{fenv}"
    );

    // copy back, unpack, run the binary from the unpacked root filesystem
    let rootfs = unpack(tmp.path(), &format!("{image}:latest"), "gw");
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("supactl:x:65532:65532"), "{passwd}");
    let version = format!("supactl {}", env!("CARGO_PKG_VERSION"));
    let out = run_in(&rootfs, "/usr/local/bin/supactl");
    assert!(out.contains(&version), "{out}");
    assert!(!rootfs.join("usr/local/bin/deno").exists());
    // the functions image: Deno runs from its own root filesystem too (its extra libraries included)
    let fnfs = unpack(
        tmp.path(),
        &format!("docker://{}/supactl/functions:latest", reg.host()),
        "fn",
    );
    let out = run_in(&fnfs, "/usr/local/bin/deno");
    assert!(out.starts_with("deno 2."), "{out}");
    assert!(run_in(&fnfs, "/usr/local/bin/supactl").contains(&version));

    // second push (as JSON): everything is there, nothing is uploaded
    let before = reg.uploads();
    let o = supactl(&[
        "push",
        "--registry",
        &dest,
        "--images",
        layout.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "second push failed: {stderr}");
    let pushed: serde_json::Value = serde_json::from_str(&stdout).expect("push --output json");
    let gateway = pushed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == "gateway")
        .expect("the gateway pushed");
    assert_eq!(gateway["digest"], gw_digest.as_str());
    assert_eq!(
        gateway["reference"],
        format!("{}/supactl/gateway@{gw_digest}", reg.host()).as_str()
    );
    assert_eq!(gateway["uploaded_blobs"], 0);
    assert_eq!(pushed.as_array().unwrap().len(), 3);
    assert!(stderr.contains("0 blob(s) uploaded"), "{stderr}");
    assert_eq!(
        reg.uploads(),
        before,
        "the second push started or finished blob uploads"
    );
}

#[test]
fn same_inputs_build_the_same_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let a = build(tmp.path());
    let other = tmp.path().join("again");
    std::fs::create_dir(&other).unwrap();
    let b = build(&other);
    for svc in ["gateway", "tenant-manager", "functions"] {
        assert_eq!(manifest_digest(&a, svc), manifest_digest(&b, svc), "{svc}");
    }
    assert_ne!(
        manifest_digest(&a, "gateway"),
        manifest_digest(&a, "tenant-manager")
    );
}

#[test]
fn unknown_service_missing_registry_and_missing_build_are_clear_errors() {
    let o = supactl(&["build", "gatewy", "--binary", "/bin/true"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown service \"gatewy\"") && stderr.contains("gateway, tenant-manager"),
        "{stderr}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("none");
    let o = supactl(&[
        "push",
        "--registry",
        "127.0.0.1:9/x",
        "--images",
        empty.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("run `supactl build` first"), "{stderr}");

    // a layout with an image, and a port where nothing listens
    let out = tmp.path().join("images");
    let o = supactl(&[
        "build",
        "gateway",
        "--binary",
        "/bin/true",
        "--out",
        out.to_str().unwrap(),
        "--revision",
        "r1",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = supactl(&[
        "push",
        "--registry",
        &format!("127.0.0.1:{port}/x"),
        "--images",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach registry 127.0.0.1:{port}")),
        "{stderr}"
    );

    let o = supactl(&[
        "push",
        "--registry",
        "127.0.0.1:5000/UPPER",
        "--images",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--registry"), "{stderr}");
}

/// A bcrypt htpasswd line (what the registry's htpasswd auth accepts), made with Python's crypt module.
fn htpasswd(user: &str, password: &str) -> String {
    let hash = run(Command::new("python3").args([
        "-W",
        "ignore",
        "-c",
        &format!(
            "import crypt; print(crypt.crypt({password:?}, crypt.mksalt(crypt.METHOD_BLOWFISH)))"
        ),
    ]));
    format!("{user}:{}", hash.trim())
}

#[test]
fn basic_auth_registry_rejects_missing_and_bad_credentials_and_accepts_good_ones() {
    let reg = Registry::start(Some(&htpasswd("ci", "s3cret")));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("images");
    let o = supactl(&[
        "build",
        "gateway",
        "--binary",
        "/bin/true",
        "--out",
        out.to_str().unwrap(),
        "--revision",
        "r1",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let dest = format!("{}/p", reg.host());
    let push = |user: Option<&str>, pass: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_supactl"));
        c.args([
            "push",
            "--registry",
            &dest,
            "--images",
            out.to_str().unwrap(),
        ])
        .env_remove("SUPACTL_REGISTRY_USERNAME")
        .env_remove("SUPACTL_REGISTRY_PASSWORD")
        .stdin(Stdio::null());
        if let Some(u) = user {
            c.args(["--username", u]);
        }
        if let Some(p) = pass {
            c.env("SUPACTL_REGISTRY_PASSWORD", p);
        }
        c.output().unwrap()
    };
    let o = push(None, None);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("requires credentials"), "{stderr}");
    let o = push(Some("ci"), Some("wrong"));
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rejected the credentials"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password must not be printed: {stderr}"
    );
    let o = push(Some("ci"), Some("s3cret"));
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("{}/p/gateway@sha256:", reg.host())),
        "{stdout}"
    );
}

#[test]
fn a_binary_for_another_machine_than_x86_64_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // an ELF header whose e_machine is aarch64 (0xb7), little-endian
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(18, 0);
    header.extend_from_slice(&[0xb7, 0x00]);
    header.resize(64, 0);
    let arm = tmp.path().join("supactl-aarch64");
    std::fs::write(&arm, &header).unwrap();
    let out = tmp.path().join("images");
    let o = supactl(&[
        "build",
        "gateway",
        "--binary",
        arm.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--revision",
        "r1",
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is built for aarch64") && stderr.contains("x86_64"),
        "{stderr}"
    );
    assert!(!out.join("index.json").exists(), "nothing was written");

    let script = tmp.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let o = supactl(&["build", "gateway", "--binary", script.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not an ELF executable"), "{stderr}");
}
