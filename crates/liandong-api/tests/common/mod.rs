//! The API test server the integration tests of this crate share: the query API's router over a
//! given read store, an embedded log in a temporary folder, a fresh vault and the four roles'
//! keys of [`KEYS`], served on a free local port until dropped.

use std::sync::Arc;

use liandong_api::{router, ApiState};
use liandong_auth::ApiKeys;
use liandong_projections::CoreProjection;
use liandong_store::ReadStore;

/// The time zone of the test traffic and of the API's dates.
pub const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// One key per role (`LIANDONG_API_KEYS` syntax).
pub const KEYS: &str = "ingest:ingest-key-0123456789,client:client-key-0123456789,\
                        analyst:analyst-key-0123456789,\
                        support:support-key-0123456789,decide:decide-key-0123456789,\
                        admin:admin-key-0123456789ab";

/// The query API over HTTP; the server stops when this is dropped.
pub struct Server {
    pub base: String,
    pub keys: Arc<ApiKeys>,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    _log_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Serves the API over `store` (its vault tables created) with the core projection.
    pub async fn start(store: &ReadStore) -> Server {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log = liandong_log::EmbeddedLog::open(dir.path()).expect("open the embedded log");
        let keys = Arc::new(ApiKeys::parse(KEYS).expect("valid test keys"));
        let vault = Arc::new(liandong_vault::Vault::new(
            liandong_vault::MasterKey::generate(),
        ));
        liandong_vault::migrate(store, &vault)
            .await
            .expect("vault tables");
        let state = ApiState {
            store: store.clone(),
            log,
            projections: vec![Arc::new(CoreProjection::new(TZ, vault.clone()))],
            keys: keys.clone(),
            timezone: TZ,
            data_keys: liandong_vault::DataKeys::new(store.clone(), vault.clone()),
            vault,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let addr = listener.local_addr().expect("a local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state))
                .await
                .expect("the API serves");
        });
        Server {
            base: format!("http://{addr}"),
            keys,
            http: reqwest::Client::new(),
            task,
            _log_dir: dir,
        }
    }
}
