//! The metric endpoints over real HTTP against a real store (PostgreSQL and SQLite), fed with
//! the scenario generator's traffic plus a few hand-made edge cases (clicks without exposures,
//! a menu entry without a variant, article clicks without reads, a second experiment).
//!
//! Every number an endpoint returns is checked against the relation read back with
//! `liandong_projections::read`, every rate against its counts divided here, independently of
//! the API's own arithmetic; then the range and dimension filters, the 400s, the 401/403 of
//! every endpoint per role, and the OpenAPI document.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, Utc};
use liandong_api::metrics::{
    AbExperiment, AbReadout, Activities, Articles, DateRange, FollowerRetention, Linkage,
    MenuEntries, Messages, Repurchase, WeeklyRetention,
};
use liandong_api::ErrorBody;
use liandong_auth::Role;
use liandong_projections::read::{self, Range};
use liandong_projections::CoreProjection;
use liandong_store::ReadStore;
use liandong_testkit::scenario::{self, Shape};
use liandong_testkit::{apply_batch, fresh_core, on_both_stores, validated, TestStore};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

mod common;

use common::{Server, TZ};

/// Every metric endpoint, in the order of the OpenAPI document.
const ENDPOINTS: [&str; 9] = [
    "/v1/metrics/menu-entries",
    "/v1/metrics/articles",
    "/v1/metrics/linkage",
    "/v1/metrics/repurchase",
    "/v1/metrics/follower-retention",
    "/v1/metrics/weekly-retention",
    "/v1/metrics/ab",
    "/v1/metrics/messages",
    "/v1/metrics/activities",
];

/// A range that holds all of the test traffic (October 2026, Shanghai time).
const ALL: [(&str, &str); 2] = [("from", "2026-09-01"), ("to", "2026-12-31")];

impl Server {
    async fn get_as(
        &self,
        path: &str,
        query: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base)).query(query);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let res = req.send().await.expect("a response");
        let status = res.status();
        let body = res.json().await.expect("a JSON body");
        (status, body)
    }

    fn bearer(&self, role: Role) -> String {
        format!("Bearer {}", self.keys.key_of(role).expect("a key per role"))
    }

    /// An analyst's 200 answer, typed.
    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> T {
        let (status, body) = self
            .get_as(path, query, Some(&self.bearer(Role::Analyst)))
            .await;
        assert_eq!(status, StatusCode::OK, "{path} {query:?}: {body}");
        serde_json::from_value(body).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

/// An OA-side event by `oa_openid`.
fn oa(n: u32, ty: &str, at: &str, openid: &str, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-8000-{n:012}"), "type": ty,
           "occurred_at": at, "user": {"oa_openid": openid}, "props": props})
}

/// The edges the scenario does not produce.
fn edge_cases() -> Vec<Value> {
    vec![
        // A menu entry without a variant; a day with clicks and no exposures (rate null).
        oa(
            1,
            "oa.menu.exposure",
            "2026-10-03T09:00:00+08:00",
            "x1",
            json!({"entry": "联系客服"}),
        ),
        oa(
            2,
            "oa.menu.click",
            "2026-10-04T09:00:00+08:00",
            "x1",
            json!({"entry": "联系客服"}),
        ),
        // Article clicks (the scenario only reads), one on an article nobody read.
        oa(
            3,
            "oa.article.click",
            "2026-10-05T10:00:00+08:00",
            "x2",
            json!({"article_id": "a1", "link": "text"}),
        ),
        oa(
            4,
            "oa.article.click",
            "2026-10-12T10:00:00+08:00",
            "x3",
            json!({"article_id": "a2", "link": "card"}),
        ),
        oa(
            5,
            "oa.article.click",
            "2026-10-12T11:00:00+08:00",
            "x3",
            json!({"article_id": "a9", "link": "card"}),
        ),
        // A second experiment, so the readout has two groups.
        oa(
            6,
            "oa.menu.exposure",
            "2026-10-06T10:00:00+08:00",
            "x4",
            json!({"entry": "会员", "experiment": "color", "variant": "control"}),
        ),
        oa(
            7,
            "oa.menu.exposure",
            "2026-10-06T10:00:00+08:00",
            "x5",
            json!({"entry": "会员", "experiment": "color", "variant": "red"}),
        ),
        oa(
            8,
            "oa.menu.click",
            "2026-10-06T10:01:00+08:00",
            "x5",
            json!({"entry": "会员", "experiment": "color", "variant": "red"}),
        ),
    ]
}

