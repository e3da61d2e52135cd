//! Batches of the core projection applied by two projector processes at once, on PostgreSQL
//! (the embedded store writes one transaction at a time). The first batch's transaction is held
//! open while the second runs; only the locks the projection takes in its transactions keep
//! the second from missing what the first wrote. In every case the tables must equal the
//! reference computed from the events, as if the batches had run one after the other.
//!
//! Without the locks each case fails: the event is stored under `oa:o1` after the binding moved
//! that openid's other events (or the binding misses the event); the member's guided visit and
//! its paid order are folded by two batches that each see only one of them.

use std::time::Duration;

use chrono_tz::Tz;
use liandong_event::Event;
use liandong_projections::{read, CoreProjection, Projection, Tx};
use liandong_store::ReadStore;
use liandong_testkit::{reference, TestStore};
use serde_json::{json, Value};

const TZ: Tz = chrono_tz::Asia::Shanghai;

fn ev(id: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-8000-{id:012}"), "type": ty, "occurred_at": at,
           "user": user, "props": props})
}

/// Applies `before`, then `held` in a transaction kept open while `racing` is applied by another
/// connection, then commits `held`; checks the result against the reference.
async fn race(db: &TestStore, before: &[Value], held: &[Value], racing: &[Value]) {
    let store = db.store().clone();
    let ReadStore::Postgres(pool) = &store else {
        panic!("concurrent batches are a PostgreSQL matter")
    };
    let p = std::sync::Arc::new(CoreProjection::new(TZ, liandong_testkit::test_vault()));
    liandong_testkit::fresh_core(&store, &p).await;
    liandong_testkit::apply_batch(&store, p.as_ref(), &liandong_testkit::validated(before)).await;

    let mut first = pool.begin().await.expect("begin");
    p.apply(Tx::Postgres(&mut first), &liandong_testkit::validated(held))
        .await
        .expect("apply the held batch");
    let second = {
        let (pool, p) = (pool.clone(), p.clone());
        let racing = liandong_testkit::validated(racing);
        tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            p.apply(Tx::Postgres(&mut tx), &racing)
                .await
                .expect("apply the racing batch");
            tx.commit().await.expect("commit the racing batch");
        })
    };
    // Long enough for the racing batch to finish, were it not waiting for the held one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.commit().await.expect("commit the held batch");
    second.await.expect("the racing batch");

    let all: Vec<Event> = liandong_testkit::validated(&[before, held, racing].concat())
        .into_iter()
        .collect();
    let (want_events, want_profiles) = reference::compute(&all, TZ);
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    let want = reference::metrics(&all, TZ, today);
    assert_eq!(read::event_identities(&store).await.unwrap(), want_events);
    assert_eq!(read::member_profiles(&store).await.unwrap(), want_profiles);
    let got = reference::stored_metrics(&store).await;
    assert_eq!(got.linkage, want.linkage);
    assert_eq!(got.repurchase, want.repurchase);
    assert_eq!(got.follower, want.follower);
    assert_eq!(got.weekly, want.weekly);
}

fn binding() -> Vec<Value> {
    vec![ev(
        1,
        "member.identified",
        "2026-11-02T10:00:00+08:00",
        json!({"unionid": "u1", "oa_openid": "o1"}),
        json!({}),
    )]
}

fn openid_events() -> Vec<Value> {
    vec![
        ev(
            2,
            "oa.follow",
            "2026-11-01T09:00:00+08:00",
            json!({"oa_openid": "o1"}),
            json!({"via": "mp_prompt"}),
        ),
        ev(
            3,
            "oa.menu.click",
            "2026-11-01T09:05:00+08:00",
            json!({"oa_openid": "o1"}),
            json!({"entry": "立即点餐"}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_held_while_its_openids_events_arrive() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    race(&db, &[], &binding(), &openid_events()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openids_events_held_while_its_binding_arrives() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    race(&db, &[], &openid_events(), &binding()).await;
}

/// One member, two openids on two partitions: a guided visit through the MP and the order it
/// brought, paid through the OA's H5 page, folded by two batches at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_members_visit_and_order_from_two_openids_at_once() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let bind = vec![
        ev(
            10,
            "member.identified",
            "2026-11-01T08:00:00+08:00",
            json!({"unionid": "u2", "oa_openid": "o2", "mp_openid": "m2"}),
            json!({}),
        ),
        // A later order of the member, 10 days after the paid one: a repurchase.
        ev(
            11,
            "order.paid",
            "2026-11-12T12:00:00+08:00",
            json!({"unionid": "u2"}),
            json!({"order_id": "B", "amount_fen": 500}),
        ),
    ];
    let mut visit = ev(
        12,
        "mp.visit",
        "2026-11-02T11:00:00+08:00",
        json!({"mp_openid": "m2"}),
        json!({"page": "pages/index/index"}),
    );
    visit["source"] = json!("from=menu&type=home");
    let paid = ev(
        13,
        "order.paid",
        "2026-11-02T12:00:00+08:00",
        json!({"oa_openid": "o2"}),
        json!({"order_id": "A", "amount_fen": 1990}),
    );
    race(&db, &bind, &[visit.clone()], &[paid.clone()]).await;
    race(&db, &bind, &[paid], &[visit]).await;
}
