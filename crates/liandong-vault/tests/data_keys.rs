//! Per-member data keys on both read stores: sealing and opening, tampering, the wrong master
//! key, crypto-shredding, and concurrent first seals.

use std::sync::Arc;

use liandong_store::{sqlx, ReadStore};
use liandong_testkit::{on_both_stores, TestStore};
use liandong_vault::{is_sealed, migrate, DataKeys, MasterKey, Vault, VaultError};

const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ALICE: &str = "oUnion_alice_0001";
const BOB: &str = "oUnion_bob_0002";
const PHONE: &str = "13812345678";
const ADDRESS: &str = "上海市徐汇区漕溪北路88号";

fn vault(master: &str) -> Arc<Vault> {
    Arc::new(Vault::new(
        MasterKey::parse_base64(master).expect("a valid master key"),
    ))
}

async fn keys(db: &TestStore) -> DataKeys {
    let v = vault(MASTER);
    migrate(db.store(), &v).await.expect("vault tables");
    DataKeys::new(db.store().clone(), v)
}

async fn stored_keys(store: &ReadStore) -> Vec<(String, Vec<u8>)> {
    const Q: &str = "SELECT key_ref, wrapped FROM liandong_data_keys ORDER BY key_ref";
    match store {
        ReadStore::Postgres(p) => sqlx::query_as(Q).fetch_all(p).await,
        ReadStore::Sqlite(p) => sqlx::query_as(Q).fetch_all(p).await,
    }
    .expect("read liandong_data_keys")
}

/// The same text with one character of the base64 body changed.
fn flip_body(sealed: &str) -> String {
    let (head, body) = sealed.rsplit_once(':').expect("a sealed value");
    let mut chars: Vec<char> = body.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    format!("{head}:{}", chars.into_iter().collect::<String>())
}

async fn round_trip(db: &TestStore) {
    let k = keys(db).await;
    let a = k.seal(ALICE, PHONE).await.expect("seal");
    let b = k.seal(ALICE, PHONE).await.expect("seal again");
    assert!(a.starts_with("ld1:") && is_sealed(&a), "{a}");
    assert_ne!(a, b, "a fresh nonce per seal");
    for s in [&a, &b] {
        assert!(!s.contains(PHONE) && !s.contains("5678"), "{s}");
        assert_eq!(k.open(s).await.expect("open").as_deref(), Some(PHONE));
    }
    let addr = k.seal(ALICE, ADDRESS).await.expect("seal an address");
    assert_eq!(k.open(&addr).await.expect("open").as_deref(), Some(ADDRESS));
    let empty = k.seal(ALICE, "").await.expect("seal nothing");
    assert_eq!(k.open(&empty).await.expect("open").as_deref(), Some(""));
    // One key for Alice, whatever the number of seals; it does not name her.
    let rows = stored_keys(db.store()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, k.key_ref(ALICE));
    assert!(!rows[0].0.contains(ALICE));
    // A fresh process (an empty cache) opens them too.
    let other = DataKeys::new(db.store().clone(), vault(MASTER));
    assert_eq!(other.open(&a).await.expect("open").as_deref(), Some(PHONE));
}
on_both_stores!(round_trip);

async fn tampering_is_an_error(db: &TestStore) {
    let k = keys(db).await;
    let a = k.seal(ALICE, PHONE).await.expect("seal");
    let err = k
        .open(&flip_body(&a))
        .await
        .expect_err("altered ciphertext");
    assert!(matches!(err, VaultError::Tampered { .. }), "{err}");

    // Alice's ciphertext presented as Bob's (his reference and key id): does not authenticate.
    let b = k.seal(BOB, PHONE).await.expect("seal for Bob");
    let (a_head, a_body) = a.rsplit_once(':').expect("sealed");
    let (b_head, _) = b.rsplit_once(':').expect("sealed");
    assert_ne!(a_head, b_head, "two identifiers, two keys");
    let err = k
        .open(&format!("{b_head}:{a_body}"))
        .await
        .expect_err("moved to another member");
    assert!(matches!(err, VaultError::Tampered { .. }), "{err}");
    // Same reference, another key id: opens to nothing rather than to a wrong key.
    let a_other_id = format!("{}:0000000000000000:{a_body}", &a_head[..a_head.len() - 17]);
    assert_eq!(k.open(&a_other_id).await.expect("open"), None);

    for bad in [
        "",
        PHONE,
        "ld1:abc:def",
        "ld2:0000000000000000000000000000000000000000000000000000000000000000:0000000000000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &format!("{a_head}:not base64!"),
        &format!("{a_head}:AAAA"),
    ] {
        let err = k.open(bad).await.expect_err(bad);
        assert!(matches!(err, VaultError::Malformed(_)), "{bad}: {err}");
        assert!(!is_sealed(bad));
    }
}
on_both_stores!(tampering_is_an_error);

