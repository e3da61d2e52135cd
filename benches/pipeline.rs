//! End-to-end throughput of liandong's two write paths, each beside a baseline measured in the
//! same run against the same services, so the ratio says how much of the services' own speed
//! the product keeps (absolute numbers on a shared 2-core machine mean little on their own):
//!
//! a. HTTP ingestion into Kafka (`liandong::start(Role::Ingest, ..)` in-process) against a bare
//!    rdkafka `FutureProducer` loop with the same delivery guarantees.
//! b. The core projector from Kafka into PostgreSQL against a PostgreSQL `COPY` of the same rows
//!    into a table with the same columns and indexes.
//!
//! Prints a table and writes `target/bench/pipeline.json`. Needs LIANDONG_TEST_KAFKA (a
//! Kafka-protocol broker) and LIANDONG_TEST_DATABASE_URL (a PostgreSQL admin URL); the parts a
//! missing service would need are skipped with a message, and the run still exits 0.
//!
//! Knobs: BENCH_EVENTS (100000), BENCH_CLIENTS (8), BENCH_PARTITIONS (12), BENCH_MAX_BATCH (2000). See benches/README.md.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::Utc;
use liandong::{Config, Role};
use liandong_event::{Event, Schemas};
use liandong_log::{EventLog, KafkaConfig, KafkaLog, Record, Stream};
use liandong_projections::{CoreProjection, Projection};
use liandong_projector::{Projector, ProjectorConfig};
use liandong_store::ReadStore;
use liandong_testkit::scenario::{self, Shape};
use liandong_testkit::{TestStore, KAFKA_VAR, PG_URL_VAR};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

const INGEST_KEY: &str = "bench-ingest-key-0123456789";
/// EVENTS.md allows up to 1000 per request; 500 is what the brief (and a typical SDK) sends.
const BATCH: usize = 500;
/// Records per `KafkaLog::append` when pre-filling: well under librdkafka's 100k local queue.
const PREFILL_CHUNK: usize = 5000;
/// The projector's batch size under test: BENCH_MAX_BATCH, else 2000 (the product's default).
/// Smaller batches, as live traffic brings them, give part d more batches to apply at once.
fn max_batch() -> usize {
    env_usize("BENCH_MAX_BATCH", 2000).max(1)
}
/// A bench run should take minutes; a projector this far behind is a finding, not a figure.
const PROJECTOR_TIMEOUT: Duration = Duration::from_secs(600);

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: expected a positive integer, got {v:?}")),
        _ => default,
    }
}

