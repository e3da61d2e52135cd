//! The `liandong` process: wires configuration, the event log, the read store, the identity
//! service, ingestion, the projectors and the query API into one of three roles.
//! `serve` runs all of them in one process (the zero-setup default); `ingest` and `project` run
//! one role each so production can scale them apart (projectors share partitions through the
//! Kafka consumer group).

pub mod config;
pub mod dead_letter;
pub mod keys;
pub mod metrics;
pub mod rebuild;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use liandong_api::ApiState;
use liandong_auth::ApiKeys;
use liandong_event::Schemas;
use liandong_identity::IdentityService;
use liandong_ingest::IngestState;
use liandong_log::{EmbeddedLog, EventLog, KafkaConfig, KafkaLog};
use liandong_projections::{CoreProjection, Projection};
use liandong_projector::{Projector, ProjectorConfig};
use liandong_store::ReadStore;
use liandong_vault::{DataKeys, MasterKey, Vault};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use config::Config;

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ingestion, projectors and the query API in one process.
    Serve,
    /// Ingestion only (needs Kafka).
    Ingest,
    /// Projectors only, with health and status (needs Kafka).
    Project,
}

impl Role {
    /// The subcommand that runs it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Serve => "serve",
            Role::Ingest => "ingest",
            Role::Project => "project",
        }
    }
}

/// A started process: its address, and the handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub keys: Arc<ApiKeys>,
    /// What the HTTP server serves (a clone): tests list its routes to check each one's roles.
    pub router: axum::Router,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Running {
    /// Waits until `shutdown` resolves or a task fails, then stops everything.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let first = tokio::select! {
            _ = shutdown => None,
            Some(done) = self.tasks.join_next() => Some(done),
        };
        let _ = self.stop.send(true);
        let mut result = match first {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(anyhow::anyhow!("a task panicked: {e}")),
        };
        while let Some(done) = self.tasks.join_next().await {
            if let (Ok(()), Ok(Err(e))) = (&result, done) {
                result = Err(e);
            }
        }
        result
    }

    /// Stops everything and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.run_until(async {}).await
    }
}

/// The projections this binary maintains. The vault makes the erasure registry's hashes and
/// the analysts' pseudonyms.
pub fn projections(cfg: &Config, vault: Arc<Vault>) -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(CoreProjection::new(cfg.timezone, vault))]
}

/// The names of the projections this binary maintains (what `liandong rebuild` accepts).
pub fn projection_names() -> Vec<&'static str> {
    let cfg = Config::from_lookup(|_| None).expect("the default configuration is valid");
    // Only the names are read: any key will do.
    projections(&cfg, Arc::new(Vault::new(MasterKey::generate())))
        .iter()
        .map(|p| p.name())
        .collect()
}

/// The log filter when `RUST_LOG` is unset. The demo draws progress bars and then a banner with
/// the URL and keys: only warnings may write over them, and neither the projector's retries of a
/// batch that met a busy SQLite file (it retries until it applies) nor sqlx's "slow statement"
/// warnings (a backfill on 2 cores makes a few, each with its whole SQL) are worth a
/// newcomer's attention.
pub fn log_filter(demo: bool) -> &'static str {
    if demo {
        "warn,liandong_projector=error,sqlx=error"
    } else {
        "info,librdkafka=warn,rdkafka=warn,sqlx=warn"
    }
}

