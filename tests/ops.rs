//! What an operator relies on, against the real binary: `GET /metrics` of a running `serve`
//! after traffic (accepted and rejected events, a dead letter, an identity conflict) shows every
//! family with the values the traffic implies and no member's identifier; and the dead-letter
//! commands list what was rejected and replay it through today's validation — an event that now
//! passes is appended once however often it is replayed, one that still fails stays a dead
//! letter once, one refused for its key or holding redacted personal data is never replayed;
//! and the decisions an app asks for (`follow-prompt`, `channel`) reflect an event within
//! seconds of its acknowledgement. Both on the embedded log with SQLite and on Kafka (a broker process) with PostgreSQL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use liandong_store::ReadStore;
use liandong_testkit::{required_env, server, TestStore, KAFKA_VAR};
use serde_json::{json, Value};

const INGEST: &str = "ops-ingest-key-0123456789";
const CLIENT: &str = "ops-client-key-0123456789";
const SUPPORT: &str = "ops-support-key-0123456789";
const DECIDE: &str = "ops-decide-key-0123456789";
const KEYS: &str = "ingest:ops-ingest-key-0123456789,client:ops-client-key-0123456789,support:ops-support-key-0123456789,decide:ops-decide-key-0123456789";
const METRICS_KEY: &str = "ops-metrics-key-0123456789";

/// A `liandong serve`; SIGKILLed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
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

/// The settings of one deployment: the server's and the commands' alike.
struct Deployment {
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
    /// Kafka: the commands run beside the server; embedded: the server stops first.
    kafka: bool,
    _db: Option<TestStore>,
}

