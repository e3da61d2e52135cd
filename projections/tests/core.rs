//! The core projection against both stores: hand-made cases at its edges, then the property
//! that the tables depend only on the set of events — any order, any batching, duplicates —
//! and equal the reference model computed from METRICS.md.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use liandong_event::Event;
use liandong_projections::{read, CoreProjection};
use liandong_store::ReadStore;
use liandong_testkit::{on_both_stores, reference, scenario, TestStore};
use proptest::prelude::*;
use serde_json::{json, Value};

const TZ: Tz = chrono_tz::Asia::Shanghai;

fn to_events(wire: &[Value]) -> Vec<Event> {
    liandong_testkit::validated(wire)
}

async fn fresh(store: &ReadStore, projection: &CoreProjection) {
    liandong_testkit::fresh_core(store, projection).await
}

async fn apply(store: &ReadStore, projection: &CoreProjection, batch: &[Event]) {
    liandong_testkit::apply_batch(store, projection, batch).await
}

fn ev(id: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-8000-{id:012}"), "type": ty, "occurred_at": at,
           "user": user, "props": props})
}

async fn late_binding_moves_earlier_events_to_the_unionid(db: &TestStore) {
    let store = db.store();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    fresh(store, &p).await;
    let wire = vec![
        ev(
            1,
            "mp.visit",
            "2026-11-01T23:30:00+08:00",
            json!({"mp_openid": "m1"}),
            json!({"page": "p"}),
        ),
        ev(
            2,
            "order.paid",
            "2026-11-02T10:00:00+08:00",
            json!({"mp_openid": "m1"}),
            json!({"order_id": "A", "amount_fen": 990}),
        ),
        ev(
            3,
            "oa.follow",
            "2026-11-01T09:00:00+08:00",
            json!({"oa_openid": "o1"}),
            json!({"via": "mp_prompt"}),
        ),
    ];
    apply(store, &p, &to_events(&wire)).await;
    let before = read::member_profiles(store).await.unwrap();
    assert_eq!(
        before
            .iter()
            .map(|m| m.member_key.as_str())
            .collect::<Vec<_>>(),
        ["mp:m1", "oa:o1"]
    );

    // The binding arrives after everything else.
    let bind = vec![ev(
        4,
        "member.identified",
        "2026-11-03T00:00:00+08:00",
        json!({"unionid": "U1", "oa_openid": "o1", "mp_openid": "m1"}),
        json!({}),
    )];
    apply(store, &p, &to_events(&bind)).await;
    let after = read::member_profiles(store).await.unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    let m = &after[0];
    assert_eq!(
        (m.member_key.as_str(), m.unionid.as_deref()),
        ("U1", Some("U1"))
    );
    assert_eq!(
        (m.oa_openid.as_deref(), m.mp_openid.as_deref()),
        (Some("o1"), Some("m1"))
    );
    assert_eq!((m.orders_paid, m.revenue_fen, m.following), (1, 990, true));
    assert_eq!(m.first_from.as_deref(), Some("direct"));
    assert_eq!(
        m.first_seen_at,
        "2026-11-01T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let events = read::event_identities(store).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.member_key == "U1" && e.unionid.as_deref() == Some("U1")),
        "{events:?}"
    );
    // 23:30 in Shanghai on Nov 1 is still Nov 1 there (15:30 UTC).
    assert_eq!(events[0].day, "2026-11-01");

    // Replaying everything changes nothing.
    let mut all = to_events(&wire);
    all.extend(to_events(&bind));
    apply(store, &p, &all).await;
    assert_eq!(read::member_profiles(store).await.unwrap(), after);
}
on_both_stores!(late_binding_moves_earlier_events_to_the_unionid);

async fn personal_data_is_not_in_the_events_table(db: &TestStore) {
    let store = db.store();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    fresh(store, &p).await;
    let wire = vec![ev(
        9,
        "member.profile_updated",
        "2026-11-01T10:00:00+08:00",
        json!({"mp_openid": "m9"}),
        json!({"phone": "13800005678", "address": "上海市黄浦区", "level": "gold"}),
    )];
    apply(store, &p, &to_events(&wire)).await;
    let props: String = match store {
        ReadStore::Postgres(p) => sqlx::query_scalar("SELECT props::text FROM events")
            .fetch_one(p)
            .await
            .unwrap(),
        ReadStore::Sqlite(p) => sqlx::query_scalar("SELECT props FROM events")
            .fetch_one(p)
            .await
            .unwrap(),
    };
    assert!(
        !props.contains("13800005678") && !props.contains("黄浦"),
        "{props}"
    );
    assert!(props.contains("gold"));
}
on_both_stores!(personal_data_is_not_in_the_events_table);

