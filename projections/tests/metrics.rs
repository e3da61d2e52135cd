//! The metric definitions of METRICS.md pinned at their edges with small, hand-computed cases:
//! the 7-day window at exactly 7 days, `t0 + 30 days` inclusive, a re-follow before day 30, a
//! member exposed to two variants, an order paid twice, a refund, a day boundary in
//! Asia/Shanghai against UTC, a week boundary, a binding that arrives after everything else, the
//! message funnel's 72-hour and 7-day edges and the campaigns' 24-hour edge.
//! Each case runs on both stores, and again with its events in reverse order.

use liandong_projections::read::{self, Cohort30d, LinkageDay, Range};
use liandong_projections::CoreProjection;
use liandong_store::ReadStore;
use liandong_testkit::{apply_batch, fresh_core, on_both_stores, validated, TestStore};
use serde_json::{json, Value};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// An event; `user` is `m:<mp_openid>`, `o:<oa_openid>` or `u:<unionid>` (with both openids
/// `<unionid>-oa` / `<unionid>-mp`, which binds them).
fn ev(n: u32, ty: &str, at: &str, user: &str, props: Value) -> Value {
    let user = match user.split_once(':') {
        Some(("m", id)) => json!({"mp_openid": id}),
        Some(("o", id)) => json!({"oa_openid": id}),
        Some(("u", id)) => {
            json!({"unionid": id, "oa_openid": format!("{id}-oa"), "mp_openid": format!("{id}-mp")})
        }
        _ => panic!("user {user}"),
    };
    json!({"event_id": format!("00000000-0000-4000-9000-{n:012}"), "type": ty, "occurred_at": at, "user": user, "props": props})
}

fn visit(n: u32, at: &str, user: &str, source: &str) -> Value {
    let mut v = ev(
        n,
        "mp.visit",
        at,
        user,
        json!({"page": "pages/index/index"}),
    );
    v["source"] = json!(source);
    v
}

/// Projects `wire` twice — as sent, then reversed in one-event batches into a fresh store —
/// and returns the store holding the second result after checking both agree.
async fn project(db: &TestStore, wire: &[Value]) -> ReadStore {
    let store = db.store().clone();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    let events = validated(wire);
    fresh_core(&store, &p).await;
    apply_batch(&store, &p, &events).await;
    let first = liandong_testkit::reference::stored_metrics(&store).await;
    fresh_core(&store, &p).await;
    for e in events.iter().rev() {
        apply_batch(&store, &p, std::slice::from_ref(e)).await;
    }
    assert_eq!(
        liandong_testkit::reference::stored_metrics(&store).await,
        first,
        "arrival order changed the result"
    );
    store
}

async fn linkage(store: &ReadStore) -> Vec<LinkageDay> {
    read::linkage_daily(store, Range::default()).await.unwrap()
}

fn day(d: &str, counts: [i64; 6]) -> LinkageDay {
    LinkageDay {
        day: d.into(),
        mp_users: counts[0],
        oa_guided_users: counts[1],
        prompt_follows: counts[2],
        core_users: counts[3],
        guided_order_users: counts[4],
        guided_converted_7d: counts[5],
    }
}

