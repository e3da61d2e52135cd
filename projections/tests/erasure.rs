//! Erasure in the core projection, on both stores: after `member.erased` no relation of the read
//! store holds the member's identifiers, every read model equals the reference computed from
//! the log without the member's events (the aggregates the member was counted in are recounted,
//! not left stale), events about the member arriving later are skipped, and a rebuild from the
//! start of the log — in another order, other batches — gives the same tables, row for row.
//! The analysts' views never show an identifier, before or after.

use chrono_tz::Tz;
use liandong_event::Event;
use liandong_projections::{erasure, read, CoreProjection, Projection, ANALYST_RELATIONS};
use liandong_store::ReadStore;
use liandong_testkit::{
    apply_batch, catalog, fresh_core, on_both_stores, reference, scenario, test_vault, validated,
    TestStore,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

const TZ: Tz = chrono_tz::Asia::Shanghai;

// Distinctive, so that finding one in a row cannot be a coincidence.
const UNIONID: &str = "uERASEDunionid01";
const OA: &str = "oERASEDoaopenid01";
const MP: &str = "oERASEDmpopenid01";
/// A member known by its MP openid alone.
const MP_ONLY: &str = "oERASEDmponly01";
const ALL_ERASED: [&str; 4] = [UNIONID, OA, MP, MP_ONLY];

fn ev(n: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-a000-{n:012}"), "type": ty,
           "occurred_at": at, "user": user, "props": props})
}

/// The member to erase: seen on the MP, then the OA, bound late; counted in every relation —
/// linkage, conversion and repurchase, follower retention, weekly retention, the A/B test, menu
/// and article traffic — on days and in an experiment the other members share.
fn member_events() -> Vec<Value> {
    let mp = || json!({"mp_openid": MP});
    let oa = || json!({"oa_openid": OA});
    let mut visit = ev(
        1,
        "mp.visit",
        "2026-10-03T10:00:00+08:00",
        mp(),
        json!({"page": "pages/index/index"}),
    );
    visit["source"] = json!("from=menu&type=home");
    vec![
        visit,
        ev(
            2,
            "order.placed",
            "2026-10-03T10:05:00+08:00",
            mp(),
            json!({"order_id": "ERASED-1", "amount_fen": 1800}),
        ),
        ev(
            3,
            "order.paid",
            "2026-10-04T09:00:00+08:00",
            mp(),
            json!({"order_id": "ERASED-1", "amount_fen": 1800}),
        ),
        ev(
            4,
            "order.paid",
            "2026-10-14T09:00:00+08:00",
            mp(),
            json!({"order_id": "ERASED-2", "amount_fen": 900}),
        ),
        ev(
            5,
            "oa.menu.exposure",
            "2026-10-05T12:00:00+08:00",
            oa(),
            json!({"entry": "进入小程序点餐", "experiment": "entry_name", "variant": "b"}),
        ),
        ev(
            6,
            "oa.menu.click",
            "2026-10-05T12:00:05+08:00",
            oa(),
            json!({"entry": "进入小程序点餐", "experiment": "entry_name", "variant": "b"}),
        ),
        ev(
            7,
            "oa.article.read",
            "2026-10-06T08:00:00+08:00",
            oa(),
            json!({"article_id": "a1"}),
        ),
        ev(
            8,
            "oa.article.click",
            "2026-10-06T08:01:00+08:00",
            oa(),
            json!({"article_id": "a1", "link": "card"}),
        ),
        ev(
            9,
            "oa.follow",
            "2026-10-03T10:10:00+08:00",
            oa(),
            json!({"via": "mp_prompt"}),
        ),
        ev(
            10,
            "member.identified",
            "2026-10-20T00:00:00+08:00",
            json!({"unionid": UNIONID, "oa_openid": OA, "mp_openid": MP}),
            json!({}),
        ),
        ev(
            11,
            "member.profile_updated",
            "2026-10-21T00:00:00+08:00",
            json!({"unionid": UNIONID}),
            json!({"level": "gold"}),
        ),
        ev(
            12,
            "activity.reserved",
            "2026-10-03T11:00:00+08:00",
            mp(),
            json!({"activity_id": "act-1"}),
        ),
        ev(
            13,
            "mp.visit",
            "2026-10-03T09:00:00+08:00",
            json!({"mp_openid": MP_ONLY}),
            json!({"page": "pages/index/index"}),
        ),
        ev(
            14,
            "oa.menu.exposure",
            "2026-10-05T12:00:00+08:00",
            json!({"oa_openid": "oNEVERerased01"}),
            json!({"entry": "进入小程序点餐", "experiment": "entry_name", "variant": "b"}),
        ),
    ]
}

