//! `POST /v1/events` end to end over real HTTP: a server on port 0 with an embedded log in a
//! temporary directory and identity bindings in a temporary SQLite file. Every rejection case
//! of EVENTS.md, and where accepted and rejected events end up in the log.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use liandong_auth::ApiKeys;
use liandong_event::Schemas;
use liandong_identity::IdentityService;
use liandong_ingest::{
    router, IngestResponse, IngestState, IngestStats, MaxInFlight, RejectedEvent, Submission,
};
use liandong_log::{
    Delivered, EmbeddedLog, EventLog, KafkaConfig, KafkaLog, LogConsumer, LogError, Record, Stream,
};
use liandong_vault::{DataKeys, MasterKey, Vault};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::SqlitePool;

const INGEST_KEY: &str = "ingest-key-0123456789";
const ANALYST_KEY: &str = "analyst-key-0123456789";
const ADMIN_KEY: &str = "admin-key-0123456789ab";

/// One server with its own log and identity database.
struct Harness {
    url: String,
    client: reqwest::Client,
    log: Arc<EmbeddedLog>,
    pool: SqlitePool,
    state: IngestState,
    /// Where the data keys live (the read store), apart from the identity store.
    vault_store: liandong_store::ReadStore,
    data_keys: DataKeys,
    _dir: tempfile::TempDir,
}

/// How the log the server writes to behaves.
enum LogMode {
    Working,
    /// Appends to this stream fail; the other stream works.
    Failing(Stream, fn() -> LogError),
    /// A slow log: every append waits for a permit of the gate, then goes through.
    Gated(Arc<Gate>),
    /// Events go to this log instead (a real broker); dead letters to the embedded one.
    Events(Arc<dyn EventLog>),
}

/// Holds appends until the test opens it; counts the appends waiting.
struct Gate {
    permits: tokio::sync::Semaphore,
    waiting: AtomicUsize,
}

impl Gate {
    fn closed() -> Self {
        Gate {
            permits: tokio::sync::Semaphore::new(0),
            waiting: AtomicUsize::new(0),
        }
    }
}

struct GatedLog {
    inner: Arc<EmbeddedLog>,
    gate: Arc<Gate>,
}

#[async_trait::async_trait]
impl EventLog for GatedLog {
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
        self.gate.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.gate.permits.acquire().await.expect("gate open");
        permit.forget();
        self.gate.waiting.fetch_sub(1, Ordering::SeqCst);
        self.inner.append(stream, records).await
    }

    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError> {
        self.inner.end_offsets(stream).await
    }

    async fn consumer(
        &self,
        group: &str,
        stream: Stream,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        self.inner.consumer(group, stream).await
    }

    fn kind(&self) -> &'static str {
        "gated"
    }
}

/// Events to one log (a real broker), dead letters to another.
struct SplitLog {
    events: Arc<dyn EventLog>,
    dead_letters: Arc<EmbeddedLog>,
}

#[async_trait::async_trait]
impl EventLog for SplitLog {
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
        match stream {
            Stream::Events => self.events.append(stream, records).await,
            _ => self.dead_letters.append(stream, records).await,
        }
    }

    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError> {
        match stream {
            Stream::Events => self.events.end_offsets(stream).await,
            _ => self.dead_letters.end_offsets(stream).await,
        }
    }

    async fn consumer(
        &self,
        group: &str,
        stream: Stream,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        match stream {
            Stream::Events => self.events.consumer(group, stream).await,
            _ => self.dead_letters.consumer(group, stream).await,
        }
    }

    fn kind(&self) -> &'static str {
        "split"
    }
}

/// An [`EventLog`] that refuses appends to one stream and passes everything else to a real log.
struct FailingLog {
    inner: Arc<EmbeddedLog>,
    stream: Stream,
    error: fn() -> LogError,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl EventLog for FailingLog {
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
        if stream == self.stream {
            self.failed.store(true, Ordering::SeqCst);
            return Err((self.error)());
        }
        self.inner.append(stream, records).await
    }

    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError> {
        self.inner.end_offsets(stream).await
    }

    async fn consumer(
        &self,
        group: &str,
        stream: Stream,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        self.inner.consumer(group, stream).await
    }

    fn kind(&self) -> &'static str {
        "failing"
    }
}

fn unavailable() -> LogError {
    LogError::Unavailable {
        reason: "broker down".into(),
        retry_after: Duration::from_millis(1500),
    }
}

fn fatal() -> LogError {
    LogError::Fatal("corrupt file".into())
}

async fn start(mode: LogMode) -> Harness {
    start_with(mode, MaxInFlight::DEFAULT).await
}

