//! The documentation a newcomer reads against the code it describes: `docs/events.md` names every
//! event type of the catalogue and every property of its schemas, `docs/read-models.md` every
//! relation of a freshly started store (from the database's own catalog, on SQLite and on
//! PostgreSQL) with every column; the README and the error messages only link files that exist
//! in the repository; the README's status example shows the projection's real version;
//! `liandong rebuild --help` names the projections it can rebuild; the README's configuration
//! table and `--help` of every command that runs liandong list the same settings, each with its
//! variable and default; and docs/operations.md names every metric family `/metrics` serves and
//! every command of `liandong dead-letter`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use liandong::{Config, Role};
use liandong_event::EventType;
use liandong_store::ReadStore;
use liandong_testkit::TestStore;
use liandong_vault::{MasterKey, Vault};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` split at its Markdown headings: (heading line, the text up to the next heading).
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.push((line.to_owned(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// The property names of a JSON Schema's `props`.
fn schema_props(schema: &Value) -> Vec<String> {
    schema["properties"]["props"]["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_event_type_and_property_is_documented() {
    let doc = read("docs/events.md");
    // The catalogue's rows: `| `type` | required | optional | meaning |`.
    let rows: Vec<(&str, &str)> = doc
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `")?;
            let (name, _) = rest.split_once('`')?;
            name.contains('.').then_some((name, l))
        })
        .collect();
    let documented: BTreeSet<&str> = rows.iter().map(|(n, _)| *n).collect();
    let coded: BTreeSet<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    let missing: Vec<_> = coded.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&coded).collect();
    assert!(
        missing.is_empty(),
        "event types without a row in docs/events.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/events.md documents types the catalogue does not accept: {stale:?}"
    );

    // Every property of every schema version is named in its type's row.
    let mut schemas = 0;
    for entry in std::fs::read_dir(repo().join("schemas/events")).expect("schemas/events") {
        let path = entry.expect("an entry").path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let ty = file
            .rsplit_once(".v")
            .map(|(t, _)| t)
            .unwrap_or_else(|| panic!("schemas/events/{file}: expected <type>.v<N>.json"));
        assert!(
            coded.contains(ty),
            "schemas/events/{file}: not a catalogue type"
        );
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("a schema")).unwrap();
        let row = rows
            .iter()
            .find(|(n, _)| *n == ty)
            .map(|(_, l)| *l)
            .unwrap_or_else(|| panic!("{ty}: no row in docs/events.md"));
        for prop in schema_props(&schema) {
            assert!(
                row.contains(&format!("`{prop}`")),
                "docs/events.md: the row of {ty} does not name `{prop}` (schemas/events/{file})"
            );
        }
        schemas += 1;
    }
    assert!(schemas >= EventType::ALL.len(), "{schemas} schema files");

    // Every envelope field has its row in "The envelope".
    let envelope: Value = serde_json::from_str(&read("schemas/envelope.v1.json")).unwrap();
    let (_, table) = sections(&doc)
        .into_iter()
        .find(|(h, _)| h.contains("The envelope"))
        .expect("docs/events.md has a section on the envelope");
    for field in envelope["properties"]
        .as_object()
        .expect("properties")
        .keys()
    {
        assert!(
            table.contains(&format!("| `{field}` |")),
            "docs/events.md, the envelope: no row for `{field}`"
        );
    }
}

/// Every table and view of `store` with its columns, from the database's catalog.
async fn relations(store: &ReadStore) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for r in liandong_testkit::catalog::relations(store).await {
        let columns: Vec<String> = match store {
            ReadStore::Postgres(p) => sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(&r.name)
            .fetch_all(p)
            .await
            .expect("PostgreSQL's columns"),
            ReadStore::Sqlite(p) => {
                if r.name.starts_with("sqlite_") {
                    continue; // SQLite's own (sqlite_sequence)
                }
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                    .bind(&r.name)
                    .fetch_all(p)
                    .await
                    .expect("SQLite's columns")
            }
        };
        out.push((r.name, columns));
    }
    out
}