async fn the_wrong_master_key_is_refused(db: &TestStore) {
    let k = keys(db).await;
    let a = k.seal(ALICE, PHONE).await.expect("seal");
    let other = vault(&MasterKey::generate().to_base64());
    let err = migrate(db.store(), &other)
        .await
        .expect_err("start-up with another master key");
    assert!(matches!(err, VaultError::MasterKeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("LIANDONG_MASTER_KEY"), "{err}");
    // Even without the start-up check, its data keys do not unwrap.
    let wrong = DataKeys::new(db.store().clone(), other);
    let err = wrong.open(&a).await.expect_err("wrong master");
    assert!(matches!(err, VaultError::Unwrap { .. }), "{err}");
    // The right one still opens, and its start-up check passes.
    migrate(db.store(), &vault(MASTER)).await.expect("same key");
    assert_eq!(k.open(&a).await.expect("open").as_deref(), Some(PHONE));
}
on_both_stores!(the_wrong_master_key_is_refused);

async fn destroy_shreds_at_once(db: &TestStore) {
    let k = keys(db).await;
    let a = k.seal(ALICE, PHONE).await.expect("seal");
    let b = k.seal(BOB, ADDRESS).await.expect("seal");
    // Both keys are cached now.
    assert_eq!(k.open(&a).await.expect("open").as_deref(), Some(PHONE));
    assert_eq!(
        k.destroy(&[ALICE, "never-sealed"]).await.expect("destroy"),
        1
    );
    assert_eq!(k.open(&a).await.expect("open"), None, "destroyed: None");
    assert_eq!(k.open(&b).await.expect("open").as_deref(), Some(ADDRESS));
    let fresh = DataKeys::new(db.store().clone(), vault(MASTER));
    assert_eq!(fresh.open(&a).await.expect("open"), None);
    assert_eq!(stored_keys(db.store()).await.len(), 1);

    // Sealing for Alice again makes a new key; what was shredded stays shredded.
    let again = k.seal(ALICE, "13900000000").await.expect("seal");
    assert_eq!(
        k.open(&again).await.expect("open").as_deref(),
        Some("13900000000")
    );
    assert_eq!(k.open(&a).await.expect("open"), None);
    assert_eq!(fresh.open(&a).await.expect("open"), None);
    assert_eq!(k.destroy(&[ALICE, BOB]).await.expect("destroy"), 2);
    assert_eq!(k.destroy(&[ALICE, BOB]).await.expect("destroy"), 0);
    assert_eq!(k.open(&b).await.expect("open"), None);
}
on_both_stores!(destroy_shreds_at_once);

async fn two_identifiers_two_keys(db: &TestStore) {
    let k = keys(db).await;
    k.seal(ALICE, PHONE).await.expect("seal");
    k.seal(BOB, PHONE).await.expect("seal");
    let rows = stored_keys(db.store()).await;
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0].0, rows[1].0);
    assert_ne!(rows[0].1, rows[1].1);
    assert_ne!(k.key_ref(ALICE), k.key_ref(BOB));
}
on_both_stores!(two_identifiers_two_keys);

async fn concurrent_first_seals_end_with_one_key(db: &TestStore) {
    let first = keys(db).await;
    // Two processes: two caches, one store.
    let second = DataKeys::new(db.store().clone(), vault(MASTER));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let k = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            k.seal(ALICE, &format!("1380000{i:04}")).await
        }));
    }
    let mut sealed = Vec::new();
    for t in tasks {
        sealed.push(t.await.expect("task").expect("seal"));
    }
    assert_eq!(stored_keys(db.store()).await.len(), 1, "one key");
    for (i, s) in sealed.iter().enumerate() {
        let want = format!("1380000{i:04}");
        assert_eq!(first.open(s).await.expect("open"), Some(want.clone()));
        assert_eq!(second.open(s).await.expect("open"), Some(want));
    }
}
on_both_stores!(concurrent_first_seals_end_with_one_key);