/// Projects the scenario and the edge cases into a fresh store.
async fn projected(db: &TestStore) -> ReadStore {
    let store = db.store().clone();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    let mut wire = scenario::events(&Shape::default());
    wire.extend(edge_cases());
    fresh_core(&store, &p).await;
    apply_batch(&store, &p, &validated(&wire)).await;
    store
}

fn range(from: &str, to: &str) -> Range {
    Range {
        from: Some(from.parse().expect("a date")),
        to: Some(to.parse().expect("a date")),
    }
}

/// The rate as a test computes it. JSON carries the shortest representation that reads back
/// to the same f64, so equality is exact.
fn div(n: i64, d: i64) -> Option<f64> {
    if d == 0 {
        None
    } else {
        Some(n as f64 / d as f64)
    }
}

async fn check_menu(api: &Server, store: &ReadStore, query: &[(&str, &str)], want: Range) {
    let got: MenuEntries = api.get("/v1/metrics/menu-entries", query).await;
    let q: BTreeMap<&str, &str> = query.iter().copied().collect();
    let all = read::menu_entry_daily(store, want, q.get("entry").copied())
        .await
        .expect("read");
    let expected: Vec<_> = all
        .into_iter()
        .filter(|r| q.get("variant").is_none_or(|v| r.variant == *v))
        .collect();
    assert_eq!(got.rows.len(), expected.len(), "{query:?}");
    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (g, e) in got.rows.iter().zip(&expected) {
        assert_eq!(
            (&g.day, &g.entry, &g.variant, g.exposures, g.clicks),
            (&e.day, &e.entry, &e.variant, e.exposures, e.clicks)
        );
        assert_eq!(g.click_rate, div(e.clicks, e.exposures), "{g:?}");
        let t = totals
            .entry((e.entry.clone(), e.variant.clone()))
            .or_default();
        t.0 += e.exposures;
        t.1 += e.clicks;
    }
    let want_totals: Vec<_> = totals
        .into_iter()
        .map(|((entry, variant), (x, c))| (entry, variant, x, c, div(c, x)))
        .collect();
    let got_totals: Vec<_> = got
        .totals
        .into_iter()
        .map(|t| (t.entry, t.variant, t.exposures, t.clicks, t.click_rate))
        .collect();
    assert_eq!(got_totals, want_totals, "{query:?}");
}

/// The default answer (per-article totals, paged) and `granularity=day` (the relation's rows,
/// paged), each against the relation read back, its totals summed here.
async fn check_articles(api: &Server, store: &ReadStore, query: &[(&str, &str)], want: Range) {
    let article = query.iter().find(|(k, _)| *k == "article").map(|(_, v)| *v);
    let expected = read::article_daily(store, want, article)
        .await
        .expect("read");

    // Every page of `granularity` at `limit` rows, concatenated.
    async fn pages(
        api: &Server,
        query: &[(&str, &str)],
        granularity: &str,
        limit: &str,
    ) -> Vec<Articles> {
        let mut out: Vec<Articles> = Vec::new();
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", limit));
            if granularity != "default" {
                q.push(("granularity", granularity));
            }
            let cursor = out.last().and_then(|p| p.next_cursor.clone());
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let page: Articles = api.get("/v1/metrics/articles", &q).await;
            let last = page.next_cursor.is_none();
            out.push(page);
            assert!(out.len() < 10_000, "pages end");
            if last {
                return out;
            }
        }
    }

    for limit in ["1000", "3"] {
        let days = pages(api, query, "day", limit).await;
        let rows: Vec<_> = days.iter().flat_map(|p| p.rows.clone()).collect();
        assert!(days
            .iter()
            .all(|p| p.granularity == "day" && p.totals.is_empty()));
        assert!(
            days.iter()
                .all(|p| p.rows.len() <= limit.parse().expect("n")),
            "{limit}"
        );
        assert_eq!(rows.len(), expected.len(), "{query:?} limit {limit}");
        for (g, e) in rows.iter().zip(&expected) {
            assert_eq!(
                (&g.day, &g.article_id, g.reads, g.clicks),
                (&e.day, &e.article_id, e.reads, e.clicks)
            );
            assert_eq!(g.click_rate, div(e.clicks, e.reads), "{g:?}");
        }
    }

    let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in &expected {
        let t = totals.entry(e.article_id.clone()).or_default();
        t.0 += e.reads;
        t.1 += e.clicks;
    }
    let want_totals: Vec<_> = totals
        .into_iter()
        .map(|(a, (r, c))| (a, r, c, div(c, r)))
        .collect();
    for limit in ["1000", "2"] {
        let got = pages(api, query, "default", limit).await;
        assert!(got
            .iter()
            .all(|p| p.granularity == "total" && p.rows.is_empty()));
        let got_totals: Vec<_> = got
            .into_iter()
            .flat_map(|p| p.totals)
            .map(|t| (t.article_id, t.reads, t.clicks, t.click_rate))
            .collect();
        assert_eq!(got_totals, want_totals, "{query:?} limit {limit}");
    }
    // `granularity=total` is the default spelled out.
    let mut q = query.to_vec();
    q.push(("granularity", "total"));
    let explicit: Articles = api.get("/v1/metrics/articles", &q).await;
    let default: Articles = api.get("/v1/metrics/articles", query).await;
    assert_eq!(explicit, default);
}

