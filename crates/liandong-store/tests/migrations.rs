//! The store's own tables are migrations (`migrations/`, versions 1001…) that share sqlx's
//! `_sqlx_migrations` with the other crates' migrations: a store made before they were
//! migrations upgrades in place, and each crate's migrator leaves the others' versions alone.

use liandong_store::api_keys::{self, NewApiKey};
use liandong_store::audit::{action, AuditEntry};
use liandong_store::ReadStore;
use liandong_testkit::{on_both_stores, TestStore};
use sqlx::migrate::Migrator;

async fn applied_versions(store: &ReadStore) -> Vec<i64> {
    let rows: Vec<(i64,)> = store
        .fetch_all(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            &[],
        )
        .await
        .expect("_sqlx_migrations");
    rows.into_iter().map(|(v,)| v).collect()
}

/// A store whose API keys table was created by an earlier build (in code, before the store's
/// tables were migrations) keeps its keys when the migrations run over it.
async fn a_store_made_before_the_migrations_keeps_its_rows(db: &TestStore) {
    let store = db.store();
    let created_at = match store.dialect() {
        liandong_store::Dialect::Postgres => "TIMESTAMPTZ",
        liandong_store::Dialect::Sqlite => "TEXT",
    };
    store
        .execute(
            &format!(
                "CREATE TABLE liandong_api_keys (
                    key_id TEXT PRIMARY KEY, role TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
                    label TEXT, created_at {created_at} NOT NULL, revoked_at {created_at})"
            ),
            &[],
        )
        .await
        .expect("the table of an earlier build");
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .to_utc();
    store
        .execute(
            "INSERT INTO liandong_api_keys (key_id, role, sha256, label, created_at)
             VALUES ('0123456789ab', 'admin', 'digest', 'ops', $1)",
            &[at.into()],
        )
        .await
        .expect("a key of the earlier build");

    store
        .init()
        .await
        .expect("the migrations run over the existing tables");
    store.init().await.expect("and again, as a no-op");

    assert_eq!(applied_versions(store).await, vec![1001]);
    let keys = api_keys::list(store).await.expect("keys");
    assert_eq!(keys.len(), 1, "the earlier build's key is kept");
    assert_eq!(keys[0].key_id, "0123456789ab");
    assert_eq!(keys[0].created_at, at);
    // The tables the earlier build did not have are there now.
    api_keys::create(
        store,
        &NewApiKey {
            key_id: "ba9876543210".into(),
            role: "read".into(),
            sha256: "another digest".into(),
            label: None,
        },
        &AuditEntry {
            key_id: "cli:test".into(),
            role: "admin".into(),
            action: action::KEY_CREATE.into(),
            endpoint: "liandong keys create".into(),
            member_ref: None,
            detail: Some("ba9876543210".into()),
        },
    )
    .await
    .expect("a new key and its audit entry");
}
on_both_stores!(a_store_made_before_the_migrations_keeps_its_rows);

/// Another crate's migrations (versions this crate does not know) recorded in the same
/// `_sqlx_migrations` are not "missing": the store's migrator runs after them, and they after it.
async fn migrators_of_several_crates_share_one_table(db: &TestStore) {
    let store = db.store();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_other_crate.sql"),
        "CREATE TABLE other_crate_table (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    let mut other = Migrator::new(dir.path())
        .await
        .expect("the other crate's migrations");
    other.set_ignore_missing(true);

    store
        .run_migrations(&other, &other)
        .await
        .expect("the other crate first");
    store
        .init()
        .await
        .expect("the store's after another crate's");
    store
        .run_migrations(&other, &other)
        .await
        .expect("the other crate again, after the store's");
    assert_eq!(applied_versions(store).await, vec![1, 1001]);
}
on_both_stores!(migrators_of_several_crates_share_one_table);