fn env_service(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A count with thousands separators, so the table reads at a glance.
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// One printed row: a figure, liandong's value, the baseline's, and their ratio.
struct Row {
    figure: String,
    liandong: String,
    baseline: String,
    ratio: String,
}

#[tokio::main]
async fn main() {
    // Quiet by default (the table is the output); RUST_LOG=info shows the product's own logs.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if let Err(e) = run().await {
        eprintln!("pipeline bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let n = env_usize("BENCH_EVENTS", 100_000);
    let clients = env_usize("BENCH_CLIENTS", 8).max(1);
    let partitions = env_usize("BENCH_PARTITIONS", 12).max(1) as i32;
    let kafka = env_service(KAFKA_VAR);
    let pg = env_service(PG_URL_VAR);
    // BENCH_PARTS=a or =b runs one part alone (both by default), e.g. to look into one of them.
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "a,b,c".into());
    let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    ensure!(n > 0, "BENCH_EVENTS must be at least 1");

    println!(
        "liandong pipeline bench: {n} events, {clients} HTTP clients, batches of {BATCH}, \
         {partitions} partitions, projector max_batch {}",
        max_batch()
    );
    println!(
        "services: kafka={} postgres={} (kafka options: {:?})",
        kafka.as_deref().unwrap_or("(unset)"),
        pg.as_deref().map(redact_url).unwrap_or("(unset)".into()),
        kafka_options()
    );

    let gen_started = Instant::now();
    let events = scenario_events(n);
    let schemas = Schemas::load().context("compiling the event schemas")?;
    // One clock reading, as ingestion takes one per batch; the scenario ends a day before now.
    let now = Utc::now();
    let validated: Vec<Event> = events
        .iter()
        .map(|v| schemas.validate(v, now))
        .collect::<Result<_, _>>()
        .context("the scenario made an invalid event")?;
    let wire: Vec<Vec<u8>> = events
        .iter()
        .map(|v| serde_json::to_vec(v).expect("a Value serializes"))
        .collect();
    let normalized: Vec<Vec<u8>> = validated
        .iter()
        .map(|e| serde_json::to_vec(e).expect("an Event serializes"))
        .collect();
    let wire_bytes: usize = wire.iter().map(Vec::len).sum();
    let normalized_bytes: usize = normalized.iter().map(Vec::len).sum();
    println!(
        "generated and validated {n} scenario events in {:.1}s ({} types; {:.0} B/event as sent, \
         {:.0} B/event as appended)\n",
        gen_started.elapsed().as_secs_f64(),
        events
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        wire_bytes as f64 / n as f64,
        normalized_bytes as f64 / n as f64,
    );

    let mut rows: Vec<Row> = Vec::new();
    let mut report = json!({
        "events": n,
        "clients": clients,
        "batch": BATCH,
        "partitions": partitions,
        "projector_max_batch": max_batch(),
        "kafka_options": kafka_options(),
        "bytes_per_event_sent": wire_bytes as f64 / n as f64,
        "bytes_per_event_appended": normalized_bytes as f64 / n as f64,
        "skipped": [],
    });
    let mut skipped: Vec<String> = Vec::new();

    // a. HTTP ingestion -> Kafka
    match &kafka {
        _ if !part("a") => skipped.push("a. HTTP ingestion -> Kafka: not in BENCH_PARTS".into()),
        None => skipped.push(format!(
            "a. HTTP ingestion -> Kafka: no Kafka-protocol broker ({KAFKA_VAR} unset)"
        )),
        Some(brokers) => {
            let keys: Vec<String> = validated.iter().map(record_key).collect();
            let ids: Vec<String> = validated.iter().map(|e| e.event_id.to_string()).collect();
            let a = bench_ingestion(
                brokers,
                pg.as_deref(),
                &events,
                &wire,
                &keys,
                (&normalized, &ids),
                clients,
                partitions,
            )
            .await
            .context("a. HTTP ingestion -> Kafka")?;
            let ratio = a.events_per_s / a.baseline_per_s;
            rows.push(Row {
                figure: "a. HTTP ingestion -> Kafka (events/s)".into(),
                liandong: thousands(a.events_per_s),
                baseline: format!("{} (bare FutureProducer)", thousands(a.baseline_per_s)),
                ratio: format!("{ratio:.2}"),
            });
            rows.push(Row {
                figure: "   aside: bare producer, ingestion's records".into(),
                liandong: thousands(a.events_per_s),
                baseline: format!(
                    "{} (appended payload + event_id header)",
                    thousands(a.shaped_per_s)
                ),
                ratio: format!("{:.2}", a.events_per_s / a.shaped_per_s),
            });
            rows.push(Row {
                figure: "   Kafka records per event".into(),
                liandong: format!("{:.3}", a.records_in_log as f64 / n as f64),
                baseline: format!("{:.3}", a.baseline_records as f64 / n as f64),
                ratio: String::new(),
            });
            rows.push(Row {
                figure: "   payload bytes per event".into(),
                liandong: format!("{:.0}", normalized_bytes as f64 / n as f64),
                baseline: format!("{:.0}", wire_bytes as f64 / n as f64),
                ratio: format!("{:.2}", normalized_bytes as f64 / wire_bytes as f64),
            });
            rows.push(Row {
                figure: "   HTTP requests per 1000 events".into(),
                liandong: format!("{:.1}", a.requests as f64 * 1000.0 / n as f64),
                baseline: "-".into(),
                ratio: String::new(),
            });
            if let Some(x) = a.identity_xacts {
                rows.push(Row {
                    figure: "   identity-store transactions per 1000 events".into(),
                    liandong: format!("{:.1}", x as f64 * 1000.0 / n as f64),
                    baseline: "-".into(),
                    ratio: String::new(),
                });
            }
            report["ingestion"] = json!({
                "liandong": {
                    "events_per_s": a.events_per_s,
                    "wall_s": a.wall.as_secs_f64(),
                    "accepted": a.accepted,
                    "requests": a.requests,
                    "retries_503": a.retries,
                    "records_in_log": a.records_in_log,
                    "identity_store": a.identity_store,
                    "identity_store_xact_commit": a.identity_xacts,
                },
                "aside_bare_producer_appended_records": {
                    "events_per_s": a.shaped_per_s,
                },
                "baseline_bare_producer": {
                    "events_per_s": a.baseline_per_s,
                    "wall_s": a.baseline_wall.as_secs_f64(),
                    "records_in_log": a.baseline_records,
                },
                "ratio": ratio,
            });
        }
    }

    // b. Projector -> PostgreSQL
    match (&kafka, &pg) {
        _ if !part("b") => skipped.push("b. projector -> PostgreSQL: not in BENCH_PARTS".into()),
        (None, _) => skipped.push(format!(
            "b. projector -> PostgreSQL: no Kafka-protocol broker ({KAFKA_VAR} unset)"
        )),
        (_, None) => skipped.push(format!(
            "b. projector -> PostgreSQL: no PostgreSQL ({PG_URL_VAR} unset)"
        )),
        (Some(brokers), Some(admin)) => {
            let b = bench_projector(brokers, admin, &validated, &normalized, partitions)
                .await
                .context("b. projector -> PostgreSQL")?;
            let (k, e) = (&b.kafka, &b.embedded);
            let ratio = k.events_per_s / b.copy_per_s;
            // Machine-independent figures of both runs, Kafka first.
            let both = |f: &dyn Fn(&ProjectRun) -> String| format!("{} (embedded: {})", f(k), f(e));
            rows.push(Row {
                figure: "b. projector -> PostgreSQL (events/s)".into(),
                liandong: thousands(k.events_per_s),
                baseline: format!("{} (COPY rows/s)", thousands(b.copy_per_s)),
                ratio: format!("{ratio:.3}"),
            });
            rows.push(Row {
                figure: "   after the first batch (events/s)".into(),
                liandong: thousands(k.steady_per_s),
                baseline: "same COPY".into(),
                ratio: format!("{:.3}", k.steady_per_s / b.copy_per_s),
            });
            rows.push(Row {
                figure: "   vs reading the topic alone (events/s)".into(),
                liandong: thousands(k.events_per_s),
                baseline: format!("{} (bare BaseConsumer)", thousands(b.consume_per_s)),
                ratio: format!("{:.2}", k.events_per_s / b.consume_per_s),
            });
            rows.push(Row {
                figure: "b'. projector, embedded log -> PG (events/s)".into(),
                liandong: thousands(e.events_per_s),
                baseline: "same COPY".into(),
                ratio: format!("{:.3}", e.events_per_s / b.copy_per_s),
            });
            rows.push(Row {
                figure: "   transactions (projector batches)".into(),
                liandong: both(&|r| format!("{}", r.batches)),
                baseline: "1 (one COPY)".into(),
                ratio: String::new(),
            });
            rows.push(Row {
                figure: "   events per transaction".into(),
                liandong: both(&|r| format!("{:.0}", r.records as f64 / r.batches.max(1) as f64)),
                baseline: thousands(n as f64),
                ratio: String::new(),
            });
            rows.push(Row {
                figure: "   PG rows read per event (returned+fetched)".into(),
                liandong: both(&|r| format!("{:.1}", r.pg.rows_read() as f64 / n as f64)),
                baseline: format!("{:.1}", b.copy_pg.rows_read() as f64 / n as f64),
                ratio: String::new(),
            });
            rows.push(Row {
                figure: "   PG rows written per event (ins+upd+del)".into(),
                liandong: both(&|r| format!("{:.2}", r.pg.rows_written() as f64 / n as f64)),
                baseline: format!("{:.2}", b.copy_pg.rows_written() as f64 / n as f64),
                ratio: String::new(),
            });
            let top = |r: &ProjectRun| {
                r.relations
                    .iter()
                    .take(6)
                    .map(|(name, read, _)| format!("{name} {:.1}", *read as f64 / n as f64))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "   b'. rows read per event, by table (most first): {}",
                top(e)
            );
            println!(
                "   b'. rows written per event, by table: {}",
                e.relations
                    .iter()
                    .filter(|(_, _, w)| *w > 0)
                    .map(|(name, _, w)| format!("{name} {:.2}", *w as f64 / n as f64))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            rows.push(Row {
                figure: "   PG transactions committed per 1000 events".into(),
                liandong: both(&|r| format!("{:.1}", r.pg.xact_commit as f64 * 1000.0 / n as f64)),
                baseline: format!("{:.1}", b.copy_pg.xact_commit as f64 * 1000.0 / n as f64),
                ratio: String::new(),
            });
            let run_json = |r: &ProjectRun| {
                json!({
                    "events_per_s": r.events_per_s,
                    "wall_s": r.wall.as_secs_f64(),
                    "to_first_batch_s": r.to_first_batch.as_secs_f64(),
                    "events_per_s_after_first_batch": r.steady_per_s,
                    "batches": r.batches,
                    "records": r.records,
                    "pg_stat_database": r.pg.to_json(),
                })
            };
            report["projector"] = json!({
                "liandong": run_json(k),
                "liandong_embedded_log": run_json(e),
                "baseline_copy": {
                    "rows_per_s": b.copy_per_s,
                    "wall_s": b.copy_wall.as_secs_f64(),
                    "csv_bytes": b.csv_bytes,
                    "pg_stat_database": b.copy_pg.to_json(),
                },
                "ratio": ratio,
                "ratio_embedded_log": e.events_per_s / b.copy_per_s,
                "asides": {
                    "prefill_kafkalog_append_events_per_s": b.prefill_per_s,
                    "bare_consumer_read_events_per_s": b.consume_per_s,
                    "bare_consumer_read_events_per_s_after_first": b.consume_steady_per_s,
                },
            });
            println!(
                "asides: pre-fill through KafkaLog::append ({PREFILL_CHUNK} records per call): \
                 {} events/s; bare BaseConsumer reading the pre-filled topic: {} events/s \
                 ({} events/s after its first record)",
                thousands(b.prefill_per_s),
                thousands(b.consume_per_s),
                thousands(b.consume_steady_per_s)
            );
        }
    }

    // c. Live traffic against members' stored history
    match &pg {
        _ if !part("c") => skipped.push("c. history: not in BENCH_PARTS".into()),
        None => skipped.push(format!("c. history: no PostgreSQL ({PG_URL_VAR} unset)")),
        Some(admin) => {
            let runs = bench_history(admin).await.context("c. history")?;
            let fresh = runs.first().map(|r| r.run.events_per_s).unwrap_or(1.0);
            let mut json_runs = Vec::new();
            for r in &runs {
                let live = r.live as f64;
                rows.push(Row {
                    figure: format!(
                        "c. live events/s, {} members with ~{} stored events each",
                        r.members, r.history
                    ),
                    liandong: thousands(r.run.events_per_s),
                    baseline: format!("{} (~{} stored)", thousands(fresh), runs[0].history),
                    ratio: format!("{:.2}", r.run.events_per_s / fresh),
                });
                rows.push(Row {
                    figure: "   PG rows read / written per live event".into(),
                    liandong: format!(
                        "{:.1} / {:.1}",
                        r.run.pg.rows_read() as f64 / live,
                        r.run.pg.rows_written() as f64 / live
                    ),
                    baseline: "-".into(),
                    ratio: String::new(),
                });
                json_runs.push(json!({
                    "members": r.members,
                    "stored_events_per_member": r.history,
                    "stored_events": r.stored,
                    "live_events": r.live,
                    "live_events_per_s": r.run.events_per_s,
                    "ratio_to_first": r.run.events_per_s / fresh,
                    "batches": r.run.batches,
                    "pg_stat_database": r.run.pg.to_json(),
                }));
            }
            report["history"] = json!(json_runs);
        }
    }

    // d. Several projector instances in one consumer group
    match (&kafka, &pg) {
        _ if !part("d") => skipped.push("d. parallel projectors: not in BENCH_PARTS".into()),
        (None, _) => skipped.push(format!(
            "d. parallel projectors: no Kafka-protocol broker ({KAFKA_VAR} unset)"
        )),
        (_, None) => skipped.push(format!(
            "d. parallel projectors: no PostgreSQL ({PG_URL_VAR} unset)"
        )),
        (Some(brokers), Some(admin)) => {
            let runs = bench_parallel(brokers, admin, &validated, &normalized, partitions)
                .await
                .context("d. parallel projectors")?;
            let one = runs.first().map(|r| r.1.events_per_s).unwrap_or(1.0);
            let mut json_runs = Vec::new();
            for (instances, r) in &runs {
                rows.push(Row {
                    figure: format!(
                        "d. {instances} projector(s), {partitions} partitions (events/s)"
                    ),
                    liandong: thousands(r.events_per_s),
                    baseline: format!("{} (1 projector)", thousands(one)),
                    ratio: format!("{:.2}", r.events_per_s / one),
                });
                rows.push(Row {
                    figure: "   PG transactions open at once: max / mean".into(),
                    liandong: format!(
                        "{} / {:.2}",
                        r.max_open_transactions, r.mean_open_transactions
                    ),
                    baseline: "-".into(),
                    ratio: String::new(),
                });
                json_runs.push(json!({
                    "instances": instances,
                    "events_per_s": r.events_per_s,
                    "batches": r.batches,
                    "max_open_transactions": r.max_open_transactions,
                    "mean_open_transactions": r.mean_open_transactions,
                    "records_per_instance": r.records_per_instance,
                    "max_waiting_on_locks": r.max_waiting_on_locks,
                    "pg_stat_database": r.pg.to_json(),
                }));
            }
            report["parallel"] = json!(json_runs);
        }
    }

    println!();
    print_table(&rows);
    for s in &skipped {
        println!("SKIPPED: {s}");
    }
    report["skipped"] = json!(skipped);

    let path = report_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

fn print_table(rows: &[Row]) {
    let head = Row {
        figure: "figure".into(),
        liandong: "liandong".into(),
        baseline: "baseline (same run, same services)".into(),
        ratio: "ratio".into(),
    };
    let all: Vec<&Row> = std::iter::once(&head).chain(rows).collect();
    let w = |f: fn(&Row) -> &str| all.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (w(|r| &r.figure), w(|r| &r.liandong), w(|r| &r.baseline));
    for (i, r) in all.iter().enumerate() {
        println!(
            "{:<w0$} | {:>w1$} | {:<w2$} | {}",
            r.figure, r.liandong, r.baseline, r.ratio
        );
        if i == 0 {
            println!("{}", "-".repeat(w0 + w1 + w2 + 14));
        }
    }
}

/// `target/bench/pipeline.json` of the workspace (or of CARGO_TARGET_DIR).
fn report_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("bench").join("pipeline.json")
}

fn redact_url(url: &str) -> String {
    // Print where, never the password.
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// `n` realistic, valid scenario events with fresh event ids. The scenario's own ids are
/// deterministic per seed; fresh ones keep reruns against a shared broker or database from
/// deduplicating each other away.
fn scenario_events(n: usize) -> Vec<Value> {
    let per_member = 20;
    // Slightly more than n (the scenario adds one member.identified to most members), then cut.
    let members = n / per_member + 1;
    // End the traffic a day before now: events more than an hour in the future are invalid.
    let start = (Utc::now() - chrono::Duration::days(31))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let mut events = scenario::events(&Shape {
        seed: 7,
        members,
        events_per_member: per_member,
        start,
        days: 30,
    });
    assert!(events.len() >= n, "the scenario made too few events");
    events.truncate(n);
    for e in &mut events {
        e["event_id"] = json!(Uuid::new_v4().to_string());
    }
    events
}

/// The partition key ingestion uses for an event whose binding is not cached: the unionid,
/// else the openid.
fn record_key(e: &Event) -> String {
    let u = &e.user;
    u.unionid
        .clone()
        .or_else(|| u.oa_openid.clone())
        .or_else(|| u.mp_openid.clone())
        .unwrap_or_default()
}

/// librdkafka settings for every Kafka client of the run, the product's and the baselines'
/// alike, then BENCH_KAFKA_OPTIONS (`key=value,...`, the format of LIANDONG_KAFKA_OPTIONS).
/// The session timeout is librdkafka's default, not the tests' 6 s: while a slow broker serves
/// a large fetch it may leave heartbeats unanswered for more than 6 s, and the consumer group
/// then rebalances over and over (stale members keeping partitions) instead of projecting.
fn kafka_options() -> Vec<(String, String)> {
    let mut out = vec![("session.timeout.ms".to_owned(), "45000".to_owned())];
    if let Ok(extra) = std::env::var("BENCH_KAFKA_OPTIONS") {
        for pair in extra.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("BENCH_KAFKA_OPTIONS: expected key=value, got {pair:?}"));
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn kafka_config(brokers: &str, prefix: &str, partitions: i32, create: bool) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.to_owned(),
        topic_prefix: prefix.to_owned(),
        partitions,
        replication_factor: -1,
        client_options: kafka_options(),
        create_topics: create,
    }
}

async fn log_records(log: &KafkaLog, stream: Stream) -> anyhow::Result<i64> {
    Ok(log
        .end_offsets(stream)
        .await?
        .iter()
        .map(|(_, end)| end)
        .sum())
}

// ---------------------------------------------------------------------------------------------
// a. HTTP ingestion -> Kafka

struct IngestionResult {
    events_per_s: f64,
    wall: Duration,
    accepted: u64,
    requests: usize,
    retries: u64,
    records_in_log: i64,
    identity_store: &'static str,
    identity_xacts: Option<i64>,
    baseline_per_s: f64,
    baseline_wall: Duration,
    baseline_records: i64,
    /// The bare producer sending what ingestion appends: the normalized payloads, each with
    /// its `event_id` header.
    shaped_per_s: f64,
}

#[allow(clippy::too_many_arguments)]
async fn bench_ingestion(
    brokers: &str,
    pg_admin: Option<&str>,
    events: &[Value],
    wire: &[Vec<u8>],
    keys: &[String],
    (appended, ids): (&[Vec<u8>], &[String]),
    clients: usize,
    partitions: i32,
) -> anyhow::Result<IngestionResult> {
    let n = events.len();
    // Ingestion binds identities in its database; PostgreSQL is the production setup, SQLite
    // the fallback so the Kafka half can still be measured without it.
    let sqlite_dir;
    let pg_store = match pg_admin {
        Some(_) => Some(
            TestStore::postgres()
                .await
                .context("a fresh PostgreSQL database")?,
        ),
        None => None,
    };
    // Only ingestion's own connections may count in the identity store's statistics.
    let identity_before = match (&pg_store, pg_admin) {
        (Some(t), Some(admin)) => {
            close(t.store()).await;
            Some(settled_counters(admin, t).await?)
        }
        _ => None,
    };
    let (db_url, identity_store) = match &pg_store {
        Some(t) => (t.url().to_owned(), "postgres"),
        None => {
            println!("note: {PG_URL_VAR} unset, ingestion binds identities in SQLite instead");
            sqlite_dir = tempfile::tempdir()?;
            (
                format!("sqlite://{}/bench.db", sqlite_dir.path().display()),
                "sqlite",
            )
        }
    };

    // Request bodies are built up front: the client's JSON encoding is not the server's cost.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        events
            .chunks(BATCH)
            .map(|c| serde_json::to_vec(&json!({ "events": c })).expect("a Value serializes"))
            .collect(),
    );

    let prefix = format!("bench-ingest-{}", Uuid::new_v4().simple());
    let settings: HashMap<&str, String> = HashMap::from([
        ("LIANDONG_LISTEN", "127.0.0.1:0".to_owned()),
        ("LIANDONG_DATABASE_URL", db_url.clone()),
        ("LIANDONG_KAFKA_BROKERS", brokers.to_owned()),
        ("LIANDONG_TOPIC_PREFIX", prefix.clone()),
        ("LIANDONG_API_KEYS", format!("ingest:{INGEST_KEY}")),
        (
            "LIANDONG_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        (
            "LIANDONG_KAFKA_OPTIONS",
            kafka_options()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("LIANDONG_KAFKA_PARTITIONS", partitions.to_string()),
    ]);
    let cfg = Config::from_lookup(|k| settings.get(k).cloned())?;
    let running = liandong::start(Role::Ingest, cfg).await?;
    let url = format!("http://{}/v1/events", running.addr);
    println!(
        "a. ingestion: liandong ingest on {} -> topic {prefix}.events",
        running.addr
    );

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (next, bodies, url) = (next.clone(), bodies.clone(), url.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?;
            let (mut accepted, mut retries, mut requests) = (0u64, 0u64, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                loop {
                    requests += 1;
                    let r = client
                        .post(&url)
                        .bearer_auth(INGEST_KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    match r.status().as_u16() {
                        200 => {
                            let answer: Value = r.json().await?;
                            let rejected = answer["rejected"].as_array().map_or(0, Vec::len);
                            ensure!(rejected == 0, "batch {i}: rejected events: {answer}");
                            accepted += answer["accepted"].as_u64().unwrap_or(0);
                            break;
                        }
                        // A client must retry a 503; count it, it is part of the product's cost.
                        503 => {
                            retries += 1;
                            let wait = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1);
                            tokio::time::sleep(Duration::from_secs(wait)).await;
                        }
                        s => bail!(
                            "batch {i}: HTTP {s}: {}",
                            r.text().await.unwrap_or_default()
                        ),
                    }
                }
            }
            anyhow::Ok((accepted, retries, requests))
        });
    }
    let (mut accepted, mut retries, mut requests) = (0u64, 0u64, 0usize);
    while let Some(done) = tasks.join_next().await {
        let (a, r, q) = done??;
        accepted += a;
        retries += r;
        requests += q;
    }
    let wall = started.elapsed();
    if let Err(e) = running.stop().await {
        eprintln!("warning: liandong ingest stopped with an error: {e:#}");
    }
    ensure!(accepted == n as u64, "accepted {accepted} events, sent {n}");
    let check = KafkaLog::connect(kafka_config(brokers, &prefix, partitions, false)).await?;
    let records_in_log = log_records(&check, Stream::Events).await?;
    let dead = log_records(&check, Stream::DeadLetter).await?;
    ensure!(dead == 0, "{dead} dead letters for valid events");
    let events_per_s = per_sec(n, wall);
    println!(
        "   liandong: {n} accepted in {:.2}s = {} events/s ({requests} requests, {retries} answered 503)",
        wall.as_secs_f64(),
        thousands(events_per_s)
    );

    // The identity store's work, read after ingestion closed its connections (a backend
    // publishes its statistics when it exits).
    let identity_xacts = match (&pg_store, pg_admin) {
        (Some(t), Some(admin)) => {
            let after = settled_counters(admin, t).await?;
            Some(
                after
                    .minus(&identity_before.unwrap_or_default())
                    .xact_commit,
            )
        }
        _ => None,
    };

    // Baseline: the same payloads and keys through a bare producer with the guarantees
    // ingestion promises (acks=all, idempotence), into a fresh topic of the same shape.
    let topic = format!("bench-baseline-{}", Uuid::new_v4().simple());
    create_topic(brokers, &topic, partitions).await?;
    let baseline_wall = produce_bare(brokers, &topic, wire, keys, None).await?;
    // Less the warm-up record.
    let baseline_records = topic_records(brokers, &topic).await? - 1;
    ensure!(
        baseline_records == n as i64,
        "bare producer: {baseline_records} records in {topic}, sent {n}"
    );
    let baseline_per_s = per_sec(n, baseline_wall);
    println!(
        "   baseline: {n} produced in {:.2}s = {} events/s (topic {topic})",
        baseline_wall.as_secs_f64(),
        thousands(baseline_per_s)
    );

    // Aside: the records exactly as ingestion appends them, through the bare producer: what
    // the broker itself makes of their shape (bytes, a header per record).
    let shaped_topic = format!("bench-shaped-{}", Uuid::new_v4().simple());
    create_topic(brokers, &shaped_topic, partitions).await?;
    let shaped_wall = produce_bare(brokers, &shaped_topic, appended, keys, Some(ids)).await?;
    let shaped_per_s = per_sec(n, shaped_wall);
    println!(
        "   aside: {n} appended records (event_id header) produced in {:.2}s = {} events/s",
        shaped_wall.as_secs_f64(),
        thousands(shaped_per_s)
    );

    Ok(IngestionResult {
        shaped_per_s,
        events_per_s,
        wall,
        accepted,
        requests,
        retries,
        records_in_log,
        identity_store,
        identity_xacts,
        baseline_per_s,
        baseline_wall,
        baseline_records,
    })
}

fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in kafka_options() {
        c.set(k, v);
    }
    c
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(brokers).create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(-1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    // A fresh topic takes a moment to show up in metadata; producing before that fails.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if partition_ids(brokers, topic).await?.len() == partitions as usize {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "topic {topic} did not appear in metadata"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn partition_ids(brokers: &str, topic: &str) -> anyhow::Result<Vec<i32>> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = base_config(&brokers).create()?;
        let md = c.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect())
    })
    .await?
}

/// Records in `topic`: the sum of its high watermarks.
async fn topic_records(brokers: &str, topic: &str) -> anyhow::Result<i64> {
    let ids = partition_ids(brokers, topic).await?;
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = base_config(&brokers).create()?;
        let mut sum = 0;
        for p in ids {
            sum += c.fetch_watermarks(&topic, p, Duration::from_secs(10))?.1;
        }
        Ok(sum)
    })
    .await?
}

/// Sends every payload and waits for every acknowledgement; the elapsed time.
async fn produce_bare(
    brokers: &str,
    topic: &str,
    payloads: &[Vec<u8>],
    keys: &[String],
    event_ids: Option<&[String]>,
) -> anyhow::Result<Duration> {
    // The producer settings KafkaLog uses, so only liandong's own work differs.
    let producer: FutureProducer = base_config(brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "100000")
        .set("partitioner", "murmur2_random")
        .create()?;
    // Warm up outside the measurement, as KafkaLog::connect does for ingestion: the broker
    // connection, the topic's metadata and the idempotent producer id. The warm-up record is
    // one more record in the topic (the caller expects n + 1).
    let warm = FutureRecord::to(topic).payload("warm-up").key("warm-up");
    check_delivery(
        producer
            .send_result(warm)
            .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?
            .await,
    )?;
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::with_capacity(payloads.len());
    for (i, (payload, key)) in payloads.iter().zip(keys).enumerate() {
        let mut record = FutureRecord::to(topic)
            .payload(payload.as_slice())
            .key(key.as_str());
        if let Some(ids) = event_ids {
            record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: "event_id",
                value: Some(ids[i].as_bytes()),
            }));
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                // The local queue is full: wait for the oldest delivery, then try again.
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = r;
                    match pending.pop_front() {
                        Some(d) => check_delivery(d.await)?,
                        None => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
                Err((e, _)) => bail!("produce: {e}"),
            }
        }
    }
    for d in pending {
        check_delivery(d.await)?;
    }
    let elapsed = started.elapsed();
    producer.flush(Duration::from_secs(10))?;
    Ok(elapsed)
}