/// Erasures: the member by its unionid alone (the projection finds the openids), the MP-only
/// member by its openid.
fn erasures() -> Vec<Value> {
    vec![
        ev(
            100,
            "member.erased",
            "2026-10-25T00:00:00+08:00",
            json!({"unionid": UNIONID}),
            json!({}),
        ),
        ev(
            101,
            "member.erased",
            "2026-10-25T00:00:00+08:00",
            json!({"mp_openid": MP_ONLY}),
            json!({}),
        ),
    ]
}

/// Events about the erased members that arrive after their erasure.
fn late_events() -> Vec<Value> {
    vec![
        ev(
            200,
            "mp.visit",
            "2026-10-26T10:00:00+08:00",
            json!({"mp_openid": MP}),
            json!({"page": "pages/index/index"}),
        ),
        ev(
            201,
            "order.paid",
            "2026-10-26T11:00:00+08:00",
            json!({"unionid": UNIONID, "oa_openid": OA}),
            json!({"order_id": "ERASED-3", "amount_fen": 100}),
        ),
        ev(
            202,
            "mp.page_view",
            "2026-10-26T12:00:00+08:00",
            json!({"mp_openid": MP_ONLY}),
            json!({"page": "pages/menu/index"}),
        ),
    ]
}

fn others() -> Vec<Value> {
    scenario::events(&scenario::Shape {
        seed: 11,
        members: 30,
        events_per_member: 12,
        ..Default::default()
    })
}

fn carries_erased(e: &Event) -> bool {
    [&e.user.unionid, &e.user.oa_openid, &e.user.mp_openid]
        .into_iter()
        .flatten()
        .any(|id| ALL_ERASED.contains(&id.as_str()))
}

async fn apply_in_batches(store: &ReadStore, p: &CoreProjection, events: &[Event], size: usize) {
    for chunk in events.chunks(size) {
        apply_batch(store, p, chunk).await;
    }
}

/// Every projection table and every view, row by row.
async fn read_models(store: &ReadStore, p: &CoreProjection) -> Vec<(String, Vec<String>)> {
    let tables = p.tables();
    catalog::snapshot(store, |r| r.is_view || tables.contains(&r.name.as_str()))
        .await
        .into_iter()
        .collect()
}

async fn nothing_identifies_in_analyst_views(store: &ReadStore, ids: &[&str]) {
    let analyst = catalog::snapshot(store, |r| ANALYST_RELATIONS.contains(&r.name.as_str())).await;
    assert_eq!(
        analyst.len(),
        ANALYST_RELATIONS.len(),
        "every analyst relation exists"
    );
    for (relation, rows) in analyst {
        for row in rows {
            for id in ids {
                assert!(!row.contains(id), "{relation} shows {id}: {row}");
            }
        }
    }
}