async fn start_with(mode: LogMode, max_in_flight: MaxInFlight) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("embedded log");
    let served: Arc<dyn EventLog> = match mode {
        LogMode::Working => log.clone(),
        LogMode::Failing(stream, error) => Arc::new(FailingLog {
            inner: log.clone(),
            stream,
            error,
            failed: AtomicBool::new(false),
        }),
        LogMode::Gated(gate) => Arc::new(GatedLog {
            inner: log.clone(),
            gate,
        }),
        LogMode::Events(events) => Arc::new(SplitLog {
            events,
            dead_letters: log.clone(),
        }),
    };
    let db = dir.path().join("identity.db");
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .expect("sqlite");
    let identity = IdentityService::sqlite(pool.clone())
        .await
        .expect("identity");
    let keys = ApiKeys::parse(&format!(
        "ingest:{INGEST_KEY},analyst:{ANALYST_KEY},admin:{ADMIN_KEY}"
    ))
    .expect("keys");
    let vault_store = liandong_store::ReadStore::connect(&format!(
        "sqlite://{}",
        dir.path().join("read.db").display()
    ))
    .await
    .expect("read store");
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    // The erasure registry, which sealing consults, is one of the read store's tables.
    liandong_projections::migrate(&vault_store)
        .await
        .expect("read store tables");
    liandong_vault::migrate(&vault_store, &vault)
        .await
        .expect("vault tables");
    let data_keys = DataKeys::new(vault_store.clone(), vault);
    let state = IngestState::new(
        Arc::new(Schemas::load().expect("schemas")),
        served,
        identity,
        Arc::new(keys),
        data_keys.clone(),
    )
    .with_max_in_flight(max_in_flight);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness {
        url: format!("http://{addr}/v1/events"),
        client: reqwest::Client::new(),
        log,
        pool,
        state,
        vault_store,
        data_keys,
        _dir: dir,
    }
}

/// A response, with its body as JSON.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", self.body))
    }

    fn ok(&self) -> IngestResponse {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        serde_json::from_value(self.body.clone()).expect("a 200 answer")
    }
}

