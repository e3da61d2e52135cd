//! `/v1/metrics/summary` and `/v1/whoami` over real HTTP against a real store (PostgreSQL and
//! SQLite), fed with the scenario generator's traffic (October 2026) plus article clicks.
//!
//! Each KPI's numerator and denominator are checked against an aggregate written here in SQL
//! straight on the METRICS.md relations (not through `liandong_projections::read`, which the
//! endpoint uses), for the period and for the previous period of the same length; every rate
//! and change is recomputed from those counts.

use liandong_api::summary::{Summary, KPI_NAMES};
use liandong_api::WhoAmI;
use liandong_auth::Role;
use liandong_projections::CoreProjection;
use liandong_store::sqlx::{self, Row};
use liandong_store::ReadStore;
use liandong_testkit::scenario::{self, Shape};
use liandong_testkit::{apply_batch, fresh_core, on_both_stores, validated, TestStore};
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

use common::{Server, TZ};

impl Server {
    async fn get_as(
        &self,
        path: &str,
        query: &[(&str, &str)],
        role: Option<Role>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base)).query(query);
        if let Some(r) = role {
            req = req.bearer_auth(self.keys.key_of(r).expect("a key per role"));
        }
        let res = req.send().await.expect("a response");
        let status = res.status();
        (status, res.json().await.expect("a JSON body"))
    }

    async fn summary(&self, from: &str, to: &str) -> Summary {
        let (status, body) = self
            .get_as(
                "/v1/metrics/summary",
                &[("from", from), ("to", to)],
                Some(Role::Analyst),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).expect("a summary")
    }
}

/// Article link clicks (the scenario only reads), on days across the month.
fn article_clicks() -> Vec<Value> {
    (0..12u32)
        .map(|i| {
            json!({"event_id": format!("00000000-0000-4000-8000-{i:012}"), "type": "oa.article.click",
                   "occurred_at": format!("2026-10-{:02}T10:00:00+08:00", 2 + 2 * i),
                   "user": {"oa_openid": format!("reader{i}")},
                   "props": {"article_id": format!("a{}", i % 3), "link": "text"}})
        })
        .collect()
}

async fn projected(db: &TestStore) -> ReadStore {
    let store = db.store().clone();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    let mut wire = scenario::events(&Shape::default());
    wire.extend(article_clicks());
    fresh_core(&store, &p).await;
    apply_batch(&store, &p, &validated(&wire)).await;
    store
}

/// `SUM` of each column over the rows of `table` whose `day_col` is in [from, to], and more
/// aggregates (`extra`) as written; every value as a bigint.
async fn sums(
    store: &ReadStore,
    table: &str,
    day_col: &str,
    cols: &[&str],
    extra: &[&str],
    from: &str,
    to: &str,
) -> Vec<i64> {
    let (cast, date) = match store {
        ReadStore::Postgres(_) => ("::bigint", "::date"),
        ReadStore::Sqlite(_) => ("", ""),
    };
    let select: Vec<String> = cols
        .iter()
        .map(|c| format!("COALESCE(SUM({c}), 0){cast}"))
        .chain(extra.iter().map(|e| format!("COALESCE({e}, 0){cast}")))
        .collect();
    let sql = format!(
        "SELECT {} FROM {table} WHERE {day_col} >= $1{date} AND {day_col} <= $2{date}",
        select.join(", ")
    );
    let n = select.len();
    match store {
        ReadStore::Postgres(p) => {
            let row = sqlx::query(&sql)
                .bind(from)
                .bind(to)
                .fetch_one(p)
                .await
                .expect("aggregate");
            (0..n).map(|i| row.get::<i64, _>(i)).collect()
        }
        ReadStore::Sqlite(p) => {
            let row = sqlx::query(&sql)
                .bind(from)
                .bind(to)
                .fetch_one(p)
                .await
                .expect("aggregate");
            (0..n).map(|i| row.get::<i64, _>(i)).collect()
        }
    }
}

/// Per KPI: (numerator, denominator, cohorts, immature cohorts, immature size) straight from
/// the relations; the cohort figures are 0 for the six KPIs that have none.
async fn expected(store: &ReadStore, from: &str, to: &str) -> Vec<[i64; 5]> {
    let menu = sums(
        store,
        "metric_menu_entry_daily",
        "day",
        &["clicks", "exposures"],
        &[],
        from,
        to,
    )
    .await;
    let article = sums(
        store,
        "metric_article_daily",
        "day",
        &["clicks", "reads"],
        &[],
        from,
        to,
    )
    .await;
    let l = sums(
        store,
        "metric_linkage_daily",
        "day",
        &[
            "mp_users",
            "oa_guided_users",
            "prompt_follows",
            "core_users",
            "guided_order_users",
            "guided_converted_7d",
        ],
        &[],
        from,
        to,
    )
    .await;
    let r = sums(
        store,
        "retention_repurchase_30d",
        "cohort_day",
        &["repurchased", "converted"],
        &[
            "COUNT(*)",
            "SUM(CASE WHEN mature THEN 0 ELSE 1 END)",
            "SUM(CASE WHEN mature THEN 0 ELSE converted END)",
        ],
        from,
        to,
    )
    .await;
    let f = sums(
        store,
        "retention_follower_30d",
        "cohort_day",
        &["retained", "followers"],
        &[
            "COUNT(*)",
            "SUM(CASE WHEN mature THEN 0 ELSE 1 END)",
            "SUM(CASE WHEN mature THEN 0 ELSE followers END)",
        ],
        from,
        to,
    )
    .await;
    vec![
        [menu[0], menu[1], 0, 0, 0],
        [article[0], article[1], 0, 0, 0],
        [l[2], l[0], 0, 0, 0],
        [l[3], l[0], 0, 0, 0],
        [l[4], l[1], 0, 0, 0],
        [l[5], l[1], 0, 0, 0],
        [r[0], r[1], r[2], r[3], r[4]],
        [f[0], f[1], f[2], f[3], f[4]],
    ]
}