/// Starts `serve` on `database_url` (or the embedded default), so that every part has made its
/// tables, and checks each relation against docs/read-models.md.
async fn relations_are_documented(database_url: Option<&str>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data_dir = dir.path().display().to_string();
    let cfg = Config::from_lookup(|k| match k {
        "LIANDONG_DATA_DIR" => Some(data_dir.clone()),
        "LIANDONG_LISTEN" => Some("127.0.0.1:0".into()),
        "LIANDONG_DATABASE_URL" => database_url.map(str::to_owned),
        _ => None,
    })
    .expect("a valid configuration");
    let url = cfg.database_url.clone();
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("liandong starts");
    let store = ReadStore::connect(&url).await.expect("the read store");
    let found = relations(&store).await;
    running.stop().await.expect("liandong stops");
    assert!(found.len() > 30, "{} relations: {found:?}", found.len());

    let doc = read("docs/read-models.md");
    let sections = sections(&doc);
    let mut problems = Vec::new();
    for (name, columns) in &found {
        let quoted = format!("`{name}`");
        let own: Vec<&String> = sections
            .iter()
            .filter(|(h, _)| h.contains(&quoted))
            .map(|(_, body)| body)
            .collect();
        if own.is_empty() {
            problems.push(format!("{name}: no section whose heading names it"));
            continue;
        }
        for c in columns {
            if !own.iter().any(|body| body.contains(&format!("`{c}`"))) {
                problems.push(format!("{name}.{c}: not named in its section"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/read-models.md does not document (store {url}):\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_relation_and_column_of_sqlite_is_documented() {
    relations_are_documented(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_relation_and_column_of_postgres_is_documented() {
    if let Some(db) = TestStore::postgres().await {
        relations_are_documented(Some(db.url())).await;
    }
}

/// The relative links of a Markdown file (not URLs, not anchors of the same page).
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(l, _)| l.to_owned()))
        .filter(|l| !l.starts_with("http") && !l.starts_with('#') && !l.starts_with('<'))
        .map(|l| l.split('#').next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn links_and_error_messages_point_into_the_repository() {
    for file in [
        "README.md",
        "docs/events.md",
        "docs/read-models.md",
        "docs/operations.md",
    ] {
        let text = read(file);
        assert!(
            !text.contains("shared/spec"),
            "{file} links the spec outside the repository"
        );
        let base = repo().join(file);
        let dir = base.parent().expect("a folder");
        for link in relative_links(&text) {
            assert!(
                dir.join(&link).exists(),
                "{file}: the link {link:?} leads nowhere"
            );
        }
    }
    let readme = read("README.md");
    for doc in [
        "docs/events.md",
        "docs/read-models.md",
        "docs/operations.md",
    ] {
        assert!(readme.contains(&format!("]({doc})")), "README links {doc}");
    }

    // Messages and descriptions in the code that name a document name one that exists; and the
    // unknown-type rejection names the event contract.
    let mut named = BTreeSet::new();
    let mut stack = vec![repo().join("crates"), repo().join("projections")];
    stack.push(repo().join("schemas"));
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                if !path.ends_with("target") && !path.ends_with("vendor") {
                    stack.push(path);
                }
                continue;
            }
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("rs" | "json" | "js")
            ) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a text file");
            for part in text.split("docs/").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                    .collect();
                if let Some(name) = name.strip_suffix('.').or(Some(&name)) {
                    if name.ends_with(".md") {
                        named.insert(format!("docs/{name}"));
                    }
                }
            }
        }
    }
    assert!(named.contains("docs/events.md"), "{named:?}");
    for doc in &named {
        assert!(
            repo().join(doc).exists(),
            "the code names {doc}, which does not exist"
        );
    }
    let schemas = liandong_event::Schemas::load().expect("the schemas");
    let wire = serde_json::json!({
        "event_id": "6f1c1a9e-2f7a-4d38-9a43-1f1f5b7f4f10", "type": "mp.vist",
        "occurred_at": "2026-11-24T10:00:05+08:00", "user": {"mp_openid": "o_demo"},
        "props": {"page": "pages/index/index"}
    });
    let err = schemas
        .validate(&wire, chrono::Utc::now())
        .expect_err("an unknown type");
    assert!(
        err.0.iter().any(|m| m.contains("docs/events.md")),
        "the unknown-type message names the contract: {err:?}"
    );
}

#[test]
fn the_readme_status_example_shows_the_projections_versions() {
    let cfg = Config::from_lookup(|_| None).expect("the defaults");
    let readme = read("README.md");
    for p in liandong::projections(&cfg, Arc::new(Vault::new(MasterKey::generate()))) {
        let shown = format!(
            "\"projection\":\"{}\",\"version\":{}",
            p.name(),
            p.version()
        );
        assert!(
            readme.contains(&shown),
            "the README's /v1/status example should show {shown}"
        );
    }
}

#[test]
fn rebuild_help_names_the_projections() {
    let out = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["rebuild", "--help"])
        .output()
        .expect("the liandong binary runs");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    let cfg = Config::from_lookup(|_| None).expect("the defaults");
    for p in liandong::projections(&cfg, Arc::new(Vault::new(MasterKey::generate()))) {
        assert!(
            help.contains(&format!("possible values: {}", p.name()))
                || help.contains(&format!("- {}", p.name())),
            "rebuild --help names the projection {}: {help}",
            p.name()
        );
    }
    // And an unknown name is refused by the argument parser, naming the known ones.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["rebuild", "no-such-projection"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("the liandong binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("core"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a refused rebuild creates nothing"
    );
}