impl Harness {
    async fn send_raw(
        &self,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self.client.post(&self.url).body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn send(&self, batch: &Value) -> Answer {
        self.send_raw(
            Some(INGEST_KEY),
            Some("application/json"),
            serde_json::to_vec(batch).expect("json"),
        )
        .await
    }

    async fn events(&self, events: Vec<Value>) -> Answer {
        self.send(&json!({ "events": events })).await
    }

    async fn read(&self, stream: Stream) -> Vec<Delivered> {
        read_all(self.log.as_ref(), stream).await
    }

    async fn read_json(&self, stream: Stream) -> Vec<(Delivered, Value)> {
        self.read(stream)
            .await
            .into_iter()
            .map(|d| {
                let v = serde_json::from_slice(&d.payload).expect("JSON payload");
                (d, v)
            })
            .collect()
    }

    fn stats(&self) -> IngestStats {
        self.state.stats()
    }
}

async fn read_all(log: &dyn EventLog, stream: Stream) -> Vec<Delivered> {
    let end = log.end_offsets(stream).await.expect("end offsets")[0].1;
    let mut consumer = log.consumer("t", stream).await.expect("consumer");
    let mut out = Vec::new();
    while (out.len() as i64) < end {
        let got = consumer
            .poll(10_000, Duration::from_millis(200))
            .await
            .expect("poll");
        assert!(!got.is_empty(), "log ends early");
        out.extend(got);
    }
    out
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A valid event of `ty` for `user`.
fn ev(ty: &str, user: Value, props: Value) -> Value {
    json!({"event_id": uuid(), "type": ty, "occurred_at": "2025-11-24T10:00:05+08:00",
           "user": user, "props": props})
}

fn paid(user: Value, amount: i64) -> Value {
    ev(
        "order.paid",
        user,
        json!({"order_id": "A1", "amount_fen": amount}),
    )
}

// ---------------------------------------------------------------- whole-batch refusals

#[tokio::test]
async fn keys_decide_who_may_send() {
    let h = start(LogMode::Working).await;
    let body = serde_json::to_vec(&json!({"events": [paid(json!({"oa_openid": "o1"}), 1)]}))
        .expect("json");
    let ct = Some("application/json");

    let a = h.send_raw(None, ct, body.clone()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    assert!(a.error().contains("missing API key"), "{}", a.body);

    let a = h
        .send_raw(Some("not-a-key-not-a-key"), ct, body.clone())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    assert_eq!(a.error(), "unknown API key");

    let a = h.send_raw(Some(ANALYST_KEY), ct, body.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().contains("analyst"), "{}", a.body);

    assert_eq!(
        h.read(Stream::Events).await.len(),
        0,
        "refused before anything"
    );

    let a = h.send_raw(Some(ADMIN_KEY), ct, body).await;
    assert_eq!(a.ok().accepted, 1, "admin passes every check");
    assert_eq!(h.stats().refused, 3);
}

#[tokio::test]
async fn malformed_batches_are_400_with_a_message() {
    let h = start(LogMode::Working).await;
    let good = serde_json::to_vec(&json!({"events": [paid(json!({"oa_openid": "o1"}), 1)]}))
        .expect("json");

    let a = h
        .send_raw(Some(INGEST_KEY), Some("text/plain"), good.clone())
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.error(),
        "Content-Type must be application/json, got \"text/plain\""
    );

    let a = h.send_raw(Some(INGEST_KEY), None, good.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.error()
            .starts_with("Content-Type must be application/json"),
        "{}",
        a.body
    );

    let cases: [(&[u8], &str); 8] = [
        (b"{\"events\": [1,", "request body is not JSON: EOF while parsing a value at line 1 column 14"),
        (b"events=1", "request body is not JSON: expected value at line 1 column 1"),
        (b"[{\"type\": \"oa.follow\"}]", "request body is not a batch: expected an object {\"events\": [...]}, got an array"),
        (b"{\"evnts\": []}", "request body is not a batch: no events array: expected an object {\"events\": [...]}"),
        (b"{\"events\": {\"a\": 1}}", "request body is not a batch: events: expected an array of events, got an object"),
        (b"{\"events\": []}", "events is empty: expected 1 to 1000 events"),
        (b"{\"events\": [{}], \"sent_at\": \"2026-11-24 10:00\"}", "sent_at: expected an RFC 3339 date-time, e.g. 2026-11-24T10:00:05+08:00, got \"2026-11-24 10:00\""),
        (b"{\"events\": [{}], \"sent_at\": 1764000000}", "sent_at: expected an RFC 3339 date-time, e.g. 2026-11-24T10:00:05+08:00, got 1764000000"),
    ];
    for (body, expected) in cases {
        let a = h
            .send_raw(
                Some(INGEST_KEY),
                Some("application/json; charset=utf-8"),
                body.to_vec(),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(a.error(), expected);
    }

    // A valid sent_at is fine.
    let a = h
        .send(&json!({"sent_at": "2026-11-24T10:00:05+08:00", "events": [paid(json!({"oa_openid": "o1"}), 1)]}))
        .await;
    assert_eq!(a.ok().accepted, 1);

    assert_eq!(h.read(Stream::Events).await.len(), 1);
    assert_eq!(h.read(Stream::DeadLetter).await.len(), 0);
    let s = h.stats();
    assert_eq!((s.refused, s.batches), (10, 1));
}

#[tokio::test]
async fn oversized_batches_are_413_naming_the_limit() {
    let h = start(LogMode::Working).await;

    // Body over 2 MiB (valid JSON, so only the size is at fault).
    let pad = "x".repeat(2 * 1024 * 1024);
    let body =
        serde_json::to_vec(&json!({"events": [paid(json!({"oa_openid": "o1"}), 1)], "pad": pad}))
            .expect("json");
    let a = h
        .send_raw(Some(INGEST_KEY), Some("application/json"), body)
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.error(),
        "request body too large: the limit is 2097152 bytes (2 MiB)"
    );

    // 1001 events.
    let many: Vec<Value> = (0..1001)
        .map(|_| paid(json!({"oa_openid": "o1"}), 1))
        .collect();
    let a = h.events(many).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.error(),
        "too many events: 1001, the limit is 1000 events per batch"
    );

    // One event over 32 KiB, measured on its own bytes.
    let mut big = ev(
        "oa.menu.click",
        json!({"oa_openid": "o1"}),
        json!({"entry": "立即点餐"}),
    );
    big["context"] = json!({"blob": "y".repeat(33 * 1024)});
    let size = serde_json::to_string(&big).expect("json").len();
    let a = h
        .events(vec![paid(json!({"oa_openid": "o1"}), 1), big])
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.error(),
        format!("event 1 is too large: {size} bytes, the limit is 32768 bytes (32 KiB) per event")
    );

    // The limits are inclusive: exactly 1000 events are fine.
    let thousand: Vec<Value> = (0..1000)
        .map(|_| paid(json!({"oa_openid": "o1"}), 1))
        .collect();
    assert_eq!(h.events(thousand).await.ok().accepted, 1000);

    assert_eq!(h.read(Stream::Events).await.len(), 1000);
    assert_eq!(h.read(Stream::DeadLetter).await.len(), 0);
}

