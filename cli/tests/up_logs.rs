//! `supactl up`'s log files: one JSON-lines file per service under `<data dir>/logs`, each line in its
//! service's file, size-based rotation with a bounded number of files, the managed PostgreSQL server's
//! own output copied in, and none of the secrets the run holds or created in any of them.

#[path = "support/up.rs"]
mod up;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const MAX: u64 = 8192;

fn get(port: u16, path: &str, apikey: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: {apikey}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 "), "{out}");
}

fn files(logs: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

#[test]
fn services_log_to_their_own_rotated_files_without_secrets() {
    let mut up = up::Up::start(&[
        "--log-file-max-bytes",
        &MAX.to_string(),
        "--log-files-kept",
        "2",
    ]);
    let logs = up.data().join("logs");
    let created = up.cli(&[
        "project", "create", "--name", "Logs", "--ref", "logfiles", "--output", "json",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let shown = up.cli(&[
        "project", "show", "logfiles", "--reveal", "--output", "json",
    ]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let publishable = shown["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["type"] == "publishable")
        .expect("a publishable key")["opaque_key"]
        .as_str()
        .unwrap()
        .to_string();
    // enough access lines (~250 bytes each) to fill the gateway's file several times over
    for i in 0..150 {
        get(
            up.port,
            &format!("/p/logfiles/rest/v1/nothing?n={i}"),
            &publishable,
        );
    }
    // the PostgreSQL server's output is copied every half second
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs.join("postgres.log").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(up.stop(), Some(0), "{}", up.log());

    let names = files(&logs);
    for expected in [
        "gateway.log",
        "gateway.log.1",
        "gateway.log.2",
        "tenant-manager.log",
        "postgres.log",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected}: {names:?}"
        );
    }
    assert!(!names.contains(&"gateway.log.3".to_string()), "{names:?}");
    for n in &names {
        let len = std::fs::metadata(logs.join(n)).unwrap().len();
        assert!(len <= MAX, "{n}: {len} bytes");
    }
    // each line in its service's file: the access lines with the gateway, the admin API's with the
    // tenant-manager, the server's own output as it wrote it
    let gateway: Vec<Value> = ["gateway.log", "gateway.log.1", "gateway.log.2"]
        .iter()
        .flat_map(|n| lines(&logs.join(n)))
        .collect();
    assert!(gateway.len() > 40, "{}", gateway.len());
    for l in &gateway {
        let target = l["target"].as_str().unwrap();
        assert!(
            target == "supactl::access"
                || target.starts_with("gateway")
                || target.starts_with("dataplane"),
            "{l}"
        );
    }
    assert!(gateway
        .iter()
        .any(|l| l["project"] == "logfiles" && l["route"] == "rest"));
    for l in lines(&logs.join("tenant-manager.log")) {
        assert!(
            l["target"].as_str().unwrap().starts_with("tenant_manager"),
            "{l}"
        );
    }
    let pg = std::fs::read_to_string(logs.join("postgres.log")).unwrap();
    assert!(
        pg.contains("database system is ready to accept connections") || pg.contains("LOG:"),
        "{pg}"
    );
    // stderr keeps its lines too
    assert!(
        up.log().contains("supactl::access"),
        "stderr has no access lines"
    );

    // no secret anywhere in the files
    let secrets: Value =
        serde_json::from_str(&std::fs::read_to_string(up.data().join("secrets.json")).unwrap())
            .unwrap();
    let mut needles: Vec<String> = secrets
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for k in shown["api_keys"].as_array().unwrap() {
        needles.push(k["opaque_key"].as_str().unwrap().to_string());
    }
    assert!(needles.len() >= 6, "{needles:?}");
    for n in &names {
        let text = std::fs::read_to_string(logs.join(n)).unwrap();
        for s in &needles {
            assert!(!text.contains(s.as_str()), "{n} holds a secret");
        }
    }
}