async fn erase_then_rebuild(db: &TestStore) {
    let store = db.store();
    let vault = test_vault();
    let p = CoreProjection::new(TZ, vault.clone());
    fresh_core(store, &p).await;

    let mut before: Vec<Value> = others();
    before.extend(member_events());
    before.shuffle(&mut rand::rngs::StdRng::seed_from_u64(3));
    let before = validated(&before);
    apply_in_batches(store, &p, &before, 7).await;

    // The member is there, and the analysts see it only under its pseudonym.
    let profile = read::member_profile(store, UNIONID).await.unwrap();
    assert!(
        profile.is_some_and(|m| m.orders_paid == 2 && m.following),
        "the member is projected before its erasure"
    );
    let ids = erasure::member_identifiers(store, UNIONID)
        .await
        .unwrap()
        .expect("the read models know the member");
    assert_eq!(
        (
            ids.unionids.len(),
            ids.oa_openids.len(),
            ids.mp_openids.len()
        ),
        (1, 1, 1),
        "{ids:?}"
    );
    let mut samples: Vec<String> = ALL_ERASED.iter().map(|s| s.to_string()).collect();
    samples.extend(["u11_0", "oa11_0", "mp11_0"].map(String::from));
    let samples: Vec<&str> = samples.iter().map(String::as_str).collect();
    nothing_identifies_in_analyst_views(store, &samples).await;
    let pseudonyms = catalog::snapshot(store, |r| r.name == "analyst_member_profile").await;
    let profiles = read::member_profiles(store).await.unwrap();
    assert_eq!(
        pseudonyms["analyst_member_profile"].len(),
        profiles.len(),
        "one analyst row per member"
    );

    // Erase; events about the erased members keep coming afterwards.
    let erased = validated(&erasures());
    let late = validated(&late_events());
    apply_batch(store, &p, &[late[0].clone(), erased[0].clone()]).await;
    apply_batch(store, &p, &erased[1..]).await;
    apply_batch(store, &p, &late[1..]).await;

    assert!(
        catalog::find(store, &ALL_ERASED).await.is_empty(),
        "an erased identifier is still in the read store: {:?}",
        catalog::find(store, &ALL_ERASED).await
    );
    for key in [
        UNIONID.to_owned(),
        format!("oa:{OA}"),
        format!("mp:{MP}"),
        format!("mp:{MP_ONLY}"),
    ] {
        assert!(
            erasure::is_erased(store, &vault, &key).await.unwrap(),
            "{key} is in the registry"
        );
    }
    assert!(!erasure::is_erased(store, &vault, "oa:oNEVERerased01")
        .await
        .unwrap());
    assert!(erasure::member_identifiers(store, UNIONID)
        .await
        .unwrap()
        .is_none());

    // The read models are those of a log without the erased members' events: every count
    // the member was in is recounted.
    let mut everything = before.clone();
    everything.extend(erased.iter().cloned());
    everything.extend(late.iter().cloned());
    let kept: Vec<Event> = before
        .iter()
        .filter(|e| !carries_erased(e))
        .cloned()
        .collect();
    assert!(kept.len() < before.len() && !kept.is_empty());
    let (want_events, want_profiles) = reference::compute(&kept, TZ);
    assert_eq!(read::event_identities(store).await.unwrap(), want_events);
    assert_eq!(read::member_profiles(store).await.unwrap(), want_profiles);
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    assert_eq!(
        reference::stored_metrics(store).await,
        reference::metrics(&kept, TZ, today),
        "the metric relations are recounted without the member"
    );
    nothing_identifies_in_analyst_views(store, &samples).await;
    let live = read_models(store, &p).await;

    // A rebuild from the start of the log, erasures first this time, in other batches: the
    // registry (not a projection table) makes it skip the member from the first event on.
    fresh_core(store, &p).await;
    let mut replay = everything.clone();
    replay.reverse();
    apply_in_batches(store, &p, &replay, 5).await;
    assert_eq!(
        read_models(store, &p).await,
        live,
        "a rebuild gives the read models of the live erasure"
    );
    assert!(catalog::find(store, &ALL_ERASED).await.is_empty());

    // Erasing again changes nothing.
    apply_batch(store, &p, &erased).await;
    assert_eq!(read_models(store, &p).await, live);
}
on_both_stores!(erase_then_rebuild);