// ---------------------------------------------------------------- per-event outcomes

#[tokio::test]
async fn valid_events_are_accepted_and_rejected_ones_dead_lettered_with_their_reason() {
    let h = start(LogMode::Working).await;
    let future =
        (Utc::now() + chrono::Duration::hours(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut future_ev = ev("oa.unfollow", json!({"oa_openid": "o9"}), json!({}));
    future_ev["occurred_at"] = json!(future);
    let mut bad_id = ev("oa.unfollow", json!({"oa_openid": "o9"}), json!({}));
    bad_id["event_id"] = json!("not-a-uuid");
    let mut no_id = ev("oa.unfollow", json!({"oa_openid": "o9"}), json!({}));
    no_id.as_object_mut().expect("object").remove("event_id");
    let unknown_type = ev("oa.menu.hover", json!({"oa_openid": "o9"}), json!({}));
    let negative = paid(json!({"mp_openid": "m1"}), -5);
    let ok0 = paid(json!({"unionid": "u7"}), 100);
    let ok6 = ev(
        "mp.visit",
        json!({"mp_openid": "m1"}),
        json!({"page": "pages/index"}),
    );
    let out_of_range = r#"{"event_id": "6f1c1a9e-2f7a-4d38-9a43-1f1f5b7f4f10", "type": "order.paid", "amount": 1e999}"#;

    let body = format!(
        "{{\"events\": [{}, {}, {}, {}, {}, {}, {}, 42, {}]}}",
        ok0, negative, unknown_type, future_ev, bad_id, no_id, ok6, out_of_range
    );
    let a = h
        .send_raw(
            Some(INGEST_KEY),
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    let answer = a.ok();
    assert_eq!(answer.accepted, 2);

    let id = |v: &Value| v["event_id"].as_str().map(str::to_owned);
    let r = &answer.rejected;
    assert_eq!(
        r.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 7, 8]
    );
    assert_eq!(
        r[0],
        RejectedEvent {
            index: 1,
            event_id: id(&negative),
            error: "props.amount_fen: expected an integer >= 0, got -5".into(),
            status: None,
        }
    );
    assert!(
        r[1].error
            .starts_with("type: expected one of the catalogue's types"),
        "{}",
        r[1].error
    );
    assert!(r[1].error.contains("oa.menu.hover"), "{}", r[1].error);
    assert!(
        r[2].error
            .starts_with("occurred_at: expected a time at most 1 hour after the server's clock"),
        "{}",
        r[2].error
    );
    assert_eq!(
        (r[3].event_id.as_deref(), r[3].error.as_str()),
        (
            Some("not-a-uuid"),
            "event_id: expected a UUID, got \"not-a-uuid\""
        )
    );
    assert_eq!(
        (r[4].event_id.as_deref(), r[4].error.as_str()),
        (None, "event_id: required")
    );
    assert!(
        r[5].error
            .starts_with("(event): expected an object, got 42"),
        "{}",
        r[5].error
    );
    assert!(
        r[6].error
            .starts_with("(event): not valid JSON: number out of range"),
        "{}",
        r[6].error
    );

    // Accepted: in the events stream, normalized, keyed by person.
    let events = h.read_json(Stream::Events).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0.key, "u7");
    assert_eq!(Some(events[0].0.event_id.clone()), id(&ok0));
    assert_eq!(events[0].1["props"]["amount_fen"], 100);
    assert!(events[0].1["received_at"].is_string(), "{}", events[0].1);
    assert_eq!(events[1].0.key, "m1");
    assert_eq!(Some(events[1].0.event_id.clone()), id(&ok6));

    // Rejected: in the dead-letter stream with the same reason and the event as sent.
    let dead = h.read_json(Stream::DeadLetter).await;
    assert_eq!(dead.len(), r.len());
    for ((record, letter), rejected) in dead.iter().zip(r) {
        assert_eq!(letter["index"], rejected.index);
        assert_eq!(letter["error"], rejected.error.as_str());
        assert_eq!(letter["event_id"].as_str(), rejected.event_id.as_deref());
        assert_eq!(
            record.event_id,
            rejected.event_id.clone().unwrap_or_default()
        );
        assert!(letter["received_at"].is_string());
    }
    assert_eq!(dead[0].1["event"], negative);
    assert_eq!(dead[0].0.key, "m1");
    assert_eq!(dead[2].1["event"], future_ev);
    assert_eq!(dead[5].1["event"], 42);
    assert_eq!(
        dead[6].1["event"], out_of_range,
        "not a Value: kept as text"
    );
    assert!(dead[4].1.get("event_id").is_none());

    let s = h.stats();
    assert_eq!((s.batches, s.accepted, s.rejected), (1, 2, 7));
}

#[tokio::test]
async fn identity_conflicts_reject_the_event_and_keys_follow_the_person() {
    let h = start(LogMode::Working).await;
    let identified = ev(
        "member.identified",
        json!({"unionid": "u1", "oa_openid": "o1"}),
        json!({}),
    );
    let first = h.events(vec![identified.clone()]).await.ok();
    assert_eq!(first.accepted, 1);

    let conflict = paid(json!({"unionid": "u2", "oa_openid": "o1"}), 5);
    let via_oa = paid(json!({"oa_openid": "o1"}), 6);
    // In-batch: the first binding of o2 wins, the second is a conflict.
    let bind_o2 = ev(
        "member.identified",
        json!({"unionid": "u3", "mp_openid": "m2"}),
        json!({}),
    );
    let conflict_in_batch = ev(
        "member.identified",
        json!({"unionid": "u4", "mp_openid": "m2"}),
        json!({}),
    );
    let via_mp = ev(
        "mp.page_view",
        json!({"mp_openid": "m2"}),
        json!({"page": "p"}),
    );
    let unbound_oa = ev("oa.follow", json!({"oa_openid": "o5"}), json!({}));
    let mut profile = ev(
        "member.profile_updated",
        json!({"unionid": "u9", "oa_openid": "o1"}),
        json!({"phone": "13800138000", "address": "上海市", "level": 3}),
    );
    profile["context"] = json!({"page": "me"});

    let a = h
        .events(vec![
            conflict.clone(),
            via_oa.clone(),
            bind_o2.clone(),
            conflict_in_batch.clone(),
            via_mp.clone(),
            unbound_oa.clone(),
            profile.clone(),
        ])
        .await
        .ok();
    assert_eq!(a.accepted, 4);
    let errors: Vec<(usize, &str)> = a
        .rejected
        .iter()
        .map(|r| (r.index, r.error.as_str()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (
                0,
                "identity conflict: oa openid o1 is bound to unionid u1, not u2"
            ),
            (
                3,
                "identity conflict: mp openid m2 is bound to unionid u3, not u4"
            ),
            (
                6,
                "identity conflict: oa openid o1 is bound to unionid u1, not u9"
            ),
        ]
    );
    assert_eq!(
        a.rejected[0].event_id.as_deref(),
        conflict["event_id"].as_str()
    );

    // Keys: unionid; else the openid's bound unionid; else the openid.
    let keys: Vec<(String, String)> = h
        .read(Stream::Events)
        .await
        .into_iter()
        .map(|d| (d.event_id, d.key))
        .collect();
    let id = |v: &Value| v["event_id"].as_str().expect("id").to_owned();
    assert_eq!(
        keys,
        vec![
            (id(&identified), "u1".to_owned()),
            (id(&via_oa), "u1".to_owned()),
            (id(&bind_o2), "u3".to_owned()),
            (id(&via_mp), "u3".to_owned()),
            (id(&unbound_oa), "o5".to_owned()),
        ]
    );

    let dead = h.read_json(Stream::DeadLetter).await;
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0].1["event"], conflict);
    assert_eq!(dead[0].1["error"], errors[0].1);
    assert_eq!(dead[0].0.key, "u2");
    assert_eq!(dead[1].1["event"], conflict_in_batch);
    // Personal data is redacted in the dead letter, the rest is as sent.
    let mut redacted = profile.clone();
    redacted["props"]["phone"] = json!("[redacted]");
    redacted["props"]["address"] = json!("[redacted]");
    assert_eq!(dead[2].1["event"], redacted);
    let raw = String::from_utf8(h.read(Stream::DeadLetter).await[2].payload.clone()).expect("utf8");
    assert!(
        !raw.contains("13800138000") && !raw.contains("上海市"),
        "{raw}"
    );
}