async fn check_linkage(api: &Server, store: &ReadStore, query: &[(&str, &str)], want: Range) {
    let got: Linkage = api.get("/v1/metrics/linkage", query).await;
    let expected = read::linkage_daily(store, want).await.expect("read");
    assert_eq!(got.rows.len(), expected.len());
    let mut sum = [0i64; 6];
    for (g, e) in got.rows.iter().zip(&expected) {
        let c = &g.counts;
        let counts = [
            c.mp_users,
            c.oa_guided_users,
            c.prompt_follows,
            c.core_users,
            c.guided_order_users,
            c.guided_converted_7d,
        ];
        let want_counts = [
            e.mp_users,
            e.oa_guided_users,
            e.prompt_follows,
            e.core_users,
            e.guided_order_users,
            e.guided_converted_7d,
        ];
        assert_eq!((&g.day, counts), (&e.day, want_counts));
        let r = &g.rates;
        assert_eq!(r.follow_conversion, div(e.prompt_follows, e.mp_users));
        assert_eq!(r.core_usage, div(e.core_users, e.mp_users));
        assert_eq!(
            r.cross_platform_rate,
            div(e.guided_order_users, e.oa_guided_users)
        );
        assert_eq!(
            r.linkage_conversion,
            div(e.guided_converted_7d, e.oa_guided_users)
        );
        for (s, v) in sum.iter_mut().zip(want_counts) {
            *s += v;
        }
    }
    let s = &got.sum_of_daily;
    assert_eq!(s.days, expected.len() as i64);
    assert_eq!(
        [
            s.counts.mp_users,
            s.counts.oa_guided_users,
            s.counts.prompt_follows,
            s.counts.core_users,
            s.counts.guided_order_users,
            s.counts.guided_converted_7d,
        ],
        sum
    );
    assert_eq!(s.rates.follow_conversion, div(sum[2], sum[0]));
    assert_eq!(s.rates.core_usage, div(sum[3], sum[0]));
    assert_eq!(s.rates.cross_platform_rate, div(sum[4], sum[1]));
    assert_eq!(s.rates.linkage_conversion, div(sum[5], sum[1]));
}