fn div(n: i64, d: i64) -> Option<f64> {
    (d != 0).then(|| n as f64 / d as f64)
}

/// The summary of [from, to] against the relations, for the period and the previous one.
async fn check(api: &Server, store: &ReadStore, from: &str, to: &str, prev: (&str, &str)) {
    let got = api.summary(from, to).await;
    assert_eq!(
        (got.range.from.to_string(), got.range.to.to_string()),
        (from.to_owned(), to.to_owned())
    );
    assert_eq!(
        (
            got.previous_range.from.to_string(),
            got.previous_range.to.to_string()
        ),
        (prev.0.to_owned(), prev.1.to_owned())
    );
    let names: Vec<&str> = got.kpis.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, KPI_NAMES);
    let now = expected(store, from, to).await;
    let before = expected(store, prev.0, prev.1).await;
    for ((k, e), p) in got.kpis.iter().zip(&now).zip(&before) {
        let ctx = format!("{} {from}..{to}", k.name);
        assert_eq!(
            (k.current.numerator, k.current.denominator),
            (e[0], e[1]),
            "{ctx}"
        );
        assert_eq!(k.current.rate, div(e[0], e[1]), "{ctx}");
        assert_eq!(
            (k.previous.numerator, k.previous.denominator),
            (p[0], p[1]),
            "{ctx} previous"
        );
        assert_eq!(k.previous.rate, div(p[0], p[1]), "{ctx} previous");
        let change = div(e[0], e[1]).zip(div(p[0], p[1])).map(|(a, b)| a - b);
        assert_eq!(k.change, change, "{ctx} change");
        let cohort = k.name.ends_with("_30d");
        assert_eq!(k.cohorts.is_some(), cohort, "{ctx}");
        if let (Some(c), Some(pc)) = (k.cohorts, k.previous_cohorts) {
            assert_eq!(
                [c.cohorts, c.immature_cohorts, c.immature_size],
                [e[2], e[3], e[4]],
                "{ctx} cohorts"
            );
            assert_eq!(
                [pc.cohorts, pc.immature_cohorts, pc.immature_size],
                [p[2], p[3], p[4]],
                "{ctx} previous cohorts"
            );
        }
    }
}