#[tokio::test]
async fn personal_data_echoed_in_errors_stays_out_of_the_dead_letter_stream() {
    let h = start(LogMode::Working).await;
    let phone = "1".repeat(40);
    let bad = ev(
        "member.profile_updated",
        json!({"oa_openid": "o1"}),
        json!({"phone": phone, "address": 7}),
    );
    let a = h.events(vec![bad]).await.ok();
    // The sender sees its own value echoed, to find the problem.
    assert!(
        a.rejected[0].error.contains(&phone),
        "{}",
        a.rejected[0].error
    );

    let dead = h.read(Stream::DeadLetter).await;
    let raw = String::from_utf8(dead[0].payload.clone()).expect("utf8");
    assert!(!raw.contains(&phone), "{raw}");
    let letter: Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(
        letter["error"],
        "props.phone: expected a string of at most 32 characters, got [redacted]; \
         props.address: expected a string, got [redacted]"
    );
    assert_eq!(
        letter["event"]["props"],
        json!({"phone": "[redacted]", "address": "[redacted]"})
    );
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).expect("read file")));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn personal_data_is_sealed_before_it_reaches_the_log() {
    let h = start(LogMode::Working).await;
    let (phone, address) = ("13912345678", "杭州市西湖区文三路478号");
    let with_union = ev(
        "member.profile_updated",
        json!({"unionid": "u_sealed", "oa_openid": "o_sealed"}),
        json!({"phone": phone, "address": address, "level": "gold"}),
    );
    let openid_only = ev(
        "member.profile_updated",
        json!({"mp_openid": "m_sealed"}),
        json!({"phone": "13700001111"}),
    );
    let a = h.events(vec![with_union, openid_only]).await.ok();
    assert_eq!((a.accepted, a.rejected.len()), (2, 0));

    let logged = h.read(Stream::Events).await;
    assert_eq!(logged.len(), 2);
    for d in &logged {
        for secret in [phone, address, "12345678", "文三路", "13700001111"] {
            assert!(!contains(&d.payload, secret), "{secret} in the log record");
        }
    }
    let events: Vec<liandong_event::Event> = logged
        .iter()
        .map(|d| serde_json::from_slice(&d.payload).expect("an event"))
        .collect();
    let first = &events[0];
    assert_eq!(Value::Object(first.props.clone()), json!({"level": "gold"}));
    assert_eq!(first.sealed.len(), 2);
    let open = |s: &String| {
        let k = h.data_keys.clone();
        let s = s.clone();
        async move { k.open(&s).await.expect("opens") }
    };
    assert_eq!(open(&first.sealed["phone"]).await.as_deref(), Some(phone));
    assert_eq!(
        open(&first.sealed["address"]).await.as_deref(),
        Some(address)
    );
    // Under the data key of the unionid, else the openid.
    let key_ref = |s: &str| s.split(':').nth(1).expect("ld1:<key_ref>:…").to_owned();
    assert_eq!(
        key_ref(&first.sealed["phone"]),
        h.data_keys.key_ref("u_sealed")
    );
    let second = &events[1];
    assert!(second.props.is_empty(), "{:?}", second.props);
    assert_eq!(
        key_ref(&second.sealed["phone"]),
        h.data_keys.key_ref("m_sealed")
    );
    assert_eq!(
        open(&second.sealed["phone"]).await.as_deref(),
        Some("13700001111")
    );
    // Nor on disk, in any file of the log.
    for (path, bytes) in files_under(&h._dir.path().join("log")) {
        for secret in [phone, address, "13700001111"] {
            assert!(!contains(&bytes, secret), "{secret} in {}", path.display());
        }
    }
}