async fn check_retention(api: &Server, store: &ReadStore, query: &[(&str, &str)], want: Range) {
    let got: Repurchase = api.get("/v1/metrics/repurchase", query).await;
    let expected = read::repurchase_30d(store, want).await.expect("read");
    let got_rows: Vec<_> = got
        .rows
        .into_iter()
        .map(|r| {
            (
                r.cohort_day,
                r.converted,
                r.repurchased,
                r.mature,
                r.repurchase_rate,
            )
        })
        .collect();
    let want_rows: Vec<_> = expected
        .into_iter()
        .map(|c| (c.cohort_day, c.size, c.kept, c.mature, div(c.kept, c.size)))
        .collect();
    assert_eq!(got_rows, want_rows, "repurchase {query:?}");

    let got: FollowerRetention = api.get("/v1/metrics/follower-retention", query).await;
    let expected = read::follower_30d(store, want).await.expect("read");
    let got_rows: Vec<_> = got
        .rows
        .into_iter()
        .map(|r| {
            (
                r.cohort_day,
                r.followers,
                r.retained,
                r.mature,
                r.retention_rate,
            )
        })
        .collect();
    let want_rows: Vec<_> = expected
        .into_iter()
        .map(|c| (c.cohort_day, c.size, c.kept, c.mature, div(c.kept, c.size)))
        .collect();
    assert_eq!(got_rows, want_rows, "follower retention {query:?}");

    let got: WeeklyRetention = api.get("/v1/metrics/weekly-retention", query).await;
    let expected = read::weekly_retention(store, want).await.expect("read");
    let got_rows: Vec<_> = got
        .rows
        .into_iter()
        .map(|r| {
            (
                r.cohort_week,
                r.week_offset,
                r.cohort_size,
                r.active,
                r.active_rate,
            )
        })
        .collect();
    let want_rows: Vec<_> = expected
        .into_iter()
        .map(|w| {
            (
                w.cohort_week,
                w.week_offset,
                w.cohort_size,
                w.active,
                div(w.active, w.cohort_size),
            )
        })
        .collect();
    assert_eq!(got_rows, want_rows, "weekly retention {query:?}");
}

async fn check_messages(api: &Server, store: &ReadStore, query: &[(&str, &str)], want: Range) {
    let got: Messages = api.get("/v1/metrics/messages", query).await;
    let q: BTreeMap<&str, &str> = query.iter().copied().collect();
    let expected = read::message_daily(
        store,
        want,
        q.get("channel").copied(),
        q.get("template").copied(),
    )
    .await
    .expect("read");
    assert_eq!(got.rows.len(), expected.len(), "{query:?}");
    let mut totals: BTreeMap<(String, String), [i64; 5]> = BTreeMap::new();
    for (g, e) in got.rows.iter().zip(&expected) {
        let c = &g.counts;
        assert_eq!(
            (&g.day, &g.channel, &g.template_id),
            (&e.day, &e.channel, &e.template_id)
        );
        let counts = [
            e.sent_users,
            e.delivered_users,
            e.clicked_users,
            e.visit_users,
            e.converted_users,
        ];
        assert_eq!(
            [
                c.sent_users,
                c.delivered_users,
                c.clicked_users,
                c.visit_users,
                c.converted_users
            ],
            counts
        );
        assert_eq!(g.rates.delivery_rate, div(e.delivered_users, e.sent_users));
        assert_eq!(g.rates.click_rate, div(e.clicked_users, e.delivered_users));
        assert_eq!(g.rates.visit_rate, div(e.visit_users, e.delivered_users));
        assert_eq!(
            g.rates.conversion_rate,
            div(e.converted_users, e.clicked_users)
        );
        let t = totals
            .entry((e.channel.clone(), e.template_id.clone()))
            .or_default();
        for (t, n) in t.iter_mut().zip(counts) {
            *t += n;
        }
    }
    assert_eq!(got.totals.len(), totals.len(), "{query:?}");
    for (g, ((channel, template), t)) in got.totals.iter().zip(&totals) {
        assert_eq!((&g.channel, &g.template_id), (channel, template));
        assert_eq!(
            [
                g.counts.sent_users,
                g.counts.delivered_users,
                g.counts.clicked_users,
                g.counts.visit_users,
                g.counts.converted_users
            ],
            *t
        );
        assert_eq!(g.rates.click_rate, div(t[2], t[1]));
        assert_eq!(g.rates.conversion_rate, div(t[4], t[2]));
    }
}

async fn check_activities(api: &Server, store: &ReadStore, activity: Option<&str>) {
    let query: Vec<(&str, &str)> = activity.map(|a| ("activity", a)).into_iter().collect();
    let got: Activities = api.get("/v1/metrics/activities", &query).await;
    let expected = read::activities(store, activity).await.expect("read");
    assert_eq!(got.activities.len(), expected.len(), "{activity:?}");
    for (g, e) in got.activities.iter().zip(&expected) {
        assert_eq!(
            (
                &g.activity_id,
                g.reserved_users,
                g.joined_users,
                g.reserved_joined_users,
                g.guided_joined_users,
                g.groups_started,
                g.groups_completed,
                g.orders_paid,
                g.order_users,
                g.revenue_fen
            ),
            (
                &e.activity_id,
                e.reserved_users,
                e.joined_users,
                e.reserved_joined_users,
                e.guided_joined_users,
                e.groups_started,
                e.groups_completed,
                e.orders_paid,
                e.order_users,
                e.revenue_fen
            )
        );
        assert_eq!(
            g.reserved_join_rate,
            div(e.reserved_joined_users, e.joined_users)
        );
        assert_eq!(
            g.guided_join_rate,
            div(e.guided_joined_users, e.joined_users)
        );
        assert_eq!(
            g.group_success_rate,
            div(e.groups_completed, e.groups_started)
        );
        assert_eq!(g.average_order_fen, div(e.revenue_fen, e.orders_paid));
    }
}