async fn seven_day_window_is_half_open(db: &TestStore) {
    let wire = vec![
        // m1: guided visit, paid exactly 7 days later: not converted.
        visit(
            1,
            "2026-03-02T10:00:00+08:00",
            "m:m1",
            "from=menu&type=home",
        ),
        ev(
            2,
            "order.paid",
            "2026-03-09T10:00:00+08:00",
            "m:m1",
            json!({"order_id": "A", "amount_fen": 100}),
        ),
        // m2: the same, 1 ms earlier: converted.
        visit(3, "2026-03-02T10:00:00+08:00", "m:m2", "from=article&id=9"),
        ev(
            4,
            "order.paid",
            "2026-03-09T09:59:59.999+08:00",
            "m:m2",
            json!({"order_id": "B", "amount_fen": 100}),
        ),
        // m3: an order placed before the guided visit of the day does not count; one after does.
        ev(
            5,
            "order.placed",
            "2026-03-02T08:00:00+08:00",
            "m:m3",
            json!({"order_id": "C", "amount_fen": 100}),
        ),
        visit(6, "2026-03-02T09:00:00+08:00", "m:m3", "from=template"),
        // m4: a non-OA visit, with an order: core, not guided.
        visit(7, "2026-03-02T11:00:00+08:00", "m:m4", "from=qrcode"),
        ev(
            8,
            "order.placed",
            "2026-03-02T12:00:00+08:00",
            "m:m4",
            json!({"order_id": "D", "amount_fen": 100}),
        ),
    ];
    let store = project(db, &wire).await;
    assert_eq!(
        linkage(&store).await,
        vec![day("2026-03-02", [4, 3, 0, 2, 0, 1])],
        "mp_users 4; guided m1 m2 m3; core m3 m4; guided orders none (m3 ordered before); converted m2"
    );
    // t0 exists only for m2.
    let r = read::repurchase_30d(&store, Range::default())
        .await
        .unwrap();
    assert_eq!(
        r.iter()
            .map(|c| (c.cohort_day.as_str(), c.size))
            .collect::<Vec<_>>(),
        [("2026-03-09", 1)]
    );
}
on_both_stores!(seven_day_window_is_half_open);

async fn repurchase_window_includes_day_30(db: &TestStore) {
    let wire = vec![
        visit(1, "2026-01-01T10:00:00+08:00", "m:a", "from=menu"),
        ev(
            2,
            "order.paid",
            "2026-01-01T11:00:00+08:00",
            "m:a",
            json!({"order_id": "a1", "amount_fen": 100}),
        ),
        // Paid twice: the first paid time counts, the second event is no repurchase.
        ev(
            3,
            "order.paid",
            "2026-01-05T11:00:00+08:00",
            "m:a",
            json!({"order_id": "a1", "amount_fen": 100}),
        ),
        // Another order exactly at t0 + 30 days: a repurchase.
        ev(
            4,
            "order.paid",
            "2026-01-31T11:00:00+08:00",
            "m:a",
            json!({"order_id": "a2", "amount_fen": 100}),
        ),
        visit(5, "2026-01-01T10:00:00+08:00", "m:b", "from=menu"),
        ev(
            6,
            "order.paid",
            "2026-01-01T11:00:00+08:00",
            "m:b",
            json!({"order_id": "b1", "amount_fen": 100}),
        ),
        // 1 ms after t0 + 30 days: too late. A refund changes nothing here.
        ev(
            7,
            "order.paid",
            "2026-01-31T11:00:00.001+08:00",
            "m:b",
            json!({"order_id": "b2", "amount_fen": 100}),
        ),
        ev(
            8,
            "order.refunded",
            "2026-01-02T11:00:00+08:00",
            "m:b",
            json!({"order_id": "b1", "amount_fen": 100}),
        ),
    ];
    let store = project(db, &wire).await;
    let r = read::repurchase_30d(&store, Range::default())
        .await
        .unwrap();
    assert_eq!(
        r,
        vec![Cohort30d {
            cohort_day: "2026-01-01".into(),
            size: 2,
            kept: 1,
            mature: true
        }]
    );
    let b = read::member_profile(&store, "mp:b").await.unwrap().unwrap();
    assert_eq!((b.orders_paid, b.revenue_fen), (2, 100));
}
on_both_stores!(repurchase_window_includes_day_30);

