//! Test certificates made on the spot with the `openssl` command: a throwaway CA and server certificates
//! it signs, for PostgreSQL clusters that serve TLS.

use std::path::PathBuf;
use std::process::Command;

/// A self-signed CA in a temporary directory.
pub struct TestCa {
    dir: tempfile::TempDir,
    /// The CA certificate, PEM.
    pub cert_pem: String,
}

/// A server certificate (PEM) and its private key (PEM).
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Runs `openssl` with whitespace-separated arguments (no argument here holds a space).
fn openssl(args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A CA named `name` (no spaces).
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |f: &str| dir.path().join(f).display().to_string();
        openssl(&format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN={name} \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
             -keyout {} -out {}",
            path("ca.key"),
            path("ca.crt")
        ));
        let cert_pem = std::fs::read_to_string(path("ca.crt")).expect("read ca.crt");
        TestCa { dir, cert_pem }
    }

    /// The CA certificate's file.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The files of the last server certificate made: `server.crt` and `server.key`.
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.crt"),
            self.dir.path().join("server.key"),
        )
    }

    /// A server certificate for `names` (DNS names, or IP addresses), signed by this CA.
    pub fn server_cert(&self, names: &[&str]) -> ServerCert {
        let path = |f: &str| self.dir.path().join(f).display().to_string();
        let san = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(_) => format!("IP:{n}"),
                Err(_) => format!("DNS:{n}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        std::fs::write(
            path("server.ext"),
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("write server.ext");
        openssl(&format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN={} -keyout {} -out {}",
            names[0],
            path("server.key"),
            path("server.csr")
        ));
        openssl(&format!(
            "x509 -req -in {} -CA {} -CAkey {} -CAcreateserial -days 2 -extfile {} -out {}",
            path("server.csr"),
            path("ca.crt"),
            path("ca.key"),
            path("server.ext"),
            path("server.crt")
        ));
        let read = |f: &str| std::fs::read_to_string(path(f)).expect("read server certificate");
        ServerCert {
            cert_pem: read("server.crt"),
            key_pem: read("server.key"),
        }
    }
}