#[tokio::test]
async fn data_key_store_unavailable_is_503_and_nothing_is_appended() {
    let h = start(LogMode::Working).await;
    if let liandong_store::ReadStore::Sqlite(p) = &h.vault_store {
        p.close().await;
    }
    let profile = ev(
        "member.profile_updated",
        json!({"oa_openid": "o1"}),
        json!({"phone": "13812345678"}),
    );
    let a = h
        .events(vec![paid(json!({"oa_openid": "o1"}), 1), profile])
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert_eq!(a.headers["retry-after"], "2");
    assert!(
        a.error().contains("data key store unavailable"),
        "{}",
        a.body
    );
    assert_eq!(h.read(Stream::Events).await.len(), 0);
    assert_eq!(h.read(Stream::DeadLetter).await.len(), 0);
    assert_eq!(h.stats().unavailable, 1);
    // A batch without personal data needs no data key.
    let a = h.events(vec![paid(json!({"oa_openid": "o1"}), 1)]).await;
    assert_eq!(a.ok().accepted, 1);
}

#[tokio::test]
async fn duplicate_event_ids_are_all_accepted_dedup_is_downstream() {
    let h = start(LogMode::Working).await;
    let e = paid(json!({"oa_openid": "o1"}), 1);
    assert_eq!(h.events(vec![e.clone(), e.clone()]).await.ok().accepted, 2);
    assert_eq!(
        h.events(vec![e.clone()]).await.ok().accepted,
        1,
        "a retried batch"
    );
    let ids: Vec<String> = h
        .read(Stream::Events)
        .await
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    assert_eq!(ids, vec![e["event_id"].as_str().expect("id").to_owned(); 3]);
}

// ---------------------------------------------------------------- in-process adapters