/// Any order, any batching, with duplicates: the same tables, equal to the reference.
async fn order_independence(db: &TestStore) {
    let store = db.store();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    let shape = scenario::Shape {
        members: 30,
        events_per_member: 10,
        ..Default::default()
    };
    let wire = scenario::events(&shape);
    let (want_events, want_profiles) = reference::compute(&to_events(&wire), TZ);
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    let want_metrics = reference::metrics(&to_events(&wire), TZ, today);
    assert!(
        want_metrics.ab.iter().any(|r| r.p_value.is_some()),
        "the scenario runs an A/B test"
    );
    let surfaces: std::collections::BTreeSet<&str> =
        want_metrics.ab.iter().map(|r| r.surface.as_str()).collect();
    assert_eq!(
        surfaces.len(),
        5,
        "A/B tests on every surface: {surfaces:?}"
    );
    let sum = |f: fn(&liandong_projections::read::MessageDay) -> i64| -> i64 {
        want_metrics.messages.iter().map(f).sum()
    };
    assert!(
        sum(|r| r.sent_users) > sum(|r| r.delivered_users)
            && sum(|r| r.clicked_users) > 0
            && sum(|r| r.visit_users) > 0
            && sum(|r| r.converted_users) > 0,
        "the scenario's messages reach every step of the funnel"
    );
    assert!(
        want_metrics
            .messages
            .iter()
            .any(|r| r.channel == "mp_notify")
            && want_metrics
                .messages
                .iter()
                .any(|r| r.channel == "oa_template")
    );
    assert!(
        want_metrics
            .activities
            .iter()
            .any(|a| a.reserved_joined_users > 0
                && a.guided_joined_users > 0
                && a.groups_completed > 0
                && a.groups_started > a.groups_completed
                && a.orders_paid > 0),
        "the scenario's campaigns: {:?}",
        want_metrics.activities
    );
    assert!(
        want_metrics.repurchase.iter().any(|r| r.size > 0)
            && want_metrics.follower.iter().any(|r| r.size > 0)
    );
    assert!(
        want_profiles.iter().any(|m| m.unionid.is_some())
            && want_profiles.iter().any(|m| m.unionid.is_none())
    );

    let rt = tokio::runtime::Handle::current();
    let cases = ProptestConfig {
        cases: 10,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let outcome = tokio::task::block_in_place(|| {
        proptest::test_runner::TestRunner::new(cases).run(
            &(any::<u64>(), any::<bool>(), 1usize..200),
            |(seed, late, batch)| {
                let shuffled = to_events(&scenario::shuffled_with_duplicates(&wire, seed, late));
                rt.block_on(async {
                    fresh(store, &p).await;
                    for chunk in shuffled.chunks(batch) {
                        apply(store, &p, chunk).await;
                    }
                    let got_events = read::event_identities(store).await.unwrap();
                    let got_profiles = read::member_profiles(store).await.unwrap();
                    prop_assert_eq!(&got_events, &want_events);
                    prop_assert_eq!(&got_profiles, &want_profiles);
                    let got_metrics = reference::stored_metrics(store).await;
                    prop_assert_eq!(&got_metrics.menu, &want_metrics.menu);
                    prop_assert_eq!(&got_metrics.article, &want_metrics.article);
                    prop_assert_eq!(&got_metrics.linkage, &want_metrics.linkage);
                    prop_assert_eq!(&got_metrics.repurchase, &want_metrics.repurchase);
                    prop_assert_eq!(&got_metrics.follower, &want_metrics.follower);
                    prop_assert_eq!(&got_metrics.weekly, &want_metrics.weekly);
                    prop_assert_eq!(&got_metrics.ab, &want_metrics.ab);
                    Ok(())
                })
            },
        )
    });
    outcome.unwrap();
}
on_both_stores!(order_independence);