fn check_delivery(d: <DeliveryFuture as std::future::Future>::Output) -> anyhow::Result<()> {
    match d {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("delivery failed: {e}"),
        Err(_) => bail!("producer dropped a delivery"),
    }
}

// ---------------------------------------------------------------------------------------------
// b. projector -> PostgreSQL

struct ProjectorResult {
    kafka: ProjectRun,
    embedded: ProjectRun,
    copy_per_s: f64,
    copy_wall: Duration,
    csv_bytes: usize,
    copy_pg: PgCounters,
    prefill_per_s: f64,
    consume_per_s: f64,
    consume_steady_per_s: f64,
}

async fn bench_projector(
    brokers: &str,
    pg_admin: &str,
    events: &[Event],
    normalized: &[Vec<u8>],
    partitions: i32,
) -> anyhow::Result<ProjectorResult> {
    let n = events.len();

    // Pre-fill a fresh topic with what ingestion would have written.
    let prefix = format!("bench-project-{}", Uuid::new_v4().simple());
    let log = KafkaLog::connect(kafka_config(brokers, &prefix, partitions, true)).await?;
    let records: Vec<Record> = events
        .iter()
        .zip(normalized)
        .map(|(e, p)| Record {
            key: record_key(e),
            event_id: e.event_id.to_string(),
            payload: p.clone(),
        })
        .collect();
    let prefill_started = Instant::now();
    for chunk in records.chunks(PREFILL_CHUNK) {
        log.append(Stream::Events, chunk.to_vec()).await?;
    }
    let prefill_per_s = per_sec(n, prefill_started.elapsed());
    let in_log = log_records(&log, Stream::Events).await?;
    ensure!(
        in_log == n as i64,
        "pre-fill: {in_log} records in the log, appended {n}"
    );
    println!("b. projector: topic {prefix}.events pre-filled with {n} events");

    let kafka_log: Arc<dyn EventLog> = log.clone();
    let on_kafka = project(kafka_log, &prefix, pg_admin, &fresh_db().await?, 0, n).await?;
    println!(
        "   liandong: {n} projected in {:.2}s = {} events/s ({} batches, first after {:.2}s)",
        on_kafka.wall.as_secs_f64(),
        thousands(on_kafka.events_per_s),
        on_kafka.batches,
        on_kafka.to_first_batch.as_secs_f64()
    );

    // The same projector fed by the embedded log (a local file, no broker): what the projector
    // and PostgreSQL manage when the broker's read path is out of the picture.
    let dir = tempfile::tempdir()?;
    let embedded = liandong_log::EmbeddedLog::open(dir.path())?;
    for chunk in records.chunks(PREFILL_CHUNK) {
        embedded.append(Stream::Events, chunk.to_vec()).await?;
    }
    let on_embedded = project(
        embedded,
        &format!("{prefix}-embedded"),
        pg_admin,
        &fresh_db().await?,
        0,
        n,
    )
    .await?;
    println!(
        "   liandong on the embedded log: {n} projected in {:.2}s = {} events/s ({} batches)",
        on_embedded.wall.as_secs_f64(),
        thousands(on_embedded.events_per_s),
        on_embedded.batches,
    );

    // Baseline: COPY of the same rows into the same `events` table of another fresh database.
    let copy_db = TestStore::postgres()
        .await
        .context("a fresh PostgreSQL database")?;
    liandong_projections::migrate(copy_db.store()).await?;
    close(copy_db.store()).await;
    let csv = events_csv(events);
    let copy_before = settled_counters(pg_admin, &copy_db).await?;
    let mut conn = sqlx::PgConnection::connect(copy_db.url()).await?;
    let copy_started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY events (event_id, type, occurred_at, received_at, day, member_key, unionid, \
             oa_openid, mp_openid, source_from, source_type, source_id, scene, props, \
             source_extra, context, schema_version) FROM STDIN (FORMAT csv)",
        )
        .await?;
    for chunk in csv.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    let copy_wall = copy_started.elapsed();
    conn.close().await?;
    ensure!(copied == n as u64, "COPY stored {copied} rows, sent {n}");
    let copy_pg = settled_counters(pg_admin, &copy_db)
        .await?
        .minus(&copy_before);
    let copy_per_s = per_sec(n, copy_wall);
    println!(
        "   baseline: COPY of {n} rows ({:.1} MB CSV) in {:.2}s = {} rows/s",
        csv.len() as f64 / 1e6,
        copy_wall.as_secs_f64(),
        thousands(copy_per_s)
    );

    // Aside, after the projector so any broker cache warmth favours the baseline: how fast a
    // bare consumer reads the same topic, i.e. the Kafka side's share of the projector's time.
    let (read_all, read_after_first) =
        consume_bare(brokers, &format!("{prefix}.events"), n).await?;
    let consume_per_s = per_sec(n, read_all);
    let consume_steady_per_s = per_sec(n - 1, read_after_first.max(Duration::from_millis(1)));

    Ok(ProjectorResult {
        kafka: on_kafka,
        embedded: on_embedded,
        copy_per_s,
        copy_wall,
        csv_bytes: csv.len(),
        copy_pg,
        prefill_per_s,
        consume_per_s,
        consume_steady_per_s,
    })
}