/// Starts `role`: binds the listener, connects every part, spawns the tasks.
pub async fn start(role: Role, mut cfg: Config) -> anyhow::Result<Running> {
    // Where the dashboard's sign-in form says the keys are: `serve`'s key file, unless the
    // keys are configured.
    let keys_file = cfg
        .api_keys
        .is_none()
        .then(|| cfg.data_dir.join("api-keys").display().to_string());
    let keys = Arc::new(api_keys(role, &mut cfg)?);
    let vault = Arc::new(Vault::new(master_key(role, &mut cfg)?));
    let store = ReadStore::connect(&cfg.database_url)
        .await
        .context("LIANDONG_DATABASE_URL: cannot open the read store")?;
    liandong_projections::migrate(&store)
        .await
        .context("migrating the read store")?;
    liandong_projections::set_timezone(&store, cfg.timezone)
        .await
        .context("recording the time zone in the read store")?;
    liandong_vault::migrate(&store, &vault)
        .await
        .context("opening the data keys of personal data")?;
    let data_keys = DataKeys::new(store.clone(), vault.clone());
    // Keys made with `liandong keys create` work from the first request, and follow the table.
    keys::load_stored(&store, &keys).await?;
    let log = open_log(role, &cfg).await?;
    let projections = projections(&cfg, vault.clone());
    // One identity service for ingestion and the query API: an erasure clears the cache
    // ingestion binds through. Erased identifiers are never bound again.
    let identity = match &store {
        ReadStore::Postgres(p) => IdentityService::postgres(p.clone()).await,
        ReadStore::Sqlite(p) => IdentityService::sqlite(p.clone()).await,
    }
    .context("opening the identity store")?
    .with_erasure_registry(vault.clone());

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(keys::refresh(
        store.clone(),
        keys.clone(),
        cfg.key_refresh,
        stopped.clone(),
    ));
    let mut app = liandong_api::router(ApiState {
        store: store.clone(),
        log: log.clone(),
        projections: projections.clone(),
        keys: keys.clone(),
        timezone: cfg.timezone,
        vault: vault.clone(),
        data_keys: data_keys.clone(),
    });
    if role != Role::Ingest {
        // The dashboard page, beside the query API it reads with the key the user signs in with.
        app = app.merge(liandong_dashboard::router_with_keys_file(
            keys_file.as_deref(),
        ));
    }
    if role != Role::Project {
        let schemas = Arc::new(Schemas::load().context("compiling the event schemas")?);
        let ingest = IngestState::new(
            schemas,
            log.clone(),
            identity,
            keys.clone(),
            data_keys.clone(),
        )
        .with_rate_limit(cfg.rate_limit);
        // The WeChat callback is one more way into the same ingestion (same validation,
        // dead letters and durability); unconfigured, it answers 404.
        let wechat = cfg.wechat.take();
        if wechat.is_some() {
            info!(
                path = liandong_wechat::CALLBACK_PATH,
                "WeChat OA callback enabled"
            );
        }
        app = app
            .merge(liandong_ingest::router(ingest.clone()))
            .merge(liandong_wechat::router(wechat, ingest));
    }
    // Prometheus' view of this process: no member data, its own key when one is set.
    app = app.merge(metrics::router(
        metrics::MetricsState {
            key: cfg.metrics_key.clone(),
            lag: (role != Role::Ingest).then(|| metrics::LagSource {
                store: store.clone(),
                log: log.clone(),
                projections: projections.clone(),
            }),
        },
        role.as_str(),
    ));
    {
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(metrics::UPKEEP);
            loop {
                tokio::select! {
                    _ = tick.tick() => metrics::handle().run_upkeep(),
                    _ = stopped.wait_for(|s| *s) => return Ok(()),
                }
            }
        });
    }
    if role != Role::Ingest {
        for projection in &projections {
            let projector = Projector::new(
                store.clone(),
                log.clone(),
                projection.clone(),
                ProjectorConfig {
                    group_prefix: cfg.topic_prefix.clone(),
                    max_batch: cfg.projector_batch,
                    ..ProjectorConfig::default()
                },
            );
            let mut stopped = stopped.clone();
            tasks.spawn(async move {
                projector
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
                    .context("projector stopped")
            });
        }
    }

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("LIANDONG_LISTEN: cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let mut stopped_http = stopped.clone();
    // Per route (so the matched route is known): request counts and latency, tracing spans.
    let app = app
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(metrics::trace_layer());
    let router = app.clone();
    // Every answer of the API is JSON with an `error`, 405s included (axum's have no body). Around
    // the whole router, not each route: the `Allow` header is only there once the route is done.
    let app = axum::Router::new()
        .fallback_service(app)
        .layer(axum::middleware::map_response(method_not_allowed_as_json));
    tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped_http.wait_for(|s| *s).await;
            })
            .await
            .context("HTTP server")
    });
    info!(%addr, log = log.kind(), store = ?store.dialect(), ?role, "liandong is up");
    Ok(Running {
        addr,
        keys,
        router,
        stop,
        tasks,
    })
}

