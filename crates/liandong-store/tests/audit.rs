//! The audit trail and the stored API keys on both stores: entries come back newest first, page
//! by page and by filter; nothing can change or remove an entry; every key change is recorded
//! with it.

use liandong_store::api_keys::{self, NewApiKey, Revoked};
use liandong_store::audit::{self, action, AuditEntry, AuditQuery};
use liandong_store::{ReadStore, StoreError};
use liandong_testkit::{on_both_stores, TestStore};

fn entry(i: usize) -> AuditEntry {
    AuditEntry {
        key_id: format!("key{}", i % 3),
        role: "support".into(),
        action: if i % 2 == 0 {
            action::MEMBER_READ
        } else {
            action::MEMBER_ERASE
        }
        .into(),
        endpoint: "GET /v1/members/{member_key}".into(),
        member_ref: (i % 5 != 0).then(|| format!("ref{}", i % 4)),
        detail: (i == 7).then(|| "found".into()),
    }
}

async fn exec(store: &ReadStore, sql: &str) -> Result<u64, StoreError> {
    Ok(match store {
        ReadStore::Postgres(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
        ReadStore::Sqlite(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
    })
}

async fn audit_lists_newest_first_with_paging_and_filters(db: &TestStore) {
    let store = db.store();
    store.init().await.expect("init");
    store.init().await.expect("init is idempotent");
    let entries: Vec<AuditEntry> = (0..23).map(entry).collect();
    let before = chrono::Utc::now();
    for e in &entries {
        audit::record(store, e).await.expect("record");
    }

    // Page through everything, 10 at a time: newest first, nothing lost or repeated.
    let mut seen = Vec::new();
    let mut before_id = None;
    loop {
        let page = audit::list(
            store,
            &AuditQuery {
                limit: 10,
                before_id,
                ..AuditQuery::default()
            },
        )
        .await
        .expect("list");
        assert!(page.len() <= 10);
        if page.is_empty() {
            break;
        }
        before_id = page.last().map(|r| r.id);
        seen.extend(page);
    }
    assert_eq!(seen.len(), entries.len());
    assert!(seen.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    for (record, e) in seen.iter().rev().zip(&entries) {
        let back = AuditEntry {
            key_id: record.key_id.clone(),
            role: record.role.clone(),
            action: record.action.clone(),
            endpoint: record.endpoint.clone(),
            member_ref: record.member_ref.clone(),
            detail: record.detail.clone(),
        };
        assert_eq!(&back, e);
        assert!(record.at >= before - chrono::Duration::seconds(1));
    }

    // Filters combine; each matches exactly the entries with that value.
    let q = AuditQuery {
        limit: 100,
        action: Some(action::MEMBER_READ.into()),
        key_id: Some("key1".into()),
        member_ref: Some("ref0".into()),
        ..AuditQuery::default()
    };
    let found = audit::list(store, &q).await.expect("filtered list");
    let expected: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| {
            e.action == action::MEMBER_READ
                && e.key_id == "key1"
                && e.member_ref.as_deref() == Some("ref0")
        })
        .collect();
    assert!(!expected.is_empty(), "the filter test needs matches");
    assert_eq!(found.len(), expected.len());
    assert!(found
        .iter()
        .all(|r| r.action == action::MEMBER_READ && r.key_id == "key1"));
}
on_both_stores!(audit_lists_newest_first_with_paging_and_filters);

async fn audit_entries_cannot_be_changed_or_removed(db: &TestStore) {
    let store = db.store();
    store.init().await.expect("init");
    audit::record(store, &entry(1)).await.expect("record");
    for sql in [
        "UPDATE liandong_audit SET key_id = 'someone-else'",
        "UPDATE liandong_audit SET member_ref = NULL",
        "DELETE FROM liandong_audit",
        "DELETE FROM liandong_audit WHERE id = 1",
    ] {
        let err = exec(store, sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if let ReadStore::Postgres(_) = store {
        let err = exec(store, "TRUNCATE liandong_audit")
            .await
            .expect_err("truncate");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    let all = audit::list(store, &AuditQuery::default())
        .await
        .expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].key_id, entry(1).key_id);
    // Appending still works after refused changes.
    audit::record(store, &entry(2)).await.expect("record");
    assert_eq!(
        audit::list(store, &AuditQuery::default())
            .await
            .unwrap()
            .len(),
        2
    );
}
on_both_stores!(audit_entries_cannot_be_changed_or_removed);

fn cli(action: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        key_id: "cli:tester".into(),
        role: "admin".into(),
        action: action.into(),
        endpoint: format!("liandong keys {}", action.trim_start_matches("key.")),
        member_ref: None,
        detail: Some(detail.into()),
    }
}

async fn key_changes_are_stored_and_audited_together(db: &TestStore) {
    let store = db.store();
    store.init().await.expect("init");
    let key = NewApiKey {
        key_id: "0123456789ab".into(),
        role: "analyst".into(),
        sha256: "0123456789ab".repeat(5) + "cdef",
        label: Some("dashboard".into()),
    };
    let row = api_keys::create(store, &key, &cli(action::KEY_CREATE, &key.key_id))
        .await
        .expect("create");
    assert_eq!(
        (row.key_id.as_str(), row.role.as_str(), row.revoked_at),
        ("0123456789ab", "analyst", None)
    );
    assert_eq!(row.label.as_deref(), Some("dashboard"));
    // The same id or digest twice is refused, and leaves no audit entry.
    assert!(
        api_keys::create(store, &key, &cli(action::KEY_CREATE, "dup"))
            .await
            .is_err()
    );
    assert_eq!(api_keys::active(store).await.unwrap(), vec![row.clone()]);

    let revoked = api_keys::revoke(store, &key.key_id, &cli(action::KEY_REVOKE, &key.key_id))
        .await
        .expect("revoke");
    let Revoked::Now(revoked) = revoked else {
        panic!("expected a revocation, got {revoked:?}")
    };
    let at = revoked.revoked_at.expect("revoked_at is set");
    assert!(api_keys::active(store).await.unwrap().is_empty());
    assert_eq!(
        api_keys::revoke(store, &key.key_id, &cli(action::KEY_REVOKE, "again"))
            .await
            .unwrap(),
        Revoked::Already(at)
    );
    assert_eq!(
        api_keys::revoke(store, "ffffffffffff", &cli(action::KEY_REVOKE, "none"))
            .await
            .unwrap(),
        Revoked::Unknown
    );
    let listed = api_keys::list(store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(at));

    // One entry per change that happened: the creation and the first revocation.
    let trail = audit::list(store, &AuditQuery::default()).await.unwrap();
    let trail: Vec<(&str, Option<&str>)> = trail
        .iter()
        .map(|r| (r.action.as_str(), r.detail.as_deref()))
        .collect();
    assert_eq!(
        trail,
        vec![
            (action::KEY_REVOKE, Some("0123456789ab")),
            (action::KEY_CREATE, Some("0123456789ab")),
        ]
    );
}
on_both_stores!(key_changes_are_stored_and_audited_together);