/// One projector run from `log` into a fresh, migrated PostgreSQL database, until
/// `liandong_projector::status` says lag 0.
struct ProjectRun {
    events_per_s: f64,
    wall: Duration,
    to_first_batch: Duration,
    /// Events/s after the first committed batch (start-up left out).
    steady_per_s: f64,
    batches: u64,
    records: u64,
    pg: PgCounters,
    /// Transactions of the database open at once (sampled every 5 ms): the most, and on average.
    max_open_transactions: i64,
    mean_open_transactions: f64,
    /// Transactions waiting for a lock at once (sampled with the open ones): batches that
    /// share an identifier, a member or an A/B experiment wait for each other.
    max_waiting_on_locks: i64,
    /// Records each instance applied: whether the consumer group shared the partitions.
    records_per_instance: Vec<u64>,
    /// Per relation of the read store: rows read (sequential scans' plus index fetches) and
    /// rows written (inserted, updated, deleted), most read first.
    relations: Vec<(String, i64, i64)>,
}

/// A fresh PostgreSQL database with the read models' tables.
async fn fresh_db() -> anyhow::Result<TestStore> {
    let db = TestStore::postgres()
        .await
        .context("a fresh PostgreSQL database")?;
    liandong_projections::migrate(db.store()).await?;
    Ok(db)
}