#[tokio::test]
async fn in_process_items_take_the_same_path_as_a_batch() {
    let h = start(LogMode::Working).await;
    let good = paid(json!({"oa_openid": "o1"}), 1);
    let bad = paid(json!({"oa_openid": "o1"}), -5);
    let items = vec![
        Submission::Event(good.clone()),
        Submission::Event(bad.clone()),
        Submission::Unmappable {
            event_id: Some("wechat-1".into()),
            key: "o2".into(),
            reason: "MsgType text: not an event of the catalogue".into(),
            original: json!({"MsgType": "text", "Content": "hi"}),
        },
    ];
    let answer = h
        .state
        .ingest_values(items, Utc::now())
        .await
        .expect("stored");
    assert_eq!(answer.accepted, 1);
    assert_eq!(answer.rejected.len(), 2);
    assert_eq!(answer.rejected[0].index, 1);
    assert!(
        answer.rejected[0].error.contains("props.amount_fen"),
        "{answer:?}"
    );
    assert_eq!(answer.rejected[1].index, 2);
    assert_eq!(answer.rejected[1].event_id.as_deref(), Some("wechat-1"));

    let events = h.read(Stream::Events).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, good["event_id"].as_str().expect("id"));
    let dead = h.read_json(Stream::DeadLetter).await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[1].0.key, "o2");
    assert_eq!(
        dead[1].1["error"],
        "MsgType text: not an event of the catalogue"
    );
    assert_eq!(dead[1].1["event"]["Content"], "hi");
    let stats = h.stats();
    assert_eq!((stats.batches, stats.accepted, stats.rejected), (1, 1, 2));
}

#[tokio::test]
async fn in_process_items_see_the_log_refuse_like_a_batch() {
    let h = start(LogMode::Failing(Stream::Events, unavailable)).await;
    let err = h
        .state
        .ingest_values(
            vec![Submission::Event(paid(json!({"oa_openid": "o1"}), 1))],
            Utc::now(),
        )
        .await
        .expect_err("the log is down");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.stats().unavailable, 1);
}

// ---------------------------------------------------------------- when storage says no

#[tokio::test]
async fn log_unavailable_is_503_with_retry_after_and_nothing_accepted() {
    let h = start(LogMode::Failing(Stream::Events, unavailable)).await;
    let batch = vec![
        paid(json!({"oa_openid": "o1"}), 1),
        paid(json!({"oa_openid": "o1"}), -1),
    ];
    let a = h.events(batch).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers["retry-after"], "2", "1.5 s rounds up");
    assert!(a.error().contains("event log unavailable"), "{}", a.body);
    assert!(
        !a.error().contains("broker down"),
        "internal detail stays in the logs"
    );
    assert_eq!(h.read(Stream::Events).await.len(), 0);
    let s = h.stats();
    assert_eq!(
        (s.unavailable, s.accepted, s.rejected, s.batches),
        (1, 0, 0, 0)
    );

    // The dead-letter stream failing refuses the batch too, though its events made it.
    let h = start(LogMode::Failing(Stream::DeadLetter, unavailable)).await;
    let a = h.events(vec![paid(json!({"oa_openid": "o1"}), -1)]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers["retry-after"], "2");
    // A batch with nothing to dead-letter never asks that stream, so it is stored.
    assert_eq!(
        h.events(vec![paid(json!({"oa_openid": "o1"}), 1)])
            .await
            .ok()
            .accepted,
        1
    );
}

#[tokio::test]
async fn log_fatal_is_500() {
    let h = start(LogMode::Failing(Stream::Events, fatal)).await;
    let a = h.events(vec![paid(json!({"oa_openid": "o1"}), 1)]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(a.headers.get("retry-after").is_none());
    assert!(a.error().starts_with("internal error"), "{}", a.body);
    assert_eq!(h.stats().failed, 1);
}

#[tokio::test]
async fn identity_store_unavailable_is_503_and_nothing_is_appended() {
    let h = start(LogMode::Working).await;
    h.pool.close().await;
    let a = h
        .events(vec![
            paid(json!({"oa_openid": "o1"}), -1),
            ev(
                "member.identified",
                json!({"unionid": "u1", "oa_openid": "o1"}),
                json!({}),
            ),
        ])
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers["retry-after"], "2");
    assert!(
        a.error().contains("identity store unavailable"),
        "{}",
        a.body
    );
    assert_eq!(h.read(Stream::Events).await.len(), 0);
    assert_eq!(h.read(Stream::DeadLetter).await.len(), 0);
    assert_eq!(h.stats().unavailable, 1);
}

// ---------------------------------------------------------------- overload

