//! liandong end to end, as users run it: the real binary, over HTTP, into a real log and a real
//! read store — the embedded defaults, and Kafka (a Kafka-protocol broker process) with
//! PostgreSQL. A shuffled stream with duplicates, late identity bindings and invalid events must
//! leave `events` and `member_profile` equal to the reference model of METRICS.md, with every
//! invalid event in the dead-letter stream; SIGKILLed processes must lose and double-count
//! nothing, and a PostgreSQL restart under a running projector must leave the same tables.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use liandong_event::{Event, Schemas};
use liandong_log::{EmbeddedLog, EventLog, KafkaConfig, KafkaLog, Stream};
use liandong_projections::read;
use liandong_store::ReadStore;
use liandong_testkit::{reference, required_env, scenario, server, TestStore, KAFKA_VAR};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const KEYS: &str = "ingest:e2e-ingest-key-0123456789,analyst:e2e-analyst-key-0123456789,support:e2e-support-key-0123456789,admin:e2e-admin-key-0123456789";
const INGEST: &str = "e2e-ingest-key-0123456789";
/// Every node of a cluster shares one master key (it wraps the data keys of personal data).
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SUPPORT: &str = "e2e-support-key-0123456789";

/// The tests that use PostgreSQL hold this for reading; the one that restarts it, for writing.
static PG: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
/// The same for the broker.
static BROKER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A liandong process; SIGKILLed when dropped.
struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// SIGKILL, the crash no code can react to.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(role: &str, env: &[(&str, String)], log_dir: &Path) -> Proc {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("{role}.log")))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .arg(role)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn,sqlx=warn")
        .env("LIANDONG_LISTEN", format!("127.0.0.1:{port}"))
        .env("LIANDONG_API_KEYS", KEYS)
        .env("LIANDONG_MASTER_KEY", MASTER_KEY)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("the liandong binary runs");
    Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_live(p: &mut Proc, log_dir: &Path) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{}/health/live", p.base)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!(
                "liandong exited with {status}; logs in {}",
                log_dir.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "liandong did not come up; logs in {}",
            log_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `events` in batches, retrying a batch on 503 as clients must; returns the rejections