/// A `405` in the shape of every other error answer: which method the route takes instead
/// (axum answers an empty body with the `Allow` header).
async fn method_not_allowed_as_json(
    method: axum::http::Method,
    uri: axum::http::Uri,
    res: axum::response::Response,
) -> axum::response::Response {
    use axum::http::header::ALLOW;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return res;
    }
    let allow = res
        .headers()
        .get(ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let error = if allow.is_empty() {
        format!("method {method} is not allowed on {}", uri.path())
    } else {
        format!(
            "method {method} is not allowed on {}: use {}",
            uri.path(),
            allow.replace(',', " or")
        )
    };
    let mut answer = (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({ "error": error })),
    )
        .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&allow) {
        answer.headers_mut().insert(ALLOW, v);
    }
    answer
}

pub(crate) async fn open_log(role: Role, cfg: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    match &cfg.kafka {
        Some(k) => {
            let log = KafkaLog::connect(KafkaConfig {
                brokers: k.brokers.clone(),
                topic_prefix: cfg.topic_prefix.clone(),
                partitions: k.partitions,
                replication_factor: k.replication_factor,
                client_options: k.client_options.clone(),
                create_topics: true,
            })
            .await
            .context("LIANDONG_KAFKA_BROKERS: cannot reach Kafka")?;
            Ok(log)
        }
        None if role != Role::Serve => bail!(
            "LIANDONG_KAFKA_BROKERS: `liandong {}` needs Kafka; the embedded log serves one process (use `liandong serve`)",
            if role == Role::Ingest { "ingest" } else { "project" }
        ),
        None => {
            let dir = cfg.data_dir.join("log");
            let log = tokio::task::spawn_blocking(move || EmbeddedLog::open(&dir)).await??;
            Ok(log)
        }
    }
}

/// The key file `serve` keeps in the data directory: `role:key` lines, `#` comments.
pub(crate) fn read_key_file(path: &Path) -> anyhow::Result<ApiKeys> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(",");
    ApiKeys::parse(&joined).map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))
}

/// `LIANDONG_API_KEYS`, or for `serve` the keys kept in the data directory, created on first
/// start and readable only by their owner.
fn api_keys(role: Role, cfg: &mut Config) -> anyhow::Result<ApiKeys> {
    if let Some(keys) = cfg.api_keys.take() {
        return Ok(keys);
    }
    if role != Role::Serve {
        bail!("LIANDONG_API_KEYS: required for `liandong ingest` and `liandong project` (comma-separated role:key pairs)");
    }
    let path = cfg.data_dir.join("api-keys");
    if path.exists() {
        let keys = read_key_file(&path)?;
        info!(path = %path.display(), "API keys loaded");
        return Ok(keys);
    }
    let keys = ApiKeys::generate();
    write_keys(&path, &keys)?;
    warn!(path = %path.display(), "LIANDONG_API_KEYS is unset: created one key per role in this file (readable only by you)");
    println!(
        "API keys created in {} (one per role: ingest, client, analyst, support, admin)",
        path.display()
    );
    Ok(keys)
}

/// `LIANDONG_MASTER_KEY`, or for `serve` the key kept in `<data dir>/master-key`, created on
/// first start and readable only by its owner. Losing it loses every personal value stored.
fn master_key(role: Role, cfg: &mut Config) -> anyhow::Result<MasterKey> {
    if let Some(key) = cfg.master_key.take() {
        return Ok(key);
    }
    if role != Role::Serve {
        bail!("LIANDONG_MASTER_KEY: required for `liandong ingest` and `liandong project` (base64 of 32 bytes, e.g. `openssl rand -base64 32`; the same key on every node)");
    }
    let path = cfg.data_dir.join("master-key");
    if path.exists() {
        return read_master_key_file(&path);
    }
    let key = MasterKey::generate();
    let text = format!(
        "# liandong master key (LIANDONG_MASTER_KEY): it unlocks the personal data in the read store and the log.\n\
         # Keep this file private and keep a copy somewhere safe: without it that data is lost.\n{}\n",
        key.to_base64()
    );
    write_private(&path, &text)?;
    warn!(path = %path.display(), "LIANDONG_MASTER_KEY is unset: created a master key in this file (readable only by you); back it up");
    println!(
        "Master key created in {} (back it up: without it the personal data it protects is lost)",
        path.display()
    );
    Ok(key)
}

