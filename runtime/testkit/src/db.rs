//! The database fixture: a throwaway PostgreSQL cluster (plain, or TLS-only with a test CA) and
//! superuser sessions on it. Needs no tenant-manager: any crate's tests can start one.

use crate::tls::TestCa;
use pgcluster::TestCluster;
use supactl_common::pg_tls::PgTls;

pub struct Database {
    pub cluster: TestCluster,
    /// The `postgres` database's URL, TLS settings included.
    pub url: String,
    /// TLS to the cluster (disable unless started with [`Database::start_tls`]).
    pub tls: PgTls,
    /// The CA of a TLS cluster, kept for its files.
    pub ca: Option<TestCa>,
}

impl Database {
    /// A cluster taking plain connections.
    pub async fn start() -> Database {
        let cluster = tokio::task::spawn_blocking(TestCluster::start)
            .await
            .unwrap();
        let url = cluster.url("postgres");
        Database::with(cluster, url, None)
    }

    /// A cluster that accepts TCP connections over TLS only, with a certificate for 127.0.0.1 and
    /// localhost from a test CA; its URL says `sslmode=verify-full` with that CA.
    pub async fn start_tls() -> Database {
        let ca = TestCa::new("supactl-test-ca");
        let server = ca.server_cert(&["127.0.0.1", "localhost"]);
        let cluster = tokio::task::spawn_blocking(move || {
            TestCluster::start_with_ssl(&server.cert_pem, &server.key_pem, true)
        })
        .await
        .unwrap();
        let url = format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            cluster.url("postgres"),
            ca.cert_path().display()
        );
        Database::with(cluster, url, Some(ca))
    }

    fn with(cluster: TestCluster, url: String, ca: Option<TestCa>) -> Database {
        let (_, tls) = PgTls::from_conninfo(&url).unwrap();
        Database {
            cluster,
            url,
            tls,
            ca,
        }
    }

    /// A superuser session on `dbname` (fixtures, inspection), over the cluster's TLS settings.
    pub async fn connect(&self, dbname: &str) -> tokio_postgres::Client {
        let cfg: tokio_postgres::Config = self.cluster.url(dbname).parse().unwrap();
        supactl_common::pg::connect(&cfg, &self.tls).await.unwrap()
    }
}
