//! `member_personal` on both stores: each member's latest sealed phone and address, whatever
//! the order, batching and duplication of the events; moved to the unionid by a late binding;
//! gone with an erasure; the same after a rebuild. Plaintext personal data in an event (one
//! logged before ingestion sealed it) never reaches the read store.

use chrono_tz::Tz;
use liandong_event::Event;
use liandong_projections::CoreProjection;
use liandong_store::{sqlx, ReadStore};
use liandong_testkit::{
    apply_batch, catalog, fresh_core, on_both_stores, test_vault, validated, TestStore,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

const TZ: Tz = chrono_tz::Asia::Shanghai;
const UNIONID: &str = "uPERSONALunion01";
const OA: &str = "oPERSONALoa01";
const MP: &str = "oPERSONALmp01";
const OTHER: &str = "oPERSONALother01";

fn ev(n: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-a000-{n:012}"), "type": ty,
           "occurred_at": at, "user": user, "props": props})
}

/// A profile update as ingestion logs it: the personal props moved to `sealed`, each value
/// replaced by a stand-in for its ciphertext (opaque to the projection).
fn sealed_update(
    n: u32,
    at: &str,
    user: Value,
    phone: Option<&str>,
    address: Option<&str>,
) -> Event {
    let mut props = json!({"level": "gold"});
    if let Some(p) = phone {
        props["phone"] = json!(p);
    }
    if let Some(a) = address {
        props["address"] = json!(a);
    }
    let mut e = validated(&[ev(n, "member.profile_updated", at, user, props)]).remove(0);
    for (name, plain) in e.take_personal_data() {
        e.sealed
            .insert(name.to_owned(), format!("ld1:sealed:{plain}"));
    }
    e
}

fn events() -> Vec<Event> {
    let mut out = vec![
        // Before the binding, under the MP openid, then the OA openid.
        sealed_update(
            1,
            "2026-11-01T10:00:00+08:00",
            json!({"mp_openid": MP}),
            Some("p1"),
            None,
        ),
        sealed_update(
            2,
            "2026-11-02T10:00:00+08:00",
            json!({"oa_openid": OA}),
            None,
            Some("a2"),
        ),
        // Earlier than both, arriving in any order: loses to them.
        sealed_update(
            3,
            "2026-10-01T10:00:00+08:00",
            json!({"mp_openid": MP}),
            Some("p0"),
            Some("a0"),
        ),
        // The latest phone, under the unionid.
        sealed_update(
            4,
            "2026-11-04T10:00:00+08:00",
            json!({"unionid": UNIONID}),
            Some("p4"),
            None,
        ),
        // Another member, openid only.
        sealed_update(
            5,
            "2026-11-01T09:00:00+08:00",
            json!({"oa_openid": OTHER}),
            Some("q5"),
            Some("b5"),
        ),
    ];
    out.extend(validated(&[
        ev(
            6,
            "member.identified",
            "2026-11-03T10:00:00+08:00",
            json!({"unionid": UNIONID, "oa_openid": OA, "mp_openid": MP}),
            json!({}),
        ),
        ev(
            7,
            "member.profile_updated",
            "2026-11-05T10:00:00+08:00",
            json!({"unionid": UNIONID}),
            json!({"level": "platinum"}),
        ),
    ]));
    out
}

/// (member_key, phone_sealed, address_sealed, updated_at) of every row, sorted.
async fn rows(store: &ReadStore) -> Vec<(String, Option<String>, Option<String>, String)> {
    match store {
        ReadStore::Postgres(p) => {
            sqlx::query_as(
                "SELECT member_key, phone_sealed, address_sealed,
                to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
             FROM member_personal ORDER BY member_key",
            )
            .fetch_all(p)
            .await
        }
        ReadStore::Sqlite(p) => {
            sqlx::query_as(
                "SELECT member_key, phone_sealed, address_sealed, updated_at
             FROM member_personal ORDER BY member_key",
            )
            .fetch_all(p)
            .await
        }
    }
    .expect("read member_personal")
}