/// The master key `serve` keeps in `path` (`<data dir>/master-key`).
pub(crate) fn read_master_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let key =
        MasterKey::parse_base64(key).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    info!(path = %path.display(), "master key loaded");
    Ok(key)
}

fn write_keys(path: &Path, keys: &ApiKeys) -> anyhow::Result<()> {
    let mut text =
        String::from("# liandong API keys, role:key, one per line. Keep this file private.\n");
    for pair in keys.to_env_string().split(',') {
        text.push_str(pair);
        text.push('\n');
    }
    write_private(path, &text)
}

/// Creates `path` (never overwriting) readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The targets of the events `filter` lets through, of those emitted by `emit`.
    fn passed(filter: &str, emit: impl FnOnce()) -> Vec<String> {
        use std::sync::Mutex;
        use tracing_subscriber::layer::{Context, SubscriberExt};
        struct Record(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Record {
            fn on_event(&self, e: &tracing::Event<'_>, _: Context<'_, S>) {
                self.0
                    .lock()
                    .unwrap()
                    .push(e.metadata().target().to_owned());
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(Record(seen.clone()))
            .with(tracing_subscriber::EnvFilter::new(filter));
        tracing::subscriber::with_default(subscriber, emit);
        let out = seen.lock().unwrap().clone();
        out
    }

    #[test]
    fn the_demo_prints_no_slow_statement_warnings_over_its_banner() {
        let emit = || {
            tracing::warn!(target: "sqlx::query", "slow statement: execution time exceeded alert threshold");
            tracing::info!(target: "liandong", "liandong is up");
            tracing::warn!(target: "liandong", "a warning of liandong's own");
        };
        assert_eq!(passed(log_filter(true), emit), ["liandong"]);
        assert_eq!(
            passed(log_filter(false), emit),
            ["sqlx::query", "liandong", "liandong"],
            "serve logs them"
        );
    }

    fn cfg(dir: &Path, pairs: &[(&str, &str)]) -> Config {
        let dir = dir.display().to_string();
        Config::from_lookup(|k| {
            if k == "LIANDONG_DATA_DIR" {
                return Some(dir.clone());
            }
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .expect("a valid configuration")
    }

    #[test]
    fn serve_keeps_a_master_key_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let first = master_key(Role::Serve, &mut cfg(dir.path(), &[])).unwrap();
        let path = dir.path().join("master-key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable only by its owner");
        }
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains(&first.to_base64()));
        // The next start reads it back.
        let again = master_key(Role::Serve, &mut cfg(dir.path(), &[])).unwrap();
        assert_eq!(again.to_base64(), first.to_base64());
        // The variable wins over the file.
        let set = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let k = master_key(
            Role::Serve,
            &mut cfg(dir.path(), &[("LIANDONG_MASTER_KEY", set)]),
        )
        .unwrap();
        assert_eq!(k.to_base64(), set);
        // A damaged file stops start-up, naming it.
        std::fs::write(&path, "# liandong master key\nAAEC\n").unwrap();
        let e = master_key(Role::Serve, &mut cfg(dir.path(), &[])).unwrap_err();
        assert!(
            e.to_string().contains("master-key") && e.to_string().contains("got 3 bytes"),
            "{e}"
        );
    }

    #[test]
    fn ingest_and_project_need_the_master_key() {
        let dir = tempfile::tempdir().unwrap();
        for role in [Role::Ingest, Role::Project] {
            let e = master_key(role, &mut cfg(dir.path(), &[])).unwrap_err();
            assert!(
                e.to_string().starts_with("LIANDONG_MASTER_KEY: required"),
                "{e}"
            );
        }
        assert!(!dir.path().join("master-key").exists(), "no file made");
    }
}