async fn follower_retention_sees_a_refollow_before_day_30(db: &TestStore) {
    let follow = |n, at: &str, u: &str, via: &str| ev(n, "oa.follow", at, u, json!({"via": via}));
    let unfollow = |n, at: &str, u: &str| ev(n, "oa.unfollow", at, u, json!({}));
    let wire = vec![
        // a: follows via the prompt, leaves, comes back on day 20, leaves after day 30: retained.
        follow(1, "2026-02-01T10:00:00+08:00", "o:a", "mp_prompt"),
        unfollow(2, "2026-02-06T10:00:00+08:00", "o:a"),
        follow(3, "2026-02-21T10:00:00+08:00", "o:a", "search"),
        unfollow(4, "2026-03-03T10:00:01+08:00", "o:a"),
        // b: leaves exactly at t0 + 30 days: not retained.
        follow(5, "2026-02-01T12:00:00+08:00", "o:b", "mp_prompt"),
        unfollow(6, "2026-03-03T12:00:00+08:00", "o:b"),
        // c: follows via a QR code first (no cohort), later via the prompt (its t0).
        follow(7, "2026-02-01T09:00:00+08:00", "o:c", "qrcode"),
        follow(8, "2026-02-02T09:00:00+08:00", "o:c", "mp_prompt"),
    ];
    let store = project(db, &wire).await;
    let r = read::follower_30d(&store, Range::default()).await.unwrap();
    assert_eq!(
        r,
        vec![
            Cohort30d {
                cohort_day: "2026-02-01".into(),
                size: 2,
                kept: 1,
                mature: true
            },
            Cohort30d {
                cohort_day: "2026-02-02".into(),
                size: 1,
                kept: 1,
                mature: true
            },
        ]
    );
    let d = linkage(&store).await;
    assert_eq!(
        d.iter()
            .map(|d| (d.day.as_str(), d.prompt_follows))
            .collect::<Vec<_>>()[..2],
        [("2026-02-01", 2), ("2026-02-02", 1)]
    );
}
on_both_stores!(follower_retention_sees_a_refollow_before_day_30);

async fn a_member_in_two_variants_is_excluded(db: &TestStore) {
    let exp = |n, ty: &str, at: &str, u: &str, v: &str| {
        ev(
            n,
            ty,
            at,
            u,
            json!({"entry": "立即点餐", "experiment": "entry", "variant": v}),
        )
    };
    let mut wire = vec![
        // x saw both variants: excluded from the experiment (still counted in the traffic).
        exp(
            1,
            "oa.menu.exposure",
            "2026-04-01T10:00:00+08:00",
            "o:x",
            "control",
        ),
        exp(
            2,
            "oa.menu.exposure",
            "2026-04-01T11:00:00+08:00",
            "o:x",
            "b",
        ),
        exp(3, "oa.menu.click", "2026-04-01T11:01:00+08:00", "o:x", "b"),
        // y clicked before being exposed: not a click of the experiment.
        exp(4, "oa.menu.click", "2026-04-01T09:00:00+08:00", "o:y", "b"),
        exp(
            5,
            "oa.menu.exposure",
            "2026-04-01T10:00:00+08:00",
            "o:y",
            "b",
        ),
    ];
    for i in 0..4 {
        let u = format!("o:c{i}");
        wire.push(exp(
            10 + i,
            "oa.menu.exposure",
            "2026-04-01T10:00:00+08:00",
            &u,
            "control",
        ));
        if i < 1 {
            wire.push(exp(
                20 + i,
                "oa.menu.click",
                "2026-04-01T10:00:00+08:00",
                &u,
                "control",
            ));
        }
        let u = format!("o:b{i}");
        wire.push(exp(
            30 + i,
            "oa.menu.exposure",
            "2026-04-01T10:00:00+08:00",
            &u,
            "b",
        ));
        if i < 3 {
            wire.push(exp(
                40 + i,
                "oa.menu.click",
                "2026-04-01T10:30:00+08:00",
                &u,
                "b",
            ));
        }
    }
    let store = project(db, &wire).await;
    let ab = read::ab_readout(&store, None, Some("entry")).await.unwrap();
    assert!(ab.iter().all(|r| r.surface == "menu"));
    let counts: Vec<(&str, i64, i64)> = ab
        .iter()
        .map(|r| (r.variant.as_str(), r.exposed_users, r.clicked_users))
        .collect();
    assert_eq!(counts, [("b", 5, 3), ("control", 4, 1)]);
    let b = &ab[0];
    // ctr 0.6 against 0.25; expected values computed independently with Python's math.erfc.
    assert!((b.lift.unwrap() - 1.4).abs() < 1e-12);
    assert!(
        (b.p_value.unwrap() - 0.293_718_112_751_791_94).abs() < 1e-9,
        "{:?}",
        b.p_value
    );
    assert!(
        ab[1].p_value.is_none() && ab[1].lift.is_none(),
        "the control has no test against itself"
    );
    let menu = read::menu_entry_daily(&store, Range::default(), Some("立即点餐"))
        .await
        .unwrap();
    let (exposures, clicks) = menu
        .iter()
        .fold((0, 0), |a, r| (a.0 + r.exposures, a.1 + r.clicks));
    assert_eq!((exposures, clicks), (11, 6), "traffic counts every event");
}
on_both_stores!(a_member_in_two_variants_is_excluded);