async fn endpoints_equal_the_relations(db: &TestStore) {
    let store = projected(db).await;
    let api = Server::start(&store).await;
    let everything = range(ALL[0].1, ALL[1].1);

    // The whole traffic: non-trivial on every relation, edge cases included.
    check_menu(&api, &store, &ALL, everything).await;
    check_articles(&api, &store, &ALL, everything).await;
    check_linkage(&api, &store, &ALL, everything).await;
    check_retention(&api, &store, &ALL, everything).await;
    check_messages(&api, &store, &ALL, everything).await;
    check_activities(&api, &store, None).await;
    // The message and campaign relations hold rows of every kind.
    let messages = read::message_daily(&store, everything, None, None)
        .await
        .expect("read");
    assert!(
        messages
            .iter()
            .any(|r| r.channel == "oa_template" && r.clicked_users > 0)
            && messages
                .iter()
                .any(|r| r.channel == "mp_notify" && r.clicked_users > 0)
            && messages.iter().any(|r| r.converted_users > 0),
        "the scenario yields message rows"
    );
    let first = &messages[0];
    check_messages(
        &api,
        &store,
        &[ALL[0], ALL[1], ("channel", "mp_notify")],
        everything,
    )
    .await;
    check_messages(
        &api,
        &store,
        &[ALL[0], ALL[1], ("template", first.template_id.as_str())],
        everything,
    )
    .await;
    check_messages(
        &api,
        &store,
        &[("from", first.day.as_str()), ("to", first.day.as_str())],
        range(&first.day, &first.day),
    )
    .await;
    let activities = read::activities(&store, None).await.expect("read");
    assert!(
        activities.len() >= 2 && activities.iter().any(|a| a.groups_completed > 0),
        "the scenario yields campaigns: {activities:?}"
    );
    check_activities(&api, &store, Some(activities[0].activity_id.as_str())).await;
    let none: Activities = api
        .get("/v1/metrics/activities", &[("activity", "nope")])
        .await;
    assert!(none.activities.is_empty());
    let menu_days = read::menu_entry_daily(&store, everything, None)
        .await
        .expect("read");
    let article_days = read::article_daily(&store, everything, None)
        .await
        .expect("read");
    assert!(
        menu_days.len() > 10 && article_days.len() > 10,
        "the scenario yields rows"
    );
    assert!(!read::repurchase_30d(&store, everything)
        .await
        .expect("read")
        .is_empty());
    assert!(!read::follower_30d(&store, everything)
        .await
        .expect("read")
        .is_empty());

    // The edges: a rate over zero exposures / reads is null.
    let menu: MenuEntries = api
        .get(
            "/v1/metrics/menu-entries",
            &[
                ("from", "2026-10-04"),
                ("to", "2026-10-04"),
                ("entry", "联系客服"),
            ],
        )
        .await;
    assert_eq!(menu.rows.len(), 1);
    assert_eq!(
        (
            menu.rows[0].exposures,
            menu.rows[0].clicks,
            menu.rows[0].click_rate
        ),
        (0, 1, None)
    );
    let articles: Articles = api
        .get("/v1/metrics/articles", &[ALL[0], ALL[1], ("article", "a9")])
        .await;
    assert_eq!(articles.totals.len(), 1);
    assert_eq!(articles.totals[0].click_rate, None);

    // A range: rows only from its days, and exactly the relation's rows in it.
    let week = [("from", "2026-10-05"), ("to", "2026-10-11")];
    let w = range(week[0].1, week[1].1);
    check_menu(&api, &store, &week, w).await;
    check_articles(&api, &store, &week, w).await;
    check_linkage(&api, &store, &week, w).await;
    check_retention(&api, &store, &week, w).await;
    let linkage: Linkage = api.get("/v1/metrics/linkage", &week).await;
    assert_eq!(
        linkage.range,
        DateRange {
            from: "2026-10-05".parse().expect("a date"),
            to: "2026-10-11".parse().expect("a date"),
        }
    );
    assert!(!linkage.rows.is_empty());
    assert!(linkage
        .rows
        .iter()
        .all(|r| ("2026-10-05".."2026-10-12").contains(&r.day.as_str())));
    let all_linkage: Linkage = api.get("/v1/metrics/linkage", &ALL).await;
    assert!(linkage.rows.len() < all_linkage.rows.len());
    // A single day.
    let day = [("from", "2026-10-06"), ("to", "2026-10-06")];
    check_menu(&api, &store, &day, range(day[0].1, day[1].1)).await;

    // Dimension filters, alone and together, and the empty variant.
    for query in [
        vec![ALL[0], ALL[1], ("entry", "立即点餐")],
        vec![ALL[0], ALL[1], ("variant", "b")],
        vec![ALL[0], ALL[1], ("variant", "")],
        vec![
            ALL[0],
            ALL[1],
            ("entry", "进入小程序点餐"),
            ("variant", "b"),
        ],
        vec![ALL[0], ALL[1], ("entry", "立即点餐"), ("variant", "b")],
        vec![
            week[0],
            week[1],
            ("entry", "立即点餐"),
            ("variant", "control"),
        ],
    ] {
        check_menu(&api, &store, &query, everything_or(&query, everything)).await;
    }
    let b: MenuEntries = api
        .get(
            "/v1/metrics/menu-entries",
            &[ALL[0], ALL[1], ("variant", "b")],
        )
        .await;
    assert!(!b.rows.is_empty() && b.rows.iter().all(|r| r.variant == "b"));
    let none: MenuEntries = api
        .get(
            "/v1/metrics/menu-entries",
            &[ALL[0], ALL[1], ("variant", "")],
        )
        .await;
    assert!(!none.rows.is_empty());
    assert!(none
        .rows
        .iter()
        .all(|r| r.entry == "联系客服" && r.variant.is_empty()));
    for article in ["a1", "a2", "nope"] {
        check_articles(
            &api,
            &store,
            &[ALL[0], ALL[1], ("article", article)],
            everything,
        )
        .await;
    }
    let a1: Articles = api
        .get("/v1/metrics/articles", &[ALL[0], ALL[1], ("article", "a1")])
        .await;
    assert!(a1.totals.len() == 1 && a1.totals[0].article_id == "a1");
    let a1: Articles = api
        .get(
            "/v1/metrics/articles",
            &[ALL[0], ALL[1], ("article", "a1"), ("granularity", "day")],
        )
        .await;
    assert!(!a1.rows.is_empty() && a1.rows.iter().all(|r| r.article_id == "a1"));

    // The A/B readout, grouped by experiment, as stored.
    let ab: AbReadout = api.get("/v1/metrics/ab", &[]).await;
    let stored = read::ab_readout(&store, None, None).await.expect("read");
    let flat: Vec<_> = ab
        .experiments
        .iter()
        .flat_map(|e| {
            e.variants.iter().map(|v| {
                (
                    e.surface.clone(),
                    e.experiment.clone(),
                    v.variant.clone(),
                    v.exposed_users,
                    v.clicked_users,
                    v.ctr,
                    v.lift,
                    v.p_value,
                    v.ci_low,
                    v.ci_high,
                )
            })
        })
        .collect();
    let want: Vec<_> = stored
        .iter()
        .map(|r| {
            (
                r.surface.clone(),
                r.experiment.clone(),
                r.variant.clone(),
                r.exposed_users,
                r.clicked_users,
                r.ctr,
                r.lift,
                r.p_value,
                r.ci_low,
                r.ci_high,
            )
        })
        .collect();
    assert_eq!(flat, want);
    let names: Vec<(&str, &str)> = ab
        .experiments
        .iter()
        .map(|e| (e.surface.as_str(), e.experiment.as_str()))
        .collect();
    let mut groups: Vec<(&str, &str)> = stored
        .iter()
        .map(|r| (r.surface.as_str(), r.experiment.as_str()))
        .collect();
    groups.dedup();
    assert_eq!(names, groups, "one group per surface and experiment");
    assert!(names.contains(&("menu", "color")) && names.contains(&("menu", "entry_name")));
    let one: AbReadout = api
        .get("/v1/metrics/ab", &[("experiment", "entry_name")])
        .await;
    assert_eq!(one.experiments.len(), 1);
    assert!(ab.experiments.contains(&one.experiments[0]));
    let none: AbReadout = api.get("/v1/metrics/ab", &[("experiment", "nope")]).await;
    assert!(none.experiments.is_empty());
    // The surface filter keeps exactly that surface's experiments.
    let mut surfaces = 0;
    for surface in ["menu", "article", "template", "follow_prompt", "notify"] {
        let got: AbReadout = api.get("/v1/metrics/ab", &[("surface", surface)]).await;
        let want: Vec<AbExperiment> = ab
            .experiments
            .iter()
            .filter(|e| e.surface == surface)
            .cloned()
            .collect();
        surfaces += usize::from(!want.is_empty());
        assert_eq!(got.experiments, want, "{surface}");
    }
    assert_eq!(surfaces, 5, "the data set has experiments on every surface");

    // No range: the last 30 days ending today in Shanghai (checked unless midnight passed
    // between the two readings of the clock).
    let before = Utc::now().with_timezone(&TZ).date_naive();
    let got: MenuEntries = api.get("/v1/metrics/menu-entries", &[]).await;
    let after = Utc::now().with_timezone(&TZ).date_naive();
    if before == after {
        let from = before - Days::new(29);
        assert_eq!(got.range, DateRange { from, to: before });
        let expected = read::menu_entry_daily(
            &store,
            Range {
                from: Some(from),
                to: Some(before),
            },
            None,
        )
        .await
        .expect("read");
        assert_eq!(got.rows.len(), expected.len());
    }
    // `to` alone moves the window: 30 days ending there.
    let got: Linkage = api
        .get("/v1/metrics/linkage", &[("to", "2026-10-30")])
        .await;
    assert_eq!(
        got.range.from,
        NaiveDate::from_ymd_opt(2026, 10, 1).expect("a date")
    );
    check_linkage(
        &api,
        &store,
        &[("to", "2026-10-30")],
        range("2026-10-01", "2026-10-30"),
    )
    .await;
}
on_both_stores!(endpoints_equal_the_relations);