/// Projects the `n` records of `log` into `db`, which holds `stored` events already.
async fn project(
    log_dyn: Arc<dyn EventLog>,
    prefix: &str,
    pg_admin: &str,
    db: &TestStore,
    stored: usize,
    n: usize,
) -> anyhow::Result<ProjectRun> {
    project_with(log_dyn, prefix, pg_admin, db, stored, n, 1).await
}

/// [`project`] with `instances` projectors in one consumer group, each with its own pool, as
/// separate `liandong project` processes would run.
async fn project_with(
    log_dyn: Arc<dyn EventLog>,
    prefix: &str,
    pg_admin: &str,
    db: &TestStore,
    stored: usize,
    n: usize,
    instances: usize,
) -> anyhow::Result<ProjectRun> {
    // The test store's pool is closed before measuring so that only the projector's work lands
    // in the database's statistics.
    close(db.store()).await;
    let before = settled_counters(pg_admin, db).await?;
    let relations_before = relation_counters(db).await?;

    let projection: Arc<dyn Projection> = Arc::new(CoreProjection::new(
        chrono_tz::Asia::Shanghai,
        liandong_testkit::test_vault(),
    ));
    let mut stores = Vec::new();
    let mut stats = Vec::new();
    let mut stops = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..instances.max(1) {
        let store = ReadStore::connect(db.url()).await?;
        let projector = Projector::new(
            store.clone(),
            log_dyn.clone(),
            projection.clone(),
            ProjectorConfig {
                group_prefix: prefix.to_owned(),
                max_batch: max_batch(),
                poll_wait: Duration::from_millis(200),
            },
        );
        stats.push(projector.stats());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        stores.push(store);
        tasks.spawn(projector.run(async move {
            let _ = stopped.await;
        }));
    }
    let store = stores[0].clone();
    let sum = |f: fn(&liandong_projector::ProjectorStats) -> u64| -> u64 {
        stats.iter().map(|s| f(s)).sum()
    };
    // Transactions of the database open at once, sampled from pg_stat_activity.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (admin, name, sampling) = (pg_admin.to_owned(), db_name(db.url()), sampling.clone());
        tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            let (mut max, mut samples, mut total, mut max_waiting) = (0i64, 0i64, 0i64, 0i64);
            while sampling.load(Ordering::Relaxed) {
                let (open, waiting): (i64, i64) = sqlx::query_as(
                    "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock')
                       FROM pg_stat_activity WHERE datname = $1 AND xact_start IS NOT NULL
                       AND state <> 'idle'",
                )
                .bind(&name)
                .fetch_one(&mut conn)
                .await?;
                max = max.max(open);
                max_waiting = max_waiting.max(waiting);
                total += open;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            conn.close().await?;
            anyhow::Ok((max, total as f64 / samples.max(1) as f64, max_waiting))
        })
    };
    let mut to_first_batch = None;
    let mut last_look = Instant::now();
    let wall = loop {
        // The stats are an atomic read; the stored positions (the truth) are read once they say
        // everything was applied, or once a second otherwise (several instances' counters can
        // miss a batch another instance re-applied after a rebalance), so the check hardly
        // loads the database during the measurement.
        tokio::select! {
            done = tasks.join_next() => bail!("a projector stopped early: {:?}", done),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if to_first_batch.is_none() && sum(|s| s.batches.load(Ordering::Relaxed)) > 0 {
            to_first_batch = Some(started.elapsed());
        }
        if sum(|s| s.records.load(Ordering::Relaxed)) >= n as u64
            || last_look.elapsed() > Duration::from_secs(1)
        {
            last_look = Instant::now();
            let applied: i64 = store
                .positions(projection.name())
                .await?
                .iter()
                .map(|(_, next)| next)
                .sum();
            if applied >= n as i64 {
                break started.elapsed();
            }
        }
        ensure!(
            started.elapsed() < PROJECTOR_TIMEOUT,
            "the projector did not catch up within {}s: {} of {n} events applied in {} batches",
            PROJECTOR_TIMEOUT.as_secs(),
            sum(|s| s.records.load(Ordering::Relaxed)),
            sum(|s| s.batches.load(Ordering::Relaxed))
        );
    };
    sampling.store(false, Ordering::Relaxed);
    let (max_open, mean_open, max_waiting) = sampler.await??;
    for stop in stops {
        let _ = stop.send(());
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    for s in &stores {
        close(s).await;
    }
    let projector_pg = settled_counters(pg_admin, db).await?.minus(&before);
    let relations = {
        let after = relation_counters(db).await?;
        let mut out: Vec<(String, i64, i64)> = after
            .into_iter()
            .map(|(name, (read, written))| {
                let (r0, w0) = relations_before.get(&name).copied().unwrap_or((0, 0));
                (name, read - r0, written - w0)
            })
            .filter(|(_, read, written)| *read > 0 || *written > 0)
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
        out
    };
    let mut conn = sqlx::PgConnection::connect(db.url()).await?;
    let rows_in_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    if rows_in_events != (stored + n) as i64 {
        // Where the positions and the log disagree, for the report.
        let store = ReadStore::connect(db.url()).await?;
        let positions = store.positions(projection.name()).await?;
        close(&store).await;
        let ends = log_dyn.end_offsets(Stream::Events).await?;
        bail!(
            "the projector stored {} events, the log holds {n}; stored positions {positions:?}, \
             the log's end offsets {ends:?}, records applied by the instances {:?}, offsets \
             the log skipped (records never delivered) {}",
            rows_in_events - stored as i64,
            stats
                .iter()
                .map(|s| s.records.load(Ordering::Relaxed))
                .collect::<Vec<_>>(),
            sum(|s| s.skipped_offsets.load(Ordering::Relaxed))
        );
    }
    let batches = sum(|s| s.batches.load(Ordering::Relaxed));
    let records_applied = sum(|s| s.records.load(Ordering::Relaxed));
    let to_first_batch = to_first_batch.unwrap_or(wall);
    let events_per_s = per_sec(n, wall);
    // Excludes start-up (rebuild check, consumer group join); the events of the first batch
    // are left out with it, so this is the rate once the projector is running.
    let first_batch_events = (records_applied as f64 / batches.max(1) as f64) as usize;
    let steady_per_s = per_sec(
        n.saturating_sub(first_batch_events),
        wall.saturating_sub(to_first_batch)
            .max(Duration::from_millis(1)),
    );
    Ok(ProjectRun {
        events_per_s,
        wall,
        to_first_batch,
        steady_per_s,
        batches,
        records: records_applied,
        pg: projector_pg,
        max_open_transactions: max_open,
        mean_open_transactions: mean_open,
        max_waiting_on_locks: max_waiting,
        records_per_instance: stats
            .iter()
            .map(|s| s.records.load(Ordering::Relaxed))
            .collect(),
        relations,
    })
}

async fn close(store: &ReadStore) {
    match store {
        ReadStore::Postgres(p) => p.close().await,
        ReadStore::Sqlite(p) => p.close().await,
    }
}

/// The `events` rows the projector would write, as COPY CSV. `member_key` is the event's own
/// (no binding lookup): the baseline measures storing rows, not resolving identities.
fn events_csv(events: &[Event]) -> String {
    fn field(out: &mut String, v: Option<&str>) {
        // CSV: an unquoted empty field is NULL, a quoted one is text.
        if let Some(s) = v {
            out.push('"');
            for c in s.chars() {
                if c == '"' {
                    out.push('"');
                }
                out.push(c);
            }
            out.push('"');
        }
        out.push(',');
    }
    let mut out = String::with_capacity(events.len() * 400);
    for e in events {
        let member_key = e.user.own_member_key();
        let unionid = (!member_key.contains(':')).then_some(member_key.as_str());
        let source = e.source.as_ref();
        let occurred = e.occurred_utc();
        field(&mut out, Some(&e.event_id.to_string()));
        field(&mut out, Some(e.event_type.as_str()));
        field(&mut out, Some(&occurred.to_rfc3339()));
        field(&mut out, Some(&e.received_at.to_rfc3339()));
        field(
            &mut out,
            Some(
                &occurred
                    .with_timezone(&chrono_tz::Asia::Shanghai)
                    .date_naive()
                    .to_string(),
            ),
        );
        field(&mut out, Some(&member_key));
        field(&mut out, unionid);
        field(&mut out, e.user.oa_openid.as_deref());
        field(&mut out, e.user.mp_openid.as_deref());
        field(&mut out, e.resolved_from().as_deref());
        field(&mut out, source.and_then(|s| s.source_type.as_deref()));
        field(&mut out, source.and_then(|s| s.id.as_deref()));
        field(&mut out, e.scene.map(|s| s.to_string()).as_deref());
        field(&mut out, Some(&Value::Object(e.props.clone()).to_string()));
        let extra = source
            .filter(|s| !s.extra.is_empty())
            .map(|s| Value::Object(s.extra.clone()).to_string());
        field(&mut out, extra.as_deref());
        field(
            &mut out,
            e.context
                .clone()
                .map(|c| Value::Object(c).to_string())
                .as_deref(),
        );
        out.push_str(&e.schema_version.to_string());
        out.push('\n');
    }
    out
}

/// Reads `n` records of `topic` from the beginning with a bare consumer: the elapsed time from
/// the assignment, and from the first record on (the fetch path without start-up).
async fn consume_bare(
    brokers: &str,
    topic: &str,
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let ids = partition_ids(brokers, topic).await?;
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = base_config(&brokers)
            .set(
                "group.id",
                format!("bench-read-{}", Uuid::new_v4().simple()),
            )
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for p in ids {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)?;
        }
        let started = Instant::now();
        // Assigned, not subscribed: no group join, so this is the fetch path alone.
        consumer.assign(&tpl)?;
        let mut seen = 0;
        let mut first = None;
        while seen < n {
            ensure!(
                started.elapsed() < Duration::from_secs(300),
                "bare consumer: read {seen} of {n}"
            );
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                m?;
                seen += 1;
                first.get_or_insert_with(Instant::now);
            }
        }
        let after_first = first.map_or(Duration::ZERO, |f| f.elapsed());
        Ok((started.elapsed(), after_first))
    })
    .await?
}