/// A slow log (or identity store) holds batches in flight; beyond the bound, a batch is
/// answered `503` with `Retry-After` at once instead of waiting in memory. Nothing a `200`
/// answered is lost, and the refused batch, retried, is stored.
#[tokio::test]
async fn batches_beyond_the_in_flight_bound_are_503_and_nothing_accepted_is_lost() {
    let gate = Arc::new(Gate::closed());
    let h = Arc::new(start_with(LogMode::Gated(gate.clone()), MaxInFlight(2)).await);
    let batch = |n: i64| {
        (0..n)
            .map(|i| paid(json!({"oa_openid": format!("o{i}")}), 1 + i))
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (batch(2), batch(3), batch(4));
    let send = |events: Vec<Value>| {
        let h = h.clone();
        tokio::spawn(async move { h.events(events).await })
    };
    let first = send(a.clone());
    let second = send(b.clone());
    // Both admitted batches are waiting on the log.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gate.waiting.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "batches did not reach the log"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let refused = h.events(c.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(refused.error().contains("busy"), "{}", refused.body);
    assert_eq!(h.stats().unavailable, 1);

    // The log catches up: the admitted batches are stored and answered 200.
    gate.permits.add_permits(1000);
    assert_eq!(first.await.expect("first").ok().accepted, 2);
    assert_eq!(second.await.expect("second").ok().accepted, 3);
    // The client retries the refused batch, as Retry-After asks.
    assert_eq!(h.events(c.clone()).await.ok().accepted, 4);

    let stored: Vec<String> = h
        .read(Stream::Events)
        .await
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    let mut expected: Vec<String> = a
        .iter()
        .chain(&b)
        .chain(&c)
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect();
    let mut got = stored.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every accepted event once, nothing else");
    let s = h.stats();
    assert_eq!((s.batches, s.accepted, s.unavailable), (3, 9, 1));
}

/// A real broker behind a producer queue smaller than a batch: the queue does not grow, the
/// batch is answered `503` with `Retry-After`; a batch that fits is stored.
#[tokio::test]
async fn a_full_producer_queue_is_503_with_retry_after() {
    let Some(brokers) =
        liandong_testkit::required_env(liandong_testkit::KAFKA_VAR, "Kafka-protocol broker")
    else {
        return;
    };
    let kafka = KafkaLog::connect(KafkaConfig {
        brokers,
        topic_prefix: format!("ldtest-overload-{}", uuid::Uuid::new_v4()),
        partitions: 1,
        replication_factor: -1,
        client_options: vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("queue.buffering.max.messages".into(), "5".into()),
            // Records stay in the queue for a while, so a batch larger than it fills it.
            ("linger.ms".into(), "200".into()),
        ],
        create_topics: true,
    })
    .await
    .expect("broker");
    let kafka: Arc<dyn EventLog> = kafka;
    let h = start(LogMode::Events(kafka.clone())).await;
    let too_many: Vec<Value> = (0..20)
        .map(|i| paid(json!({"oa_openid": "o1"}), 1 + i))
        .collect();
    let a = h.events(too_many).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert_eq!(a.headers["retry-after"], "1");
    assert!(a.error().contains("event log unavailable"), "{}", a.body);

    let fits: Vec<Value> = (0..3)
        .map(|i| paid(json!({"oa_openid": "o2"}), 1 + i))
        .collect();
    let ids: Vec<String> = fits
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect();
    // Retried as a client does, once the queue has drained.
    let mut tries = 0;
    loop {
        let a = h.events(fits.clone()).await;
        if a.status == StatusCode::SERVICE_UNAVAILABLE && tries < 10 {
            tries += 1;
            let wait: u64 = a.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        assert_eq!(a.ok().accepted, 3);
        break;
    }
    // The accepted events are in the topic (with whatever the refused batch got in before the
    // queue filled, which its retry would write again: event ids dedupe downstream).
    let end: i64 = kafka
        .end_offsets(Stream::Events)
        .await
        .expect("end offsets")
        .iter()
        .map(|(_, e)| e)
        .sum();
    let mut consumer = kafka.consumer("t", Stream::Events).await.expect("consumer");
    let mut stored: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (stored.len() as i64) < end {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} of {end}",
            stored.len()
        );
        let got = consumer
            .poll(100, Duration::from_millis(500))
            .await
            .expect("poll");
        stored.extend(got.into_iter().map(|d| d.event_id));
    }
    for id in &ids {
        assert_eq!(
            stored.iter().filter(|s| *s == id).count(),
            1,
            "{id} stored once"
        );
    }
    assert!(
        stored.len() <= 5 + 3,
        "the queue bounded what got in: {}",
        stored.len()
    );
}