/// The range of a query's `from`/`to`, or `default` when it has none.
fn everything_or(query: &[(&str, &str)], default: Range) -> Range {
    let get = |k: &str| {
        query
            .iter()
            .find(|(q, _)| *q == k)
            .and_then(|(_, v)| v.parse().ok())
    };
    match (get("from"), get("to")) {
        (Some(from), Some(to)) => Range {
            from: Some(from),
            to: Some(to),
        },
        _ => default,
    }
}

/// A path, its query, and the parameter the 400 names.
type BadCase<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

async fn bad_parameters_are_400(db: &TestStore) {
    let store = projected(db).await;
    let api = Server::start(&store).await;
    let analyst = api.bearer(Role::Analyst);
    let cases: &[BadCase] = &[
        (
            "/v1/metrics/menu-entries",
            &[("from", "2026-13-01")],
            Some("from"),
        ),
        (
            "/v1/metrics/menu-entries",
            &[("to", "2026-02-30")],
            Some("to"),
        ),
        ("/v1/metrics/articles", &[("to", "yesterday")], Some("to")),
        ("/v1/metrics/articles", &[("from", "")], Some("from")),
        (
            "/v1/metrics/articles",
            &[("granularity", "week")],
            Some("granularity"),
        ),
        ("/v1/metrics/articles", &[("limit", "0")], Some("limit")),
        ("/v1/metrics/articles", &[("limit", "5001")], Some("limit")),
        (
            "/v1/metrics/articles",
            &[("granularity", "day"), ("cursor", "a1")],
            Some("cursor"),
        ),
        (
            "/v1/metrics/linkage",
            &[("from", "2026-10-10"), ("to", "2026-10-01")],
            Some("from"),
        ),
        (
            "/v1/metrics/repurchase",
            &[("from", "2026/10/01")],
            Some("from"),
        ),
        (
            "/v1/metrics/follower-retention",
            &[("to", "2026-10-1")],
            Some("to"),
        ),
        (
            "/v1/metrics/weekly-retention",
            &[("from", "2026-10-01T00:00:00")],
            Some("from"),
        ),
        // A `from` after today with no `to`: the default `to` is today.
        (
            "/v1/metrics/weekly-retention",
            &[("from", "2999-01-01")],
            Some("from"),
        ),
        // A misspelt or foreign parameter is refused, not ignored, and named like any other.
        (
            "/v1/metrics/weekly-retention",
            &[("form", "2026-10-01")],
            Some("form"),
        ),
        (
            "/v1/metrics/menu-entries",
            &[("article", "a1")],
            Some("article"),
        ),
        ("/v1/metrics/ab", &[("from", "2026-10-01")], Some("from")),
        ("/v1/metrics/ab", &[("surface", "banner")], Some("surface")),
        (
            "/v1/metrics/messages",
            &[("channel", "sms")],
            Some("channel"),
        ),
        (
            "/v1/metrics/messages",
            &[("from", "2026-10-32")],
            Some("from"),
        ),
        (
            "/v1/metrics/activities",
            &[("from", "2026-10-01")],
            Some("from"),
        ),
        (
            "/v1/metrics/menu-entries",
            &[("entry", "a"), ("entry", "b")],
            Some("entry"),
        ),
    ];
    for (path, query, parameter) in cases {
        let (status, body) = api.get_as(path, query, Some(&analyst)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {query:?}: {body}");
        let body: ErrorBody = serde_json::from_value(body).expect("an error body");
        assert_eq!(
            body.parameter.as_deref(),
            *parameter,
            "{path} {query:?}: {body:?}"
        );
        if let Some(p) = parameter {
            assert!(body.error.starts_with(p), "{body:?} names {p}");
        }
        assert!(
            !body.error.contains("deserialize") && !body.error.contains('`'),
            "the API's own words, not serde's: {body:?}"
        );
    }
}
on_both_stores!(bad_parameters_are_400);

async fn every_endpoint_needs_the_analyst_role(db: &TestStore) {
    let store = projected(db).await;
    let api = Server::start(&store).await;
    let bearer = |r| Some(api.bearer(r));
    let table: Vec<(&str, Option<String>, StatusCode)> = vec![
        ("no key", None, StatusCode::UNAUTHORIZED),
        (
            "unknown key",
            Some("Bearer not-a-configured-key-0000".into()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not a bearer credential",
            Some(format!(
                "Basic {}",
                api.keys.key_of(Role::Analyst).expect("a key")
            )),
            StatusCode::UNAUTHORIZED,
        ),
        ("ingest", bearer(Role::Ingest), StatusCode::FORBIDDEN),
        ("support", bearer(Role::Support), StatusCode::FORBIDDEN),
        ("analyst", bearer(Role::Analyst), StatusCode::OK),
        ("admin", bearer(Role::Admin), StatusCode::OK),
    ];
    for path in ENDPOINTS {
        for (who, authorization, want) in &table {
            let (status, body) = api.get_as(path, &[], authorization.as_deref()).await;
            assert_eq!(status, *want, "{path} as {who}: {body}");
            if *want != StatusCode::OK {
                assert!(body["error"].is_string(), "{path} as {who}: {body}");
            }
            // The key is checked before the parameters: a caller without one learns nothing
            // about them.
            if *want != StatusCode::OK {
                let (status, _) = api
                    .get_as(path, &[("bogus", "1")], authorization.as_deref())
                    .await;
                assert_eq!(status, *want, "{path} as {who} with a bad parameter");
            }
        }
    }
}
on_both_stores!(every_endpoint_needs_the_analyst_role);

async fn openapi_lists_every_endpoint(db: &TestStore) {
    let api = Server::start(db.store()).await;
    // No key needed.
    let (status, doc) = api.get_as("/openapi.json", &[], None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in ENDPOINTS {
        let get = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing"))["get"];
        assert!(get.is_object(), "{path} has a GET");
        assert_eq!(get["security"], json!([{"bearer": []}]), "{path}");
        for status in ["200", "400", "401", "403"] {
            assert!(
                get["responses"][status].is_object(),
                "{path} answers {status}"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        json!("bearer")
    );
    let params: Vec<&str> = paths["/v1/metrics/menu-entries"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["from", "to", "entry", "variant"]);
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for s in ["MenuEntries", "Linkage", "AbReadout", "ErrorBody"] {
        assert!(schemas.contains_key(s), "schema {s}");
    }
}
on_both_stores!(openapi_lists_every_endpoint);