fn row(
    key: &str,
    phone: &str,
    address: &str,
    at: &str,
) -> (String, Option<String>, Option<String>, String) {
    (
        key.to_owned(),
        Some(format!("ld1:sealed:{phone}")),
        Some(format!("ld1:sealed:{address}")),
        at.to_owned(),
    )
}

fn expected() -> Vec<(String, Option<String>, Option<String>, String)> {
    vec![
        row(
            &format!("oa:{OTHER}"),
            "q5",
            "b5",
            "2026-11-01T01:00:00.000000Z",
        ),
        row(UNIONID, "p4", "a2", "2026-11-04T02:00:00.000000Z"),
    ]
}

async fn latest_values_whatever_the_order(db: &TestStore) {
    let core = CoreProjection::new(TZ, test_vault());
    let all = events();

    // One event at a time: before the binding the values sit under the openid keys.
    fresh_core(db.store(), &core).await;
    apply_batch(db.store(), &core, &all[..2]).await;
    assert_eq!(
        rows(db.store()).await,
        vec![
            (
                format!("mp:{MP}"),
                Some("ld1:sealed:p1".into()),
                None,
                "2026-11-01T02:00:00.000000Z".into()
            ),
            (
                format!("oa:{OA}"),
                None,
                Some("ld1:sealed:a2".into()),
                "2026-11-02T02:00:00.000000Z".into()
            ),
        ]
    );

    for seed in 0..6u64 {
        fresh_core(db.store(), &core).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut shuffled = all.clone();
        // Redeliveries count once.
        shuffled.extend(all.choose_multiple(&mut rng, 3).cloned());
        shuffled.shuffle(&mut rng);
        for batch in shuffled.chunks(1 + seed as usize % 4) {
            apply_batch(db.store(), &core, batch).await;
        }
        assert_eq!(rows(db.store()).await, expected(), "seed {seed}");
    }
}
on_both_stores!(latest_values_whatever_the_order);

async fn erasure_removes_the_sealed_values(db: &TestStore) {
    let core = CoreProjection::new(TZ, test_vault());
    fresh_core(db.store(), &core).await;
    apply_batch(db.store(), &core, &events()).await;
    let erased = validated(&[ev(
        8,
        "member.erased",
        "2026-11-06T10:00:00+08:00",
        json!({"unionid": UNIONID}),
        json!({}),
    )]);
    apply_batch(db.store(), &core, &erased).await;
    assert_eq!(rows(db.store()).await, expected()[..1].to_vec());
    let found = catalog::find(
        db.store(),
        &["ld1:sealed:p", "ld1:sealed:a", UNIONID, OA, MP],
    )
    .await;
    assert!(found.is_empty(), "{found:#?}");
    // The other member's values are still there (the search does find what is stored).
    assert!(!catalog::find(db.store(), &["ld1:sealed:q5"])
        .await
        .is_empty());
}
on_both_stores!(erasure_removes_the_sealed_values);

async fn plaintext_never_reaches_the_read_store(db: &TestStore) {
    let core = CoreProjection::new(TZ, test_vault());
    fresh_core(db.store(), &core).await;
    // As logged before ingestion sealed personal data: phone and address in props.
    let legacy = validated(&[ev(
        9,
        "member.profile_updated",
        "2026-11-01T10:00:00+08:00",
        json!({"oa_openid": OTHER}),
        json!({"phone": "13955554444", "address": "南京市鼓楼区中山路321号", "level": "gold"}),
    )]);
    apply_batch(db.store(), &core, &legacy).await;
    let found = catalog::find(db.store(), &["13955554444", "55554444", "中山路321"]).await;
    assert!(found.is_empty(), "{found:#?}");
    assert!(rows(db.store()).await.is_empty());
    // The event itself is projected (its level, its member).
    assert!(!catalog::find(db.store(), &[OTHER]).await.is_empty());
}
on_both_stores!(plaintext_never_reaches_the_read_store);
