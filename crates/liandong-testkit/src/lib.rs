//! What liandong's tests share: RAII read stores (a fresh PostgreSQL database per test, dropped
//! afterwards, or a temporary SQLite file), the Kafka-protocol broker of the test machine, a
//! deterministic generator of realistic event streams, and a reference model of `events` and
//! `member_profile` computed straight from METRICS.md, independently of the projections; and
//! the HTTP steps tests take against a running server ([`server`]: send events, wait for the
//! projections to catch up).

pub mod catalog;
pub mod reference;
pub mod scenario;
pub mod server;

use std::sync::Arc;

use liandong_store::ReadStore;
use liandong_vault::{MasterKey, Vault};

/// Env var naming an admin URL of a PostgreSQL server for tests.
pub const PG_URL_VAR: &str = "LIANDONG_TEST_DATABASE_URL";
/// Env var naming a Kafka-protocol broker (`host:port`) for tests.
pub const KAFKA_VAR: &str = "LIANDONG_TEST_KAFKA";

/// The value of a test service's env var. Missing: in CI a failure (a test that needs a real
/// part must not pass without it); elsewhere `None`, after a line saying what was skipped.
pub fn required_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{what} is required in CI: set {var} (.ci/run does)")
        }
        _ => {
            eprintln!("SKIPPED: {what} not configured ({var} unset)");
            None
        }
    }
}

/// The master key of tests (base64 of the bytes 0..32), for `LIANDONG_MASTER_KEY`.
pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A vault on [`TEST_MASTER_KEY`].
pub fn test_vault() -> Arc<Vault> {
    Arc::new(Vault::new(
        MasterKey::parse_base64(TEST_MASTER_KEY).expect("the test master key parses"),
    ))
}

/// The identity service over `store` (the identity tables live in the read store's database).
pub async fn identity_service(store: &ReadStore) -> liandong_identity::IdentityService {
    match store {
        ReadStore::Postgres(p) => liandong_identity::IdentityService::postgres(p.clone()).await,
        ReadStore::Sqlite(p) => liandong_identity::IdentityService::sqlite(p.clone()).await,
    }
    .expect("the identity store opens")
}

/// A read store that exists for one test.
pub enum TestStore {
    Postgres {
        store: ReadStore,
        admin_url: String,
        url: String,
        name: String,
    },
    Sqlite {
        store: ReadStore,
        url: String,
        _dir: tempfile::TempDir,
    },
}

impl TestStore {
    /// A fresh PostgreSQL database, or `None` when no server is configured (outside CI).
    pub async fn postgres() -> Option<TestStore> {
        let admin_url = required_env(PG_URL_VAR, "PostgreSQL")?;
        let name = format!("liandong_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let url = replace_db(&admin_url, &name);
        let store = ReadStore::connect(&url)
            .await
            .expect("connect to the test database");
        Some(TestStore::Postgres {
            store,
            admin_url,
            url,
            name,
        })
    }

    /// A fresh SQLite file in a temporary folder.
    pub async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}/read.db", dir.path().display());
        let store = ReadStore::connect(&url)
            .await
            .expect("open the test SQLite store");
        TestStore::Sqlite {
            store,
            url,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &ReadStore {
        match self {
            TestStore::Postgres { store, .. } | TestStore::Sqlite { store, .. } => store,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestStore::Postgres { url, .. } | TestStore::Sqlite { url, .. } => url,
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let TestStore::Postgres {
            admin_url, name, ..
        } = self
        {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop cannot await; a helper thread with its own runtime can.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let admin = sqlx::PgPool::connect(&admin_url).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&admin)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

/// `postgres://u:p@h:5432/postgres?x` with the database replaced by `name`.
pub fn replace_db(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs a test body once on a fresh PostgreSQL database and once on a fresh SQLite file.
#[macro_export]
macro_rules! on_both_stores {
    ($body:ident) => {
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::TestStore::postgres().await {
                    super::$body(&db).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestStore::sqlite().await;
                super::$body(&db).await;
            }
        }
    };
}

/// Reads sender JSON as validated events (received now); panics on an invalid one.
pub fn validated(wire: &[serde_json::Value]) -> Vec<liandong_event::Event> {
    let schemas = liandong_event::Schemas::load().expect("the schemas compile");
    let now = chrono::Utc::now();
    wire.iter()
        .map(|v| {
            schemas
                .validate(v, now)
                .unwrap_or_else(|e| panic!("{v}: {e}"))
        })
        .collect()
}

/// Migrates `store` and empties the core projection, as a rebuild does.
pub async fn fresh_core(store: &ReadStore, projection: &liandong_projections::CoreProjection) {
    use liandong_projections::Projection;
    liandong_projections::migrate(store)
        .await
        .expect("migrations run");
    let (name, version, tables) = (projection.name(), projection.version(), projection.tables());
    match store {
        ReadStore::Postgres(p) => {
            let mut tx = p.begin().await.expect("begin");
            liandong_store::reset(&mut *tx, name, version, tables)
                .await
                .expect("reset");
            tx.commit().await.expect("commit");
        }
        ReadStore::Sqlite(p) => {
            let mut tx = p.begin().await.expect("begin");
            liandong_store::reset(&mut *tx, name, version, tables)
                .await
                .expect("reset");
            tx.commit().await.expect("commit");
        }
    }
}

/// Applies one batch to a projection in its own transaction.
pub async fn apply_batch(
    store: &ReadStore,
    projection: &dyn liandong_projections::Projection,
    batch: &[liandong_event::Event],
) {
    use liandong_projections::Tx;
    match store {
        ReadStore::Postgres(p) => {
            let mut tx = p.begin().await.expect("begin");
            projection
                .apply(Tx::Postgres(&mut tx), batch)
                .await
                .expect("apply");
            tx.commit().await.expect("commit");
        }
        ReadStore::Sqlite(p) => {
            let mut tx = p.begin().await.expect("begin");
            projection
                .apply(Tx::Sqlite(&mut tx), batch)
                .await
                .expect("apply");
            tx.commit().await.expect("commit");
        }
    }
}