async fn summary_equals_the_relations(db: &TestStore) {
    let store = projected(db).await;
    let api = Server::start(&store).await;

    // The second half of the traffic month against the first half.
    check(
        &api,
        &store,
        "2026-10-16",
        "2026-10-30",
        ("2026-10-01", "2026-10-15"),
    )
    .await;
    // The whole month: the previous period is empty, so every previous rate is null.
    check(
        &api,
        &store,
        "2026-10-01",
        "2026-10-31",
        ("2026-08-31", "2026-09-30"),
    )
    .await;
    // One day, and a week straddling the month's end.
    check(
        &api,
        &store,
        "2026-10-12",
        "2026-10-12",
        ("2026-10-11", "2026-10-11"),
    )
    .await;
    check(
        &api,
        &store,
        "2026-10-27",
        "2026-11-02",
        ("2026-10-20", "2026-10-26"),
    )
    .await;

    // The data is not trivial: every KPI has a denominator over the month.
    let month = api.summary("2026-10-01", "2026-10-31").await;
    for k in &month.kpis {
        assert!(
            k.current.denominator > 0 && k.current.rate.is_some(),
            "{}: {k:?}",
            k.name
        );
        assert_eq!(k.previous.rate, None, "{}", k.name);
        assert_eq!(k.change, None, "{}", k.name);
    }
    let half = api.summary("2026-10-16", "2026-10-30").await;
    assert!(half.kpis.iter().any(|k| k.change.is_some_and(|c| c != 0.0)));
    // Member-days: the linkage denominators over a range are the sum of the days', so over
    // the month they exceed any single day's.
    let day = api.summary("2026-10-12", "2026-10-12").await;
    assert!(month.kpis[2].current.denominator > day.kpis[2].current.denominator);

    // A period without traffic: counts 0, rates null.
    let empty = api.summary("2025-01-01", "2025-01-31").await;
    assert!(empty
        .kpis
        .iter()
        .all(|k| k.current.denominator == 0 && k.current.rate.is_none() && k.change.is_none()));

    // The review of the second half: the same KPIs, and article movers equal to the relation's
    // reads summed here in SQL per period.
    let (status, body) = api
        .get_as(
            "/v1/reports/review",
            &[("from", "2026-10-16"), ("to", "2026-10-30")],
            Some(Role::Analyst),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let review: liandong_api::review::Review = serde_json::from_value(body).expect("a review");
    assert_eq!(review.kpis, half.kpis);
    let article_reads = |from: &'static str, to: &'static str| {
        let store = store.clone();
        async move {
            let q = match &store {
                ReadStore::Postgres(_) => "SELECT article_id, CAST(SUM(reads) AS BIGINT) FROM metric_article_daily WHERE day BETWEEN CAST($1 AS date) AND CAST($2 AS date) GROUP BY article_id",
                ReadStore::Sqlite(_) => "SELECT article_id, CAST(SUM(reads) AS BIGINT) FROM metric_article_daily WHERE day BETWEEN $1 AND $2 GROUP BY article_id",
            };
            let rows: Vec<(String, i64)> = match &store {
                ReadStore::Postgres(p) => sqlx::query_as(q)
                    .bind(from)
                    .bind(to)
                    .fetch_all(p)
                    .await
                    .unwrap(),
                ReadStore::Sqlite(p) => sqlx::query_as(q)
                    .bind(from)
                    .bind(to)
                    .fetch_all(p)
                    .await
                    .unwrap(),
            };
            rows.into_iter()
                .collect::<std::collections::BTreeMap<String, i64>>()
        }
    };
    let now = article_reads("2026-10-16", "2026-10-30").await;
    let before = article_reads("2026-10-01", "2026-10-15").await;
    assert!(!review.articles.is_empty());
    for m in &review.articles {
        let (c, p) = (
            now.get(&m.key).copied().unwrap_or(0),
            before.get(&m.key).copied().unwrap_or(0),
        );
        assert_eq!((m.current, m.previous, m.change), (c, p, c - p), "{m:?}");
    }
    let biggest = now
        .keys()
        .chain(before.keys())
        .map(|k| (now.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)).abs())
        .max()
        .unwrap_or(0);
    assert_eq!(
        review.articles[0].change.abs(),
        biggest,
        "the biggest mover first"
    );
}
on_both_stores!(summary_equals_the_relations);

async fn summary_refusals_and_whoami(db: &TestStore) {
    let store = projected(db).await;
    let api = Server::start(&store).await;
    let path = "/v1/metrics/summary";

    // Roles: the analyst's endpoint (admin passes every check).
    for (role, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(Role::Ingest), StatusCode::FORBIDDEN),
        (Some(Role::Support), StatusCode::FORBIDDEN),
        (Some(Role::Analyst), StatusCode::OK),
        (Some(Role::Admin), StatusCode::OK),
    ] {
        let (status, body) = api.get_as(path, &[], role).await;
        assert_eq!(status, want, "{role:?}: {body}");
    }
    // Without a range: the last 30 days ending today, and the 30 days before them.
    let (_, body) = api.get_as(path, &[], Some(Role::Analyst)).await;
    let s: Summary = serde_json::from_value(body).expect("a summary");
    assert_eq!((s.range.to - s.range.from).num_days(), 29);
    assert_eq!((s.previous_range.to - s.previous_range.from).num_days(), 29);
    assert_eq!((s.range.from - s.previous_range.to).num_days(), 1);
    // Bad parameters name themselves.
    for (query, parameter) in [
        (vec![("from", "2026-10-1")], Some("from")),
        (
            vec![("from", "2026-10-10"), ("to", "2026-10-01")],
            Some("from"),
        ),
        (vec![("to", "soon")], Some("to")),
        (vec![("experiment", "x")], Some("experiment")),
    ] {
        let (status, body) = api.get_as(path, &query, Some(Role::Analyst)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert_eq!(body["parameter"].as_str(), parameter, "{query:?}: {body}");
    }

    // whoami: any valid key learns its role; nobody else learns anything.
    for role in Role::ALL {
        let (status, body) = api.get_as("/v1/whoami", &[], Some(role)).await;
        assert_eq!(status, StatusCode::OK, "{role}: {body}");
        let who: WhoAmI = serde_json::from_value(body).expect("a whoami");
        assert_eq!(who.role, role.as_str());
    }
    let (status, _) = api.get_as("/v1/whoami", &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let res = api
        .http
        .get(format!("{}/v1/whoami", api.base))
        .bearer_auth("not-a-configured-key-0000")
        .send()
        .await
        .expect("a response");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Both are in the OpenAPI document.
    let (_, doc) = api.get_as("/openapi.json", &[], None).await;
    for p in [path, "/v1/whoami"] {
        assert_eq!(
            doc["paths"][p]["get"]["security"],
            json!([{"bearer": []}]),
            "{p}"
        );
    }
    assert!(doc["components"]["schemas"]["Summary"].is_object());
    let described = doc["paths"][path]["get"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        described.contains("member-days") && described.contains("mature"),
        "{described}"
    );
}
on_both_stores!(summary_refusals_and_whoami);