/// Counters of one database from `pg_stat_database`.
#[derive(Debug, Clone, Copy, Default)]
struct PgCounters {
    xact_commit: i64,
    tup_returned: i64,
    tup_fetched: i64,
    tup_inserted: i64,
    tup_updated: i64,
    tup_deleted: i64,
}

impl PgCounters {
    fn rows_read(&self) -> i64 {
        self.tup_returned + self.tup_fetched
    }

    fn rows_written(&self) -> i64 {
        self.tup_inserted + self.tup_updated + self.tup_deleted
    }

    fn minus(&self, o: &PgCounters) -> PgCounters {
        PgCounters {
            xact_commit: self.xact_commit - o.xact_commit,
            tup_returned: self.tup_returned - o.tup_returned,
            tup_fetched: self.tup_fetched - o.tup_fetched,
            tup_inserted: self.tup_inserted - o.tup_inserted,
            tup_updated: self.tup_updated - o.tup_updated,
            tup_deleted: self.tup_deleted - o.tup_deleted,
        }
    }

    fn to_json(self) -> Value {
        json!({
            "xact_commit": self.xact_commit,
            "tup_returned": self.tup_returned,
            "tup_fetched": self.tup_fetched,
            "tup_inserted": self.tup_inserted,
            "tup_updated": self.tup_updated,
            "tup_deleted": self.tup_deleted,
        })
    }
}

fn db_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

async fn pg_counters(admin: &str, db: &TestStore) -> anyhow::Result<PgCounters> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT xact_commit, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
         FROM pg_stat_database WHERE datname = $1",
    )
    .bind(db_name(db.url()))
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(PgCounters {
        xact_commit: row.0,
        tup_returned: row.1,
        tup_fetched: row.2,
        tup_inserted: row.3,
        tup_updated: row.4,
        tup_deleted: row.5,
    })
}

/// Rows read (sequential scans' tuples plus index fetches) and written of each table of the
/// database, from `pg_stat_user_tables`: where a projector's reads go. Complete once every
/// connection has exited (see [`settled_counters`]).
async fn relation_counters(
    db: &TestStore,
) -> anyhow::Result<std::collections::HashMap<String, (i64, i64)>> {
    let mut conn = sqlx::PgConnection::connect(db.url()).await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT relname::text, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0),
                n_tup_ins + n_tup_upd + n_tup_del
         FROM pg_stat_user_tables",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(rows.into_iter().map(|(n, r, w)| (n, (r, w))).collect())
}