/// (index in `events`, error).
async fn send(base: &str, events: &[Value], batch: usize) -> Vec<(usize, String)> {
    let client = reqwest::Client::new();
    let mut rejected = Vec::new();
    for (b, chunk) in events.chunks(batch).enumerate() {
        let body = json!({"sent_at": Utc::now().to_rfc3339(), "events": chunk});
        let mut tries = 0;
        let answer: Value = loop {
            let r = client
                .post(format!("{base}/v1/events"))
                .bearer_auth(INGEST)
                .json(&body)
                .send()
                .await
                .expect("ingestion answers");
            if r.status() == 503 && tries < 20 {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert_eq!(r.status(), 200, "batch {b}: {:?}", r.text().await);
            break r.json().await.unwrap();
        };
        for r in answer["rejected"].as_array().unwrap() {
            rejected.push((
                b * batch + r["index"].as_u64().unwrap() as usize,
                r["error"].as_str().unwrap().to_owned(),
            ));
        }
    }
    rejected
}

/// The total lag of the projections (records in the log not yet applied).
async fn lag(base: &str) -> i64 {
    // The status reads the broker's end offsets: under load an answer can be a 503; ask again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = async {
            let r = reqwest::Client::new()
                .get(format!("{base}/v1/status"))
                .bearer_auth(SUPPORT)
                .send()
                .await
                .ok()?;
            r.json::<Value>().await.ok()?["lag"].as_i64()
        };
        if let Some(lag) = answer.await {
            return lag;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/v1/status did not answer within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every projection has applied the whole log.
async fn wait_caught_up(base: &str, timeout: Duration) {
    server::wait_caught_up(&reqwest::Client::new(), base, SUPPORT, timeout).await;
}

/// The traffic of every test: valid events shuffled, some twice, bindings last, and invalid
/// events in between. Returns (what to send, the valid events, the invalid ones with the error
/// each must get).
fn traffic(seed: u64, members: usize) -> (Vec<Value>, Vec<Value>, Vec<(Value, &'static str)>) {
    let valid = scenario::events(&scenario::Shape {
        seed,
        members,
        events_per_member: 10,
        ..Default::default()
    });
    let mut stream = scenario::shuffled_with_duplicates(&valid, seed, true);
    let invalid = scenario::invalid_events();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (e, _) in &invalid {
        let at = rng.gen_range(0..stream.len());
        stream.insert(at, e.clone());
    }
    (stream, valid, invalid)
}

fn expected(
    valid: &[Value],
) -> (
    Vec<read::EventIdentity>,
    Vec<liandong_projections::member_profile::MemberProfile>,
) {
    let schemas = Schemas::load().unwrap();
    let now: DateTime<Utc> = Utc::now();
    let events: Vec<Event> = valid
        .iter()
        .map(|v| schemas.validate(v, now).unwrap())
        .collect();
    reference::compute(&events, chrono_tz::Asia::Shanghai)
}

async fn assert_read_models(store: &ReadStore, valid: &[Value]) {
    let tz = chrono_tz::Asia::Shanghai;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let want = reference::metrics(&liandong_testkit::validated(valid), tz, today);
    assert_eq!(
        reference::stored_metrics(store).await,
        want,
        "metric relations differ from the reference"
    );
    let (want_events, want_profiles) = expected(valid);
    let got_events = read::event_identities(store).await.unwrap();
    assert_eq!(
        got_events.len(),
        want_events.len(),
        "one row per distinct event_id"
    );
    assert_same("events", &got_events, &want_events);
    assert_same(
        "member_profile",
        &read::member_profiles(store).await.unwrap(),
        &want_profiles,
    );
}

/// Equal tables, or a failure that shows the rows that differ (not both tables).
fn assert_same<T: PartialEq + std::fmt::Debug>(table: &str, got: &[T], want: &[T]) {
    let extra: Vec<&T> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
    let missing: Vec<&T> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty() && got.len() == want.len(),
        "{table} differs from the reference ({} rows vs {}):\n  unexpected: {extra:#?}\n  missing: {missing:#?}",
        got.len(),
        want.len()
    );
}

fn assert_rejections(stream: &[Value], rejected: &[(usize, String)], invalid: &[(Value, &str)]) {
    assert_eq!(rejected.len(), invalid.len(), "{rejected:?}");
    for (i, err) in rejected {
        let want = invalid
            .iter()
            .find(|(e, _)| e == &stream[*i])
            .expect("only invalid events are rejected")
            .1;
        assert!(err.contains(want), "event {i}: {err:?} should say {want:?}");
    }
}

/// Every invalid event is in the dead-letter stream with its reason.
async fn assert_dead_letters(log: &dyn EventLog, invalid: &[(Value, &str)]) {
    let mut consumer = log
        .consumer(
            &format!("e2e-dlq-{}", uuid::Uuid::new_v4()),
            Stream::DeadLetter,
        )
        .await
        .unwrap();
    let mut found: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while found.len() < invalid.len() && Instant::now() < deadline {
        for r in consumer.poll(100, Duration::from_secs(1)).await.unwrap() {
            found.push(serde_json::from_slice(&r.payload).unwrap());
        }
    }
    for (event, reason) in invalid {
        let id = event["event_id"].as_str().unwrap();
        let dl = found
            .iter()
            .find(|d| d["event"]["event_id"] == id)
            .unwrap_or_else(|| panic!("{id} not dead-lettered: {found:?}"));
        assert!(dl["error"].as_str().unwrap().contains(reason), "{dl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_defaults_http_to_read_models() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("LIANDONG_DATA_DIR", dir.path().display().to_string())];
    let mut serve = spawn("serve", &env, dir.path());
    wait_live(&mut serve, dir.path()).await;
    let (stream, valid, invalid) = traffic(11, 60);
    let rejected = send(&serve.base, &stream, 150).await;
    assert_rejections(&stream, &rejected, &invalid);
    wait_caught_up(&serve.base, Duration::from_secs(60)).await;

    let store = ReadStore::connect(&format!("sqlite://{}/liandong.db", dir.path().display()))
        .await
        .unwrap();
    assert_read_models(&store, &valid).await;
    // The member lookup shows the same profile as the table.
    let some = read::member_profiles(&store)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.unionid.is_some())
        .unwrap();
    let r: Value = reqwest::Client::new()
        .get(format!("{}/v1/members/{}", serve.base, some.member_key))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["member_key"], some.member_key.as_str());
    assert_eq!(r["orders_paid"], some.orders_paid);
    serve.kill();

    // The embedded log is a file: the dead letters are in it, with their reasons.
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    assert_dead_letters(log.as_ref(), &invalid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_serve_killed_mid_stream_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LIANDONG_DATA_DIR", dir.path().display().to_string()),
        // Tiny batches: many transactions for a kill to land among.
        ("LIANDONG_PROJECTOR_BATCH", "3".to_owned()),
    ];
    let (stream, valid, _) = traffic(12, 150);
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut lags = Vec::new();
    for part in stream.chunks(stream.len() / 4 + 1) {
        let mut serve = spawn("serve", &env, dir.path());
        wait_live(&mut serve, dir.path()).await;
        send(&serve.base, part, 500).await;
        // Kill while the projector is still behind the log.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
        lags.push(lag(&serve.base).await);
        serve.kill();
    }
    assert!(
        lags.iter().any(|&l| l > 0),
        "no kill landed mid-stream: {lags:?}"
    );
    let mut serve = spawn("serve", &env, dir.path());
    wait_live(&mut serve, dir.path()).await;
    wait_caught_up(&serve.base, Duration::from_secs(180)).await;
    let store = ReadStore::connect(&format!("sqlite://{}/liandong.db", dir.path().display()))
        .await
        .unwrap();
    assert_read_models(&store, &valid).await;
}

struct KafkaPg {
    _pg: tokio::sync::RwLockReadGuard<'static, ()>,
    /// `None` for the test that restarts the broker (it holds the write side).
    _broker: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
    db: TestStore,
    brokers: String,
    prefix: String,
    dir: tempfile::TempDir,
}

impl KafkaPg {
    async fn new() -> Option<KafkaPg> {
        let broker = BROKER.read().await;
        KafkaPg::sharing(Some(broker)).await
    }

    async fn sharing(broker: Option<tokio::sync::RwLockReadGuard<'static, ()>>) -> Option<KafkaPg> {
        let brokers = required_env(KAFKA_VAR, "a Kafka-protocol broker")?;
        let pg = PG.read().await;
        let db = TestStore::postgres().await?;
        Some(KafkaPg {
            _pg: pg,
            _broker: broker,
            db,
            brokers,
            prefix: format!("e2e-{}", uuid::Uuid::new_v4().simple()),
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn env(&self, batch: usize) -> Vec<(&'static str, String)> {
        vec![
            ("LIANDONG_DATABASE_URL", self.db.url().to_owned()),
            ("LIANDONG_KAFKA_BROKERS", self.brokers.clone()),
            ("LIANDONG_TOPIC_PREFIX", self.prefix.clone()),
            ("LIANDONG_KAFKA_PARTITIONS", "4".into()),
            ("LIANDONG_KAFKA_REPLICATION_FACTOR", "1".into()),
            ("LIANDONG_KAFKA_OPTIONS", "session.timeout.ms=6000".into()),
            ("LIANDONG_PROJECTOR_BATCH", batch.to_string()),
            ("LIANDONG_DATA_DIR", self.dir.path().display().to_string()),
        ]
    }

    async fn log(&self) -> std::sync::Arc<KafkaLog> {
        KafkaLog::connect(KafkaConfig {
            brokers: self.brokers.clone(),
            topic_prefix: self.prefix.clone(),
            partitions: 4,
            replication_factor: 1,
            client_options: vec![("session.timeout.ms".into(), "6000".into())],
            create_topics: false,
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_postgres_http_to_read_models() {
    let Some(k) = KafkaPg::new().await else {
        return;
    };
    // The production shape: ingestion and projection in separate processes.
    let mut ingest = spawn("ingest", &k.env(2000), k.dir.path());
    wait_live(&mut ingest, k.dir.path()).await;
    let mut project = spawn("project", &k.env(2000), k.dir.path());
    wait_live(&mut project, k.dir.path()).await;
    let (stream, valid, invalid) = traffic(21, 60);
    let rejected = send(&ingest.base, &stream, 150).await;
    assert_rejections(&stream, &rejected, &invalid);
    wait_caught_up(&project.base, Duration::from_secs(120)).await;
    assert_read_models(k.db.store(), &valid).await;
    assert_dead_letters(k.log().await.as_ref(), &invalid).await;
    drop(project);
    drop(ingest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_projectors_killed_at_random_moments_lose_and_double_nothing() {
    let Some(k) = KafkaPg::new().await else {
        return;
    };
    let batch = 5;
    let mut ingest = spawn("ingest", &k.env(batch), k.dir.path());
    wait_live(&mut ingest, k.dir.path()).await;
    let (stream, valid, _) = traffic(22, 200);
    send(&ingest.base, &stream, 500).await;
    let total = lag(&ingest.base).await;

    // Small batches make many transactions; kill projectors at random instants among them,
    // until three kills have landed mid-stream.
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let mut lags = Vec::new();
    while lags.iter().filter(|&&l| l > 0 && l < total).count() < 3 {
        let mut project = spawn("project", &k.env(batch), k.dir.path());
        wait_live(&mut project, k.dir.path()).await;
        // Joining the group can take a session timeout (the killed member must expire first):
        // wait for the projector to make progress, then kill it at a random instant after.
        let start = lag(&ingest.base).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while lag(&ingest.base).await == start && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..200))).await;
        let before = lag(&ingest.base).await;
        project.kill();
        lags.push(before);
        assert!(
            before > 0 && lags.len() < 12,
            "the projectors finished before three kills landed mid-stream: {lags:?} of {total}"
        );
    }
    // Two projectors share the partitions through the consumer group to finish the job.
    let mut a = spawn("project", &k.env(batch), k.dir.path());
    wait_live(&mut a, k.dir.path()).await;
    let mut b = spawn("project", &k.env(batch), k.dir.path());
    wait_live(&mut b, k.dir.path()).await;
    wait_caught_up(&a.base, Duration::from_secs(300)).await;
    assert_read_models(k.db.store(), &valid).await;
}

/// PostgreSQL restarted while the projector is behind the log: the `serve` process keeps
/// running, its projector retries until the database is back, and resumes exactly after the
/// last committed batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_projection_the_projector_resumes_exactly() {
    let _exclusive = PG.write().await;
    let Some(restart) = required_env(
        "LIANDONG_TEST_PG_RESTART",
        "a command that restarts PostgreSQL",
    ) else {
        return;
    };
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LIANDONG_DATA_DIR", dir.path().display().to_string()),
        ("LIANDONG_DATABASE_URL", db.url().to_owned()),
        // Small batches: the projector is still busy when the database goes away.
        ("LIANDONG_PROJECTOR_BATCH", "5".to_owned()),
    ];
    let mut serve = spawn("serve", &env, dir.path());
    wait_live(&mut serve, dir.path()).await;
    let (stream, valid, _) = traffic(23, 150);
    send(&serve.base, &stream, 500).await;
    let behind = lag(&serve.base).await;
    assert!(behind > 0, "the projector caught up before the restart");
    let status = std::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .expect("the restart command runs");
    assert!(status.success(), "{restart:?} failed: {status}");
    wait_caught_up(&serve.base, Duration::from_secs(180)).await;
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "serve exited when PostgreSQL restarted; logs in {}",
        dir.path().display()
    );
    let store = ReadStore::connect(db.url()).await.unwrap();
    assert_read_models(&store, &valid).await;
}

/// The broker killed (SIGKILL) and restarted mid-stream, with two projector processes sharing
/// the partitions and events still being sent: nothing acknowledged is lost, nothing counts
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarted_mid_stream_two_projectors_lose_nothing() {
    let _exclusive = BROKER.write().await;
    let Some(restart) = required_env(
        "LIANDONG_TEST_KAFKA_RESTART",
        "a script that restarts the broker",
    ) else {
        return;
    };
    let Some(k) = KafkaPg::sharing(None).await else {
        return;
    };
    let batch = 20;
    let mut ingest = spawn("ingest", &k.env(batch), k.dir.path());
    wait_live(&mut ingest, k.dir.path()).await;
    let mut a = spawn("project", &k.env(batch), k.dir.path());
    wait_live(&mut a, k.dir.path()).await;
    let mut b = spawn("project", &k.env(batch), k.dir.path());
    wait_live(&mut b, k.dir.path()).await;
    let (stream, valid, _) = traffic(24, 120);
    let (first, second) = stream.split_at(stream.len() / 2);
    send(&ingest.base, first, 250).await;
    // Once the projectors are under way, kill the broker and start it again.
    let start = lag(&ingest.base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lag(&ingest.base).await == start && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::process::Command::new(&restart)
        .status()
        .expect("the restart script runs");
    assert!(status.success(), "{restart} failed: {status}");
    // Ingestion answers 503 until the broker is back; send() retries as clients must.
    send(&ingest.base, second, 250).await;
    wait_caught_up(&a.base, Duration::from_secs(300)).await;
    for p in [&mut ingest, &mut a, &mut b] {
        assert!(
            p.child.try_wait().unwrap().is_none(),
            "a process exited with the broker; logs in {}",
            k.dir.path().display()
        );
    }
    assert_read_models(k.db.store(), &valid).await;
}

/// A projector killed (SIGKILL) while a rebuild is half done: the live tables keep serving
/// exactly what they held, and the restarted projector resumes the rebuild where its stored
/// positions are (not from offset 0), swaps it in, and the rebuilt tables are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_killed_mid_rebuild_old_tables_serve_and_the_rebuild_resumes() {
    let _pg = PG.read().await;
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LIANDONG_DATA_DIR", dir.path().display().to_string()),
        ("LIANDONG_DATABASE_URL", db.url().to_owned()),
        // Small batches: the rebuild takes many transactions, for the kill to land among.
        ("LIANDONG_PROJECTOR_BATCH", "4".to_owned()),
    ];
    let mut serve = spawn("serve", &env, dir.path());
    wait_live(&mut serve, dir.path()).await;
    let (stream, valid, _) = traffic(31, 250);
    send(&serve.base, &stream, 500).await;
    wait_caught_up(&serve.base, Duration::from_secs(300)).await;
    let store = ReadStore::connect(db.url()).await.unwrap();
    assert_read_models(&store, &valid).await;

    let out = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["rebuild", "core", "--no-wait"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LIANDONG_API_KEYS", KEYS)
        .env("LIANDONG_MASTER_KEY", MASTER_KEY)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("liandong rebuild runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("rebuilding beside the live tables"), "{said}");

    // Wait until the rebuild is under way, and kill the projector in its middle.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let progress = liandong::rebuild::progress(&store, "core").await.unwrap();
        let (built, end) = progress.expect("the rebuild is not over before the kill");
        if end > 0 && built * 5 >= end {
            break built;
        }
        assert!(
            Instant::now() < deadline,
            "the rebuild does not progress: {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The status shows the rebuild and its progress, beside the live version.
    let status: Value = reqwest::Client::new()
        .get(format!("{}/v1/status", serve.base))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let core = &status["projections"][0];
    assert_eq!(core["projection"], "core", "{status}");
    assert_eq!(core["rebuild"]["version"], core["version"], "{status}");
    assert!(core["rebuild"]["lag"].as_i64().unwrap() > 0, "{status}");
    assert!(
        status["lag"].as_i64().unwrap() > 0,
        "a rebuild under way is lag: {status}"
    );
    serve.kill();
    let (at_kill, end) = liandong::rebuild::progress(&store, "core")
        .await
        .unwrap()
        .map(|(b, e)| (b.max(at_kill), e))
        .expect("the rebuild is not over at the kill");
    assert!(
        at_kill < end,
        "the kill landed after the rebuild: {at_kill}/{end}"
    );
    // The live tables still hold exactly what they held; the half-built ones are beside them.
    assert_read_models(&store, &valid).await;
    let ReadStore::Postgres(pool) = &store else {
        unreachable!()
    };
    let half: i64 =
        liandong_store::sqlx::query_scalar("SELECT count(*) FROM liandong_build_core.events")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(half > 0, "the rebuild wrote its own tables");

    // Restarted, the projector resumes the rebuild from its stored positions.
    let mut serve = spawn("serve", &env, dir.path());
    wait_live(&mut serve, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while let Some((built, _)) = liandong::rebuild::progress(&store, "core").await.unwrap() {
        assert!(
            built >= at_kill,
            "the rebuild started over: {built} built after the restart, {at_kill} before"
        );
        assert!(Instant::now() < deadline, "the rebuild did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_caught_up(&serve.base, Duration::from_secs(120)).await;
    assert_read_models(&store, &valid).await;
    let left: i64 = liandong_store::sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'liandong_build_core'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "the swap drops the rebuild's schema");
}