/// The variables of the README's configuration table, in its order.
fn readme_settings() -> Vec<String> {
    let readme = read("README.md");
    let (_, table) = sections(&readme)
        .into_iter()
        .find(|(h, _)| h == "## Configuration")
        .expect("the README has a Configuration section");
    table
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `")?;
            Some(rest.split_once('`')?.0.to_owned())
        })
        .collect()
}

#[test]
fn help_and_readme_show_every_setting_with_its_variable_and_default() {
    let coded: Vec<String> = liandong::config::Settings::VARIABLES
        .iter()
        .map(|v| v.to_string())
        .collect();
    let documented = readme_settings();
    let missing: Vec<_> = coded.iter().filter(|v| !documented.contains(v)).collect();
    let stale: Vec<_> = documented.iter().filter(|v| !coded.contains(v)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README's configuration table: settings missing {missing:?}, not settings {stale:?}"
    );
    for command in [
        "serve",
        "ingest",
        "project",
        "keys",
        "rebuild",
        "dead-letter",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_liandong"))
            .args([command, "--help"])
            .env_clear()
            .output()
            .expect("the liandong binary runs");
        assert!(out.status.success(), "{out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        for var in &coded {
            let line = help
                .lines()
                .find(|l| l.contains(&format!("[env: {var}")))
                .unwrap_or_else(|| {
                    panic!("`liandong {command} --help` does not show {var}:\n{help}")
                });
            assert!(
                line.trim_start().starts_with("--") && line.contains("[default: "),
                "`liandong {command} --help`: {var} without its option or default: {line}"
            );
        }
    }
    // A value given on the command line is parsed like the variable, and named by it.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["serve", "--listen", "8080"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("the liandong binary runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LIANDONG_LISTEN: expected host:port"), "{err}");
}

#[test]
fn operations_doc_names_every_metric_family_and_dead_letter_command() {
    let doc = read("docs/operations.md");
    let families = [
        liandong_ingest::metrics::EVENTS_ACCEPTED,
        liandong_ingest::metrics::EVENTS_REJECTED,
        liandong_ingest::metrics::DEAD_LETTERS,
        liandong_ingest::metrics::IDENTITY_CONFLICTS,
        liandong_ingest::metrics::REQUESTS,
        liandong_ingest::metrics::APPEND_SECONDS,
        liandong_ingest::metrics::APPENDED_RECORDS,
        liandong_projector::BATCH_SECONDS,
        liandong_projector::BATCH_EVENTS,
        liandong_projector::EVENTS_APPLIED,
        liandong_projector::BATCHES_FAILED,
        liandong_projector::SKIPPED_OFFSETS,
        liandong::metrics::HTTP_REQUESTS,
        liandong::metrics::HTTP_SECONDS,
        liandong::metrics::PROJECTION_LAG,
        liandong::metrics::PARTITION_LAG,
        liandong::metrics::PROJECTION_PROGRESS,
        liandong::metrics::STATUS_ERRORS,
        liandong::metrics::BUILD_INFO,
    ];
    let dashboard = read("deploy/grafana/liandong.json");
    serde_json::from_str::<Value>(&dashboard).expect("the Grafana dashboard is JSON");
    let alerts = read("deploy/prometheus/alerts.yml");
    for family in families {
        assert!(
            doc.contains(&format!("`{family}`")),
            "docs/operations.md does not name {family}"
        );
    }
    for used in [
        "liandong_projection_lag_records",
        "liandong_ingest_events_rejected_total",
    ] {
        assert!(
            alerts.contains(used),
            "deploy/prometheus/alerts.yml: no rule on {used}"
        );
    }
    // What the dashboard and the rules query exists.
    for text in [&dashboard, &alerts] {
        for name in text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("liandong_"))
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                families.contains(&family),
                "{name} is not a metric liandong serves"
            );
        }
    }
    for reason in liandong_ingest::dead_letter::RejectReason::ALL {
        assert!(
            doc.contains(&format!("`{reason}`")),
            "docs/operations.md: reason {reason}"
        );
    }
    for command in ["liandong dead-letter list", "liandong dead-letter replay"] {
        assert!(doc.contains(command), "docs/operations.md: {command}");
    }
}