/// The counters once every connection to the database is gone. A backend publishes its
/// statistics as it exits, before it leaves `pg_stat_activity`, so an empty activity list
/// means the counters are complete. The database is this bench's own, fresh one: a
/// connection still open a few seconds after its pool was closed is a leftover of this
/// process, and is terminated so that its counters are published too.
async fn settled_counters(admin: &str, db: &TestStore) -> anyhow::Result<PgCounters> {
    let name = db_name(db.url());
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let started = Instant::now();
    let mut terminated = false;
    loop {
        let active: Vec<(i32, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT pid, state, left(query, 80) FROM pg_stat_activity WHERE datname = $1",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await?;
        if active.is_empty() {
            break;
        }
        if started.elapsed() > Duration::from_secs(15) {
            eprintln!("warning: connections to {name} remain, its statistics may be incomplete: {active:?}");
            break;
        }
        if !terminated && started.elapsed() > Duration::from_secs(3) {
            eprintln!(
                "note: {} connection(s) to {name} still open 3 s after the pool was closed \
                 (state, last query: {:?}); terminating them",
                active.len(),
                active.iter().map(|a| (&a.1, &a.2)).collect::<Vec<_>>()
            );
            for (pid, _, _) in &active {
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .execute(&mut conn)
                    .await?;
            }
            terminated = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conn.close().await?;
    pg_counters(admin, db).await
}

/// One history size of part c.
struct HistoryRun {
    members: usize,
    history: usize,
    stored: usize,
    live: usize,
    run: ProjectRun,
}

/// c. The same live traffic — `BENCH_LIVE` (default 10) new events for each of
/// `BENCH_HISTORY_MEMBERS` (default 1000) members — projected from the embedded log into
/// PostgreSQL, where those members already have ~H stored events each, for each H of
/// `BENCH_HISTORY` (default `10,200,1000`). The history is the scenario's earlier events of the
/// same members (applied straight through the projection, not measured); the live events are
/// each member's latest ones.
async fn bench_history(pg_admin: &str) -> anyhow::Result<Vec<HistoryRun>> {
    let members = env_usize("BENCH_HISTORY_MEMBERS", 1000).max(1);
    let live_per_member = env_usize("BENCH_LIVE", 10).max(1);
    let sizes: Vec<usize> = std::env::var("BENCH_HISTORY")
        .unwrap_or_else(|_| "10,200,1000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("BENCH_HISTORY: comma-separated numbers of stored events per member")?;
    let schemas = Schemas::load()?;
    let projection = CoreProjection::new(chrono_tz::Asia::Shanghai, liandong_testkit::test_vault());
    let mut out = Vec::new();
    for history in sizes {
        let per_member = history + live_per_member;
        // The same density (~3 events per member and day) whatever the history: a longer history
        // is a longer past, up to a year, ending a day before now.
        let days = (per_member as i64 / 3).clamp(7, 365);
        let mut start = (Utc::now() - chrono::Duration::days(days + 1))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        // The scenario's follow-ups (payments, refunds, late bindings) can fall up to a day or
        // two after its last day: move the window back a day at a time until every event is in
        // the past (an event more than an hour ahead of the clock is invalid).
        let wire = loop {
            let wire = scenario::events(&Shape {
                seed: 11,
                members,
                events_per_member: per_member,
                start,
                days,
            });
            let latest = wire
                .iter()
                .filter_map(|v| v["occurred_at"].as_str())
                .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .max();
            if latest.is_none_or(|t| t < Utc::now()) {
                break wire;
            }
            start -= chrono::Duration::days(1);
        };
        let now = Utc::now();
        let mut by_member: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for v in &wire {
            let e = schemas
                .validate(v, now)
                .context("the scenario made an invalid event")?;
            by_member
                .entry(e.user.own_member_key())
                .or_default()
                .push(e);
        }
        let (mut stored, mut live) = (Vec::new(), Vec::new());
        for (_, mut events) in by_member {
            events.sort_by_key(|e| e.occurred_utc());
            let cut = events.len().saturating_sub(live_per_member);
            live.extend(events.split_off(cut));
            stored.extend(events);
        }
        live.sort_by_key(|e| e.occurred_utc());

        let db = fresh_db().await?;
        liandong_testkit::fresh_core(db.store(), &projection).await;
        let preload = Instant::now();
        for chunk in stored.chunks(PREFILL_CHUNK) {
            liandong_testkit::apply_batch(db.store(), &projection, chunk).await;
        }
        println!(
            "c. history: {members} members, {} stored events (~{history} each) loaded in {:.1}s",
            stored.len(),
            preload.elapsed().as_secs_f64()
        );
        let dir = tempfile::tempdir()?;
        let log = liandong_log::EmbeddedLog::open(dir.path())?;
        let records: Vec<Record> = live
            .iter()
            .map(|e| Record {
                key: record_key(e),
                event_id: e.event_id.to_string(),
                payload: serde_json::to_vec(e).expect("an Event serializes"),
            })
            .collect();
        for chunk in records.chunks(PREFILL_CHUNK) {
            log.append(Stream::Events, chunk.to_vec()).await?;
        }
        let prefix = format!("bench-history-{}", Uuid::new_v4().simple());
        let run = project(log, &prefix, pg_admin, &db, stored.len(), live.len()).await?;
        println!(
            "   {} live events projected in {:.2}s = {} events/s",
            live.len(),
            run.wall.as_secs_f64(),
            thousands(run.events_per_s)
        );
        out.push(HistoryRun {
            members,
            history,
            stored: stored.len(),
            live: live.len(),
            run,
        });
    }
    Ok(out)
}

/// d. The same pre-filled topic projected by 1, 2 and 4 projector instances of one consumer
/// group (`BENCH_INSTANCES`, default `1,2,4`), each run into a fresh database; every run's
/// read models must equal the first's.
async fn bench_parallel(
    brokers: &str,
    pg_admin: &str,
    events: &[Event],
    normalized: &[Vec<u8>],
    partitions: i32,
) -> anyhow::Result<Vec<(usize, ProjectRun)>> {
    let n = events.len();
    let counts: Vec<usize> = std::env::var("BENCH_INSTANCES")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("BENCH_INSTANCES: comma-separated numbers of projector instances")?;
    let prefix = format!("bench-parallel-{}", Uuid::new_v4().simple());
    let log = KafkaLog::connect(kafka_config(brokers, &prefix, partitions, true)).await?;
    let records: Vec<Record> = events
        .iter()
        .zip(normalized)
        .map(|(e, p)| Record {
            key: record_key(e),
            event_id: e.event_id.to_string(),
            payload: p.clone(),
        })
        .collect();
    for chunk in records.chunks(PREFILL_CHUNK) {
        log.append(Stream::Events, chunk.to_vec()).await?;
    }
    println!("d. parallel: topic {prefix}.events pre-filled with {n} events");
    let mut out = Vec::new();
    let mut first: Option<(liandong_testkit::reference::Metrics, Vec<_>)> = None;
    for instances in counts {
        let db = fresh_db().await?;
        // A group per run, so each run reads the topic from the start.
        let group = format!("{prefix}-{instances}");
        let run = project_with(log.clone(), &group, pg_admin, &db, 0, n, instances).await?;
        println!(
            "   {instances} instance(s): {n} projected in {:.2}s = {} events/s, {} batches, \
             at most {} transactions open at once ({} waiting for a lock), records per instance {:?}",
            run.wall.as_secs_f64(),
            thousands(run.events_per_s),
            run.batches,
            run.max_open_transactions,
            run.max_waiting_on_locks,
            run.records_per_instance
        );
        let store = ReadStore::connect(db.url()).await?;
        let got = (
            liandong_testkit::reference::stored_metrics(&store).await,
            liandong_projections::read::member_profiles(&store).await?,
        );
        close(&store).await;
        match &first {
            None => first = Some(got),
            Some(want) => ensure!(
                *want == got,
                "{instances} instances made other read models than the first run"
            ),
        }
        out.push((instances, run));
    }
    Ok(out)
}