impl Deployment {
    fn embedded() -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        Deployment {
            env: vec![(
                "LIANDONG_DATA_DIR",
                dir.path().join("data").display().to_string(),
            )],
            dir,
            kafka: false,
            _db: None,
        }
    }

    /// Kafka and PostgreSQL, or `None` (with a SKIPPED line) when either is not configured.
    async fn kafka() -> Option<Deployment> {
        let broker = required_env(KAFKA_VAR, "a Kafka-protocol broker")?;
        let db = TestStore::postgres().await?;
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("ops{}", uuid::Uuid::new_v4().simple());
        Some(Deployment {
            env: vec![
                (
                    "LIANDONG_DATA_DIR",
                    dir.path().join("data").display().to_string(),
                ),
                ("LIANDONG_KAFKA_BROKERS", broker),
                ("LIANDONG_TOPIC_PREFIX", prefix),
                ("LIANDONG_KAFKA_PARTITIONS", "3".into()),
                ("LIANDONG_DATABASE_URL", db.url().to_owned()),
            ],
            dir,
            kafka: true,
            _db: Some(db),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_liandong"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn,sqlx=warn")
            .env("LIANDONG_API_KEYS", KEYS)
            .env(
                "LIANDONG_MASTER_KEY",
                liandong_testkit::TEST_MASTER_KEY.to_owned(),
            )
            .env("LIANDONG_METRICS_KEY", METRICS_KEY)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(self.dir.path());
        c
    }

    async fn serve(&self) -> Serve {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        let child = self
            .command(&["serve"])
            .env("LIANDONG_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("the liandong binary runs");
        let mut serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/health/live", serve.base)).await {
                if r.status().is_success() {
                    return serve;
                }
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("liandong serve exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not come up: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Runs `liandong <args>` and returns its stdout; fails the test unless it succeeds.
    fn run(&self, args: &[&str]) -> String {
        let out = self
            .command(args)
            .output()
            .expect("the liandong binary runs");
        assert!(
            out.status.success(),
            "liandong {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.run(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("liandong {args:?}: {e}: {text}"))
    }

    async fn store(&self) -> ReadStore {
        let url = self
            .env
            .iter()
            .find(|(k, _)| *k == "LIANDONG_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("sqlite://{}/data/liandong.db", self.dir.path().display()));
        ReadStore::connect(&url).await.expect("the read store")
    }
}

fn visit(event_id: &str, user: Value, occurred_at: &str) -> Value {
    json!({
        "event_id": event_id, "type": "mp.visit", "occurred_at": occurred_at,
        "user": user, "source": "from=menu&type=home",
        "props": {"page": "pages/index/index"}
    })
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `POST /v1/events` with `key`; the answer's body (a 200 is asserted).
async fn post(base: &str, key: &str, events: &[Value]) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .expect("ingestion answers");
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The samples of a Prometheus text exposition: (name, labels, value).
fn samples(text: &str) -> Vec<(String, Vec<(String, String)>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().expect("a number"))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include `with`.
fn value(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, labels, _)| {
            n == name
                && with
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .collect();
    assert!(
        !matching.is_empty(),
        "/metrics has no {name} with {with:?}:\n{text}"
    );
    matching.iter().sum()
}

async fn metrics_after_traffic(d: Deployment) {
    let serve = d.serve().await;
    let http = reqwest::Client::new();
    let now = Utc::now().to_rfc3339();
    let (openid, unionid, other_unionid) = (
        "o_opsMetricsOpenid01",
        "u_opsMetricsUnion01",
        "u_opsMetricsUnion02",
    );
    let answer = post(
        &serve.base,
        INGEST,
        &[
            visit(
                &id(),
                json!({"mp_openid": openid, "unionid": unionid}),
                &now,
            ),
            visit(&id(), json!({"mp_openid": openid}), &now),
            visit(&id(), json!({"mp_openid": "o_opsMetricsOpenid02"}), &now),
            // Invalid: no page.
            json!({"event_id": id(), "type": "mp.visit", "occurred_at": now,
                   "user": {"mp_openid": openid}, "props": {}}),
            // The openid is bound to another unionid for life.
            visit(
                &id(),
                json!({"mp_openid": openid, "unionid": other_unionid}),
                &now,
            ),
        ],
    )
    .await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["rejected"].as_array().unwrap().len(), 2, "{answer}");
    server::wait_caught_up(&http, &serve.base, SUPPORT, Duration::from_secs(60)).await;
    // A member lookup: its URL names the member, its route does not.
    let member = http
        .get(format!("{}/v1/members/mp:o_opsMetricsOpenid02", serve.base))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), 200);

    // Its own key: none, or a wrong one, is a 401.
    for key in [None, Some("ops-wrong-key-0123456789")] {
        let mut r = http.get(format!("{}/metrics", serve.base));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        assert_eq!(r.send().await.unwrap().status(), 401);
    }
    let r = http
        .get(format!("{}/metrics", serve.base))
        .bearer_auth(METRICS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();

    let accepted = value(
        &text,
        "liandong_ingest_events_accepted_total",
        &[("type", "mp.visit")],
    );
    assert_eq!(accepted, 3.0);
    let schema = [("type", "mp.visit"), ("reason", "schema")];
    assert_eq!(
        value(&text, "liandong_ingest_events_rejected_total", &schema),
        1.0
    );
    let conflict = [("type", "mp.visit"), ("reason", "identity_conflict")];
    assert_eq!(
        value(&text, "liandong_ingest_events_rejected_total", &conflict),
        1.0
    );
    assert_eq!(value(&text, "liandong_identity_conflicts_total", &[]), 1.0);
    assert_eq!(
        value(
            &text,
            "liandong_dead_letters_total",
            &[("reason", "schema")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "liandong_dead_letters_total",
            &[("reason", "identity_conflict")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "liandong_ingest_requests_total",
            &[("outcome", "ok")]
        ),
        1.0
    );
    let events_route = [
        ("method", "POST"),
        ("route", "/v1/events"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&text, "liandong_http_requests_total", &events_route),
        1.0
    );
    let lookup = [
        ("method", "GET"),
        ("route", "/v1/members/{member_key}"),
        ("status", "200"),
    ];
    assert_eq!(value(&text, "liandong_http_requests_total", &lookup), 1.0);
    // The 401s of /metrics, by route, not by URL.
    assert_eq!(
        value(
            &text,
            "liandong_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        2.0
    );
    let post_events = [("method", "POST"), ("route", "/v1/events")];
    assert_eq!(
        value(
            &text,
            "liandong_http_request_duration_seconds_count",
            &post_events
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "liandong_http_request_duration_seconds_sum",
            &post_events
        ) > 0.0
    );
    for stream in ["events", "dead-letter"] {
        let s = [("stream", stream), ("outcome", "ok")];
        assert_eq!(
            value(&text, "liandong_log_append_duration_seconds_count", &s),
            1.0
        );
        assert!(value(&text, "liandong_log_append_duration_seconds_sum", &s) > 0.0);
    }
    assert_eq!(
        value(
            &text,
            "liandong_log_appended_records_total",
            &[("stream", "events")]
        ),
        3.0
    );
    let core = [("projection", "core")];
    assert_eq!(
        value(&text, "liandong_projector_events_applied_total", &core),
        3.0
    );
    assert_eq!(
        value(&text, "liandong_projector_batch_events_sum", &core),
        3.0
    );
    assert!(value(&text, "liandong_projector_batch_events_count", &core) >= 1.0);
    assert!(
        value(
            &text,
            "liandong_projector_batch_duration_seconds_sum",
            &core
        ) > 0.0
    );
    // Caught up: no lag, on every partition, and the whole log applied.
    assert_eq!(value(&text, "liandong_projection_lag_records", &core), 0.0);
    let partitions = samples(&text)
        .into_iter()
        .filter(|(n, _, _)| n == "liandong_projection_partition_lag_records")
        .count();
    assert_eq!(partitions, if d.kafka { 3 } else { 1 }, "{text}");
    assert_eq!(
        value(&text, "liandong_projection_progress_ratio", &core),
        1.0
    );
    assert_eq!(
        value(&text, "liandong_build_info", &[("role", "serve")]),
        1.0
    );
    // No member data: no identifier of the traffic, and no route but templates.
    for id in [openid, unionid, other_unionid, "o_opsMetricsOpenid02"] {
        assert!(!text.contains(id), "/metrics names {id}");
    }
    // Every family has its HELP line.
    for (name, _, _) in samples(&text) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_running_serve_after_traffic_embedded() {
    metrics_after_traffic(Deployment::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_running_serve_after_traffic_kafka_postgres() {
    if let Some(d) = Deployment::kafka().await {
        metrics_after_traffic(d).await;
    }
}

/// How long an app may wait for a decision to reflect an event it was told was accepted.
const DECISION_FRESHNESS: Duration = Duration::from_secs(10);

/// Asks `path` with the decide key until `done` holds for the answer; returns the answer and
/// the time since `since`. Fails the test after [`DECISION_FRESHNESS`].
async fn decision_until(
    base: &str,
    path: &str,
    since: Instant,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let http = reqwest::Client::new();
    loop {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(DECIDE)
            .send()
            .await
            .expect("the decision answers");
        assert_eq!(r.status(), 200, "{path}");
        let answer: Value = r.json().await.expect("JSON");
        if done(&answer) {
            return (answer, since.elapsed());
        }
        assert!(
            since.elapsed() < DECISION_FRESHNESS,
            "{path} still answers {answer} {:?} after the event was acknowledged",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The decisions of a running `serve` follow a member's events within seconds of their
/// acknowledgement: a shown follow prompt keeps the next one away until exactly 24 hours
/// later, and turning activity notifications off leaves no channel for an activity message
/// while a service message still goes.
async fn decisions_follow_events(d: Deployment) {
    let serve = d.serve().await;
    let openid = format!("fresh{}", uuid::Uuid::new_v4().simple());
    let member = format!("mp:{openid}");
    let prompt_path = format!("/v1/members/{member}/follow-prompt");
    let activity_path = format!("/v1/members/{member}/channel?purpose=activity&urgent=false");
    let (before, _) = decision_until(&serve.base, &prompt_path, Instant::now(), |_| true).await;
    assert_eq!(
        (&before["show"], &before["reason"]),
        (&json!(true), &json!("eligible")),
        "an unknown member may be prompted"
    );

    let shown_at = Utc::now();
    let shown = json!({"event_id": id(), "type": "mp.follow_prompt.shown",
        "occurred_at": shown_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "user": {"mp_openid": openid}, "props": {"placement": "home"}});
    let acked = Instant::now();
    post(&serve.base, INGEST, &[shown]).await;
    let (answer, prompt_latency) = decision_until(&serve.base, &prompt_path, acked, |a| {
        a["reason"] == "prompted_within_24h"
    })
    .await;
    assert_eq!(answer["show"], json!(false));
    assert_eq!(
        answer["allowed_again_at"],
        json!((shown_at + chrono::Duration::hours(24))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        "allowed again 24 hours after the prompt"
    );

    let off = json!({"event_id": id(), "type": "member.preferences_changed",
        "occurred_at": Utc::now().to_rfc3339(), "user": {"mp_openid": openid},
        "props": {"activity_notifications": false}});
    let acked = Instant::now();
    post(&serve.base, INGEST, &[off]).await;
    let (answer, channel_latency) = decision_until(&serve.base, &activity_path, acked, |a| {
        a["reason"] == "notifications_off"
    })
    .await;
    assert_eq!(answer["channel"], Value::Null, "no activity message");
    let (service, _) = decision_until(
        &serve.base,
        &format!("/v1/members/{member}/channel?purpose=service&urgent=true"),
        Instant::now(),
        |_| true,
    )
    .await;
    assert_eq!(
        service["channel"],
        json!("mp_notify"),
        "a service notification still goes"
    );
    println!(
        "decisions after acknowledgement: follow prompt {prompt_latency:?}, channel {channel_latency:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_events_within_seconds_embedded() {
    decisions_follow_events(Deployment::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_events_within_seconds_kafka_postgres() {
    if let Some(d) = Deployment::kafka().await {
        decisions_follow_events(d).await;
    }
}

/// The outcome of each dead letter of a `replay --json`, by event id.
fn outcomes(summary: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = summary["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn count(store: &ReadStore, sql: &str) -> i64 {
    match store {
        ReadStore::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        ReadStore::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
    }
}

async fn dead_letters_listed_and_replayed(d: Deployment) {
    let mut serve = Some(d.serve().await);
    let base = serve.as_ref().unwrap().base.clone();
    let now = Utc::now();
    let user = json!({"mp_openid": "o_opsDeadLetter01"});
    let (good, broken, early, scoped, personal) = (id(), id(), id(), id(), id());
    // More than an hour ahead when sent: rejected now, valid a few seconds later (a sender's
    // clock that ran fast).
    let ahead = (now + chrono::Duration::seconds(3600 + 6)).to_rfc3339();
    let answer = post(
        &base,
        INGEST,
        &[
            visit(&good, user.clone(), &now.to_rfc3339()),
            json!({"event_id": broken, "type": "mp.visit", "occurred_at": now.to_rfc3339(),
                   "user": user, "props": {}}),
            visit(&early, user.clone(), &ahead),
            json!({"event_id": personal, "type": "member.profile_updated",
                   "occurred_at": now.to_rfc3339(), "user": user,
                   "props": {"phone": "13800138000", "level": ["gold"]}}),
        ],
    )
    .await;
    assert_eq!(answer["accepted"], 1, "{answer}");
    // A client key may not send an order.
    let answer = post(
        &base,
        CLIENT,
        &[
            json!({"event_id": scoped, "type": "order.paid", "occurred_at": now.to_rfc3339(),
                 "user": user, "props": {"order_id": "A1", "amount_fen": 100}}),
        ],
    )
    .await;
    assert_eq!(answer["rejected"][0]["status"], 403, "{answer}");
    let http = reqwest::Client::new();
    server::wait_caught_up(&http, &base, SUPPORT, Duration::from_secs(60)).await;
    if !d.kafka {
        // The embedded log is one process's.
        let out = d.command(&["dead-letter", "list"]).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("stop `liandong serve` first"), "{err}");
        serve = None;
    }

    // list: every dead letter, with its reason; the filters select.
    let all = d.json(&["dead-letter", "list", "--json"]);
    let listed: Vec<(String, String)> = {
        let mut v: Vec<(String, String)> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["event_id"].as_str().unwrap().to_owned(),
                    l["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut expected = vec![
        (broken.clone(), "schema".to_owned()),
        (early.clone(), "schema".to_owned()),
        (personal.clone(), "schema".to_owned()),
        (scoped.clone(), "client_scope".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed, expected, "{all:#}");
    let personal_letter = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["event_id"] == personal.as_str())
        .unwrap();
    assert_eq!(personal_letter["event"]["props"]["phone"], "[redacted]");
    let scoped_only = d.json(&["dead-letter", "list", "--json", "--reason", "client_scope"]);
    assert_eq!(scoped_only.as_array().unwrap().len(), 1);
    assert_eq!(scoped_only[0]["event_id"], scoped.as_str());
    assert_eq!(scoped_only[0]["type"], "order.paid");
    let visits = d.json(&["dead-letter", "list", "--json", "--type", "mp.visit"]);
    assert_eq!(visits.as_array().unwrap().len(), 2, "{visits:#}");
    let later = (Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let none = d.json(&["dead-letter", "list", "--json", "--since", &later]);
    assert_eq!(none, json!([]));
    let recent = d.json(&["dead-letter", "list", "--json", "--since", "1h"]);
    assert_eq!(recent.as_array().unwrap().len(), 4);
    let table = d.run(&["dead-letter", "list", "--reason", "client_scope"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&scoped) && table.ends_with("1 dead letter\n"),
        "{table}"
    );

    // Wait until the early event is no longer more than an hour ahead.
    let valid_from = now + chrono::Duration::seconds(7);
    while Utc::now() < valid_from {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One dead letter by its id: only it is tried.
    let broken_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["event_id"] == broken.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = d.json(&["dead-letter", "replay", "--json", "--id", &broken_id]);
    assert_eq!(
        outcomes(&one),
        vec![(broken.clone(), "still_failing".to_owned())],
        "{one:#}"
    );
    let first = d.json(&["dead-letter", "replay", "--json"]);
    let mut expected = vec![
        (broken.clone(), "still_failing".to_owned()),
        (early.clone(), "appended".to_owned()),
        (personal.clone(), "skipped".to_owned()),
        (scoped.clone(), "skipped".to_owned()),
    ];
    expected.sort();
    assert_eq!(outcomes(&first), expected, "{first:#}");
    assert_eq!(first["appended"], 1);
    // Twice: nothing is appended again; what still fails is tried again, and still fails.
    let second = d.json(&["dead-letter", "replay", "--json"]);
    let mut expected = vec![
        (broken.clone(), "still_failing".to_owned()),
        (early.clone(), "skipped".to_owned()),
        (personal.clone(), "skipped".to_owned()),
        (scoped.clone(), "skipped".to_owned()),
    ];
    expected.sort();
    assert_eq!(outcomes(&second), expected, "{second:#}");
    assert_eq!(second["appended"], 0);
    // The still-failing event stays one dead letter; list shows what the replay did.
    let after = d.json(&["dead-letter", "list", "--json"]);
    assert_eq!(after.as_array().unwrap().len(), 4, "{after:#}");
    let replay_of = |event_id: &str| {
        after
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["event_id"] == event_id)
            .unwrap()["replay"]["outcome"]
            .clone()
    };
    assert_eq!(replay_of(&early), "appended");
    assert_eq!(replay_of(&broken), "still_failing");
    assert_eq!(replay_of(&scoped), Value::Null);

    // The replayed event is in the log once and in the read models once.
    let serve = match serve {
        Some(s) => s,
        None => d.serve().await,
    };
    server::wait_caught_up(&http, &serve.base, SUPPORT, Duration::from_secs(60)).await;
    let status: Value = http
        .get(format!("{}/v1/status", serve.base))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log_records: i64 = status["projections"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end"].as_i64().unwrap())
        .sum();
    assert_eq!(
        log_records, 2,
        "the good event and the replayed one: {status}"
    );
    let store = d.store().await;
    assert_eq!(count(&store, "SELECT count(*) FROM events").await, 2);
    let sql = format!("SELECT count(*) FROM events WHERE CAST(event_id AS TEXT) = '{early}'");
    assert_eq!(count(&store, &sql).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_once_embedded() {
    dead_letters_listed_and_replayed(Deployment::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_once_kafka_postgres() {
    if let Some(d) = Deployment::kafka().await {
        dead_letters_listed_and_replayed(d).await;
    }
}