async fn experiments_live_on_the_surface_of_their_exposures(db: &TestStore) {
    let props = |extra: Value, v: &str| {
        let mut p = json!({"template_id": "t_coupon", "experiment": "wording", "variant": v});
        if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
            p.extend(e);
        }
        p
    };
    let mut wire = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for i in 0..3 {
        for v in ["control", "b"] {
            let u = format!("o:{v}{i}");
            wire.push(ev(
                next(),
                "oa.template.sent",
                "2026-04-02T10:00:00+08:00",
                &u,
                props(json!({"status": "success"}), v),
            ));
            // control: one click; b: two clicks; plus one click before the send, which does
            // not count.
            let clicks = if v == "control" { 1 } else { 2 };
            if i < clicks {
                wire.push(ev(
                    next(),
                    "oa.template.click",
                    "2026-04-02T10:05:00+08:00",
                    &u,
                    props(json!({}), v),
                ));
            }
        }
    }
    wire.push(ev(
        next(),
        "oa.template.click",
        "2026-04-02T09:00:00+08:00",
        "o:control2",
        props(json!({}), "control"),
    ));
    // A click of another surface's type with the same experiment name never counts for it.
    wire.push(ev(
        next(),
        "mp.notify.click",
        "2026-04-02T11:00:00+08:00",
        "o:control1",
        props(json!({}), "control"),
    ));
    // Service notifications, follow prompts and articles: their own surfaces.
    for (i, (ty, click, p)) in [
        (
            "mp.notify.sent",
            "mp.notify.click",
            json!({"template_id": "n1", "experiment": "notify_time", "variant": "control"}),
        ),
        (
            "mp.follow_prompt.shown",
            "mp.follow_prompt.click",
            json!({"placement": "order_done", "experiment": "prompt_copy", "variant": "b"}),
        ),
        (
            "oa.article.read",
            "oa.article.click",
            json!({"article_id": "a9", "link": "card", "experiment": "card_style", "variant": "control"}),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let u = format!("m:s{i}");
        wire.push(ev(next(), ty, "2026-04-03T10:00:00+08:00", &u, p.clone()));
        wire.push(ev(next(), click, "2026-04-03T10:00:00+08:00", &u, p));
    }
    let store = project(db, &wire).await;
    let ab = read::ab_readout(&store, None, None).await.unwrap();
    let rows: Vec<(&str, &str, &str, i64, i64)> = ab
        .iter()
        .map(|r| {
            (
                r.surface.as_str(),
                r.experiment.as_str(),
                r.variant.as_str(),
                r.exposed_users,
                r.clicked_users,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("article", "card_style", "control", 1, 1),
            ("follow_prompt", "prompt_copy", "b", 1, 1),
            ("notify", "notify_time", "control", 1, 1),
            ("template", "wording", "b", 3, 2),
            ("template", "wording", "control", 3, 1),
        ]
    );
    let only = read::ab_readout(&store, Some("template"), None)
        .await
        .unwrap();
    assert_eq!(only.len(), 2);
    assert!(
        (only[0].lift.unwrap() - 1.0).abs() < 1e-12,
        "2/3 against 1/3"
    );
}
on_both_stores!(experiments_live_on_the_surface_of_their_exposures);

async fn days_and_weeks_are_shanghai_time(db: &TestStore) {
    let wire = vec![
        // 16:30 UTC on Sunday 1 March is 00:30 on Monday 2 March in Shanghai.
        visit(1, "2026-03-01T16:30:00Z", "m:a", "from=menu"),
        // 15:59 UTC is still Sunday 1 March in Shanghai: the week before.
        visit(2, "2026-03-01T15:59:59Z", "m:b", "from=menu"),
        // b again two weeks later.
        visit(3, "2026-03-16T02:00:00+08:00", "m:b", "scene=1"),
    ];
    let store = project(db, &wire).await;
    let days: Vec<String> = linkage(&store).await.into_iter().map(|d| d.day).collect();
    assert_eq!(days, ["2026-03-01", "2026-03-02", "2026-03-16"]);
    let weekly = read::weekly_retention(&store, Range::default())
        .await
        .unwrap();
    let b: Vec<(i32, i64, i64)> = weekly
        .iter()
        .filter(|w| w.cohort_week == "2026-02-23")
        .map(|w| (w.week_offset, w.cohort_size, w.active))
        .collect();
    assert_eq!(b.len(), 13, "offsets 0..12, all begun");
    assert_eq!(&b[..4], [(0, 1, 1), (1, 1, 0), (2, 1, 0), (3, 1, 1)]);
    assert!(weekly
        .iter()
        .any(|w| w.cohort_week == "2026-03-02" && w.week_offset == 0 && w.active == 1));
}
on_both_stores!(days_and_weeks_are_shanghai_time);

async fn a_binding_after_everything_else_merges_members(db: &TestStore) {
    let wire = vec![
        // Before the binding: an MP openid and a unionid-only visitor on the same day, two members.
        visit(1, "2026-05-05T10:00:00+08:00", "m:U7-mp", "from=menu"),
        ev(
            2,
            "order.paid",
            "2026-05-06T10:00:00+08:00",
            "m:U7-mp",
            json!({"order_id": "z", "amount_fen": 100}),
        ),
        {
            let mut v = visit(3, "2026-05-05T12:00:00+08:00", "m:x", "from=article");
            v["user"] = json!({"unionid": "U7"});
            v
        },
        // The binding, last: the two are one member.
        ev(
            4,
            "member.identified",
            "2026-05-07T10:00:00+08:00",
            "u:U7",
            json!({}),
        ),
    ];
    let store = project(db, &wire).await;
    assert_eq!(
        linkage(&store).await,
        vec![day("2026-05-05", [1, 1, 0, 0, 0, 1])]
    );
    let r = read::repurchase_30d(&store, Range::default())
        .await
        .unwrap();
    assert_eq!(
        r.iter()
            .map(|c| (c.cohort_day.as_str(), c.size))
            .collect::<Vec<_>>(),
        [("2026-05-06", 1)]
    );
    let weekly = read::weekly_retention(&store, Range::default())
        .await
        .unwrap();
    assert_eq!(weekly[0].cohort_size, 1);
}
on_both_stores!(a_binding_after_everything_else_merges_members);

async fn message_funnel_windows_are_half_open(db: &TestStore) {
    let t = |n, ty: &str, at: &str, u: &str, props: Value| ev(n, ty, at, u, props);
    let tpl = |extra: Value| {
        let mut p = json!({"template_id": "t_ready"});
        if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
            p.extend(e);
        }
        p
    };
    let mut wire = vec![
        // a: sent 10:00 (blocked) and 12:00 (success) on 04-01 Shanghai: delivered; s = 10:00.
        // Click just inside 72 h; paid just inside 7 days: converted.
        t(
            1,
            "oa.template.sent",
            "2026-04-01T10:00:00+08:00",
            "o:a",
            tpl(json!({"status": "user_block"})),
        ),
        t(
            2,
            "oa.template.sent",
            "2026-04-01T12:00:00+08:00",
            "o:a",
            tpl(json!({"status": "success"})),
        ),
        t(
            3,
            "oa.template.click",
            "2026-04-04T09:59:59.999+08:00",
            "o:a",
            tpl(json!({})),
        ),
        // b: status absent (version 1): delivered. Click exactly 72 h later: not clicked.
        t(
            4,
            "oa.template.sent",
            "2026-04-01T10:00:00+08:00",
            "o:b",
            tpl(json!({})),
        ),
        t(
            5,
            "oa.template.click",
            "2026-04-04T10:00:00+08:00",
            "o:b",
            tpl(json!({})),
        ),
        // c: system_failed only: not delivered; clicked (WeChat may still show it); paid exactly
        // 7 days after s: not converted.
        t(
            6,
            "oa.template.sent",
            "2026-04-01T10:00:00+08:00",
            "u:c",
            tpl(json!({"status": "system_failed"})),
        ),
        t(
            7,
            "oa.template.click",
            "2026-04-01T10:30:00+08:00",
            "u:c",
            tpl(json!({})),
        ),
        // d: a service notification, its landing (scene 1014) exactly 72 h later: no visit.
        t(
            10,
            "mp.notify.sent",
            "2026-04-01T23:59:00+08:00",
            "m:d",
            json!({"template_id": "n_ready"}),
        ),
        t(
            11,
            "mp.notify.click",
            "2026-04-02T08:00:00+08:00",
            "m:d",
            json!({"template_id": "n_ready"}),
        ),
        // e: sent the next day (Shanghai) although the same UTC day as the others.
        t(
            12,
            "oa.template.sent",
            "2026-04-02T00:00:00+08:00",
            "o:e",
            tpl(json!({})),
        ),
    ];
    // a's order: placed and paid 1 ms before s + 7 days.
    wire.push(t(
        20,
        "order.placed",
        "2026-04-08T09:00:00+08:00",
        "o:a",
        json!({"order_id": "oa1", "amount_fen": 100}),
    ));
    wire.push(t(
        21,
        "order.paid",
        "2026-04-08T09:59:59.999+08:00",
        "o:a",
        json!({"order_id": "oa1", "amount_fen": 100}),
    ));
    wire.push(t(
        22,
        "order.paid",
        "2026-04-08T10:00:00+08:00",
        "u:c",
        json!({"order_id": "oc1", "amount_fen": 100}),
    ));
    // c's landing from the template 1 ms inside the window.
    let mut v = visit(23, "2026-04-04T09:59:59.999+08:00", "u:c", "from=template");
    v["source"] = json!("from=template");
    wire.push(v);
    let mut late = ev(
        24,
        "mp.visit",
        "2026-04-04T23:59:00+08:00",
        "m:d",
        json!({"page": "p"}),
    );
    late["scene"] = json!(1014);
    wire.push(late);
    let store = project(db, &wire).await;
    let rows = read::message_daily(&store, Range::default(), None, None)
        .await
        .unwrap();
    let got: Vec<(&str, &str, &str, [i64; 5])> = rows
        .iter()
        .map(|r| {
            (
                r.day.as_str(),
                r.channel.as_str(),
                r.template_id.as_str(),
                [
                    r.sent_users,
                    r.delivered_users,
                    r.clicked_users,
                    r.visit_users,
                    r.converted_users,
                ],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2026-04-01", "mp_notify", "n_ready", [1, 1, 1, 0, 0]),
            ("2026-04-01", "oa_template", "t_ready", [3, 2, 2, 1, 1]),
            ("2026-04-02", "oa_template", "t_ready", [1, 1, 0, 0, 0]),
        ]
    );
    let one = read::message_daily(&store, Range::default(), Some("mp_notify"), None)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}
on_both_stores!(message_funnel_windows_are_half_open);

async fn campaign_counts_members_groups_and_orders(db: &TestStore) {
    let a = |extra: Value| {
        let mut p = json!({"activity_id": "gb1"});
        if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
            p.extend(e);
        }
        p
    };
    let mut wire = vec![
        // x: reserved before joining, guided visit 23:59:59.999 before the join: guided.
        ev(
            1,
            "activity.reserved",
            "2026-05-01T09:00:00+08:00",
            "m:x",
            a(json!({})),
        ),
        visit(2, "2026-05-01T12:00:00.001+08:00", "m:x", "from=menu"),
        ev(
            3,
            "activity.joined",
            "2026-05-02T12:00:00+08:00",
            "m:x",
            a(json!({"kind": "groupbuy", "group_id": "g1"})),
        ),
        ev(
            4,
            "activity.group_completed",
            "2026-05-02T13:00:00+08:00",
            "m:x",
            a(json!({"group_id": "g1"})),
        ),
        // y: joins g1 and later g2; guided visit exactly 24 h before the earliest join: not
        // guided; reserved after the earliest join: not a reserved join.
        visit(5, "2026-05-01T12:00:00+08:00", "m:y", "from=article"),
        ev(
            6,
            "activity.joined",
            "2026-05-02T12:00:00+08:00",
            "m:y",
            a(json!({"kind": "groupbuy", "group_id": "g1"})),
        ),
        ev(
            7,
            "activity.joined",
            "2026-05-03T12:00:00+08:00",
            "m:y",
            a(json!({"kind": "groupbuy", "group_id": "g2"})),
        ),
        ev(
            8,
            "activity.reserved",
            "2026-05-02T12:00:00.001+08:00",
            "m:y",
            a(json!({})),
        ),
        // z: only reserves, and buys twice for the campaign: one paid (refunded 300), one not.
        ev(
            9,
            "activity.reserved",
            "2026-05-01T09:00:00+08:00",
            "m:z",
            a(json!({})),
        ),
        ev(
            10,
            "order.placed",
            "2026-05-02T12:01:00+08:00",
            "m:z",
            json!({"order_id": "z1", "amount_fen": 2000, "activity_id": "gb1"}),
        ),
        ev(
            11,
            "order.paid",
            "2026-05-02T12:02:00+08:00",
            "m:z",
            json!({"order_id": "z1", "amount_fen": 2000}),
        ),
        ev(
            12,
            "order.refunded",
            "2026-05-02T15:00:00+08:00",
            "m:z",
            json!({"order_id": "z1", "amount_fen": 300}),
        ),
        ev(
            13,
            "order.placed",
            "2026-05-02T12:05:00+08:00",
            "m:z",
            json!({"order_id": "z2", "amount_fen": 900, "activity_id": "gb1"}),
        ),
        // A completion reported for a group nobody joined as a group-buy: not counted.
        ev(
            14,
            "activity.group_completed",
            "2026-05-03T13:00:00+08:00",
            "m:w",
            a(json!({"group_id": "g9"})),
        ),
        // A second campaign named only by an order, unpaid.
        ev(
            15,
            "order.placed",
            "2026-05-04T12:00:00+08:00",
            "m:w",
            json!({"order_id": "w1", "amount_fen": 500, "activity_id": "sk1"}),
        ),
    ];
    // x's later binding to a unionid whose own reservation moves to it.
    wire.push(ev(
        16,
        "activity.reserved",
        "2026-04-30T09:00:00+08:00",
        "u:ux",
        a(json!({})),
    ));
    wire.push(
        json!({"event_id": "00000000-0000-4000-9000-000000000017", "type": "member.identified",
        "occurred_at": "2026-05-05T09:00:00+08:00", "user": {"unionid": "ux", "mp_openid": "x"}}),
    );
    let store = project(db, &wire).await;
    let got = read::activities(&store, None).await.unwrap();
    let rows: Vec<(&str, [i64; 9])> = got
        .iter()
        .map(|r| {
            (
                r.activity_id.as_str(),
                [
                    r.reserved_users,
                    r.joined_users,
                    r.reserved_joined_users,
                    r.guided_joined_users,
                    r.groups_started,
                    r.groups_completed,
                    r.orders_paid,
                    r.order_users,
                    r.revenue_fen,
                ],
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("gb1", [3, 2, 1, 1, 2, 1, 1, 1, 1700]),
            ("sk1", [0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ]
    );
}
on_both_stores!(campaign_counts_members_groups_and_orders);
