//! The clients end to end: the real `liandong serve` binary, and Node running the client
//! packages' server tests against it — liandong's Mini Program tracker
//! (`clients/miniprogram/test/server.test.js`), the real Sensors Data SDK from npm
//! (`clients/miniprogram/test/sensors.server.test.js`) and the OA article snippet
//! (`clients/web/test/snippet.test.js`), each with a faked `wx` or page and nothing else faked.
//! Each Node test reports what it sent; this test then finds it in `events` (type, scene,
//! resolved source, member; each event once) and the members in `member_profile`.
//!
//! Needs Node 18+ and `npm ci` in both client packages (scripts/test does both). Without Node
//! it is skipped, except in CI, where it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liandong_testkit::{server, TEST_MASTER_KEY};
use serde_json::Value;
use sqlx::{Row, SqlitePool};

const CLIENT_KEY: &str = "clients-client-key-0123456789";
const SUPPORT_KEY: &str = "clients-support-key-0123456789";
const ADMIN_KEY: &str = "clients-admin-key-0123456789";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `node`, when it runs; in CI its absence is a failure.
fn node() -> Option<String> {
    let node = std::env::var("LIANDONG_TEST_NODE").unwrap_or_else(|_| "node".into());
    match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => Some(node),
        _ if std::env::var_os("CI").is_some() => {
            panic!("Node is required in CI for the client tests (scripts/test installs it)")
        }
        _ => {
            eprintln!("SKIPPED: node not found (set LIANDONG_TEST_NODE or install Node 18+)");
            None
        }
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn serve(data_dir: &Path) -> Server {
    let port = free_port();
    let log = std::fs::File::create(data_dir.join("serve.log")).expect("a log file");
    let child = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .arg("serve")
        .env("LIANDONG_DATA_DIR", data_dir)
        .env("LIANDONG_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "LIANDONG_API_KEYS",
            format!("client:{CLIENT_KEY},support:{SUPPORT_KEY},admin:{ADMIN_KEY}"),
        )
        .env("LIANDONG_MASTER_KEY", TEST_MASTER_KEY)
        .env("LIANDONG_RATE_LIMIT", "1000/s")
        .env_remove("LIANDONG_DATABASE_URL")
        .env_remove("LIANDONG_KAFKA_BROKERS")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("liandong serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { child, base };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http
            .get(format!("{}/health/ready", server.base))
            .send()
            .await
        {
            if r.status().is_success() {
                return server;
            }
        }
        assert!(
            Instant::now() < deadline,
            "liandong serve was not ready within 60 s: {}",
            std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `node --test <files>` in `package` against the server; panics with its output on failure.
fn node_test(node: &str, package: &str, files: &[&str], base: &str, run: &str, results: &Path) {
    let dir = repo().join("clients").join(package);
    assert!(
        dir.join("node_modules").exists() || package == "web",
        "clients/{package}/node_modules is missing: run `npm ci` in clients/{package} (scripts/test does)"
    );
    let out = Command::new(node)
        .arg("--test")
        .args(files)
        .current_dir(&dir)
        .env("LIANDONG_URL", base)
        .env("LIANDONG_CLIENT_KEY", CLIENT_KEY)
        .env("LIANDONG_RUN", run)
        .env("LIANDONG_RESULT_DIR", results)
        .stdin(Stdio::null())
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "node --test in clients/{package} failed:\n{text}"
    );
    assert!(
        text.contains("# skipped 0"),
        "a server test was skipped:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_events_reach_the_read_models() {
    let Some(node) = node() else { return };
    let data = tempfile::tempdir().expect("a data directory");
    let results = tempfile::tempdir().expect("a results directory");
    let server = serve(data.path()).await;
    let run = format!("{}", std::process::id());

    node_test(
        &node,
        "miniprogram",
        &["test/server.test.js", "test/sensors.server.test.js"],
        &server.base,
        &run,
        results.path(),
    );
    node_test(
        &node,
        "web",
        &["test/snippet.test.js"],
        &server.base,
        &run,
        results.path(),
    );

    let http = reqwest::Client::new();
    server::wait_caught_up(&http, &server.base, SUPPORT_KEY, Duration::from_secs(60)).await;
    let db = SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("liandong.db").display()
    ))
    .await
    .expect("the read store");

    for name in ["tracker", "sensors", "web"] {
        let path = results.path().join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name}: the Node test reported nothing ({e})"));
        let report: Value = serde_json::from_str(&text).expect("a JSON report");
        let member = report["member_key"].as_str().expect("member_key");

        let rows = sqlx::query(
            "SELECT type, COUNT(*) AS n FROM events WHERE member_key = ? GROUP BY type ORDER BY type",
        )
        .bind(member)
        .fetch_all(&db)
        .await
        .expect("events");
        let counts: serde_json::Map<String, Value> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("type"),
                    Value::from(r.get::<i64, _>("n")),
                )
            })
            .collect();
        assert_eq!(
            Value::Object(counts),
            report["counts"],
            "{name}: the events of {member} (each once)"
        );

        let visits = sqlx::query(
            "SELECT scene, source_from FROM events WHERE member_key = ? AND type = 'mp.visit' ORDER BY occurred_at",
        )
        .bind(member)
        .fetch_all(&db)
        .await
        .expect("visits");
        let visits: Vec<Value> = visits
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scene": r.get::<Option<i64>, _>("scene"),
                    "from": r.get::<Option<String>, _>("source_from"),
                })
            })
            .collect();
        assert_eq!(Value::Array(visits), report["visits"], "{name}: visits");

        if let Some(ids) = report["event_ids"].as_array() {
            for id in ids {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_id = ?")
                    .bind(id.as_str().unwrap())
                    .fetch_one(&db)
                    .await
                    .expect("an event");
                assert_eq!(n, 1, "{name}: event {id}");
            }
        }

        let profiles: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM member_profile WHERE member_key = ?")
                .bind(member)
                .fetch_one(&db)
                .await
                .expect("member_profile");
        assert_eq!(profiles, 1, "{name}: {member} in member_profile");
    }
    // Nothing a client key sent reached the log as an order.
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type LIKE 'order.%'")
        .fetch_one(&db)
        .await
        .expect("orders");
    assert_eq!(orders, 0);
    drop(server);
}
