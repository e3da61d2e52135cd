//! The decisions for the apps (`/v1/members/{member_key}/follow-prompt`, `/channel`) and a
//! member's interests (`/interests`) over real HTTP against a real store (PostgreSQL and
//! SQLite), fed through the core projection: followers, members who turned activity
//! notifications off, members without an MP openid, unknown members, a prompt just inside and
//! just outside 24 hours, and the interests against the `member_interest` relation.
//! The exact 23:59:59 / 24:00:00 edge is pinned without a clock in `decisions.rs`'s unit tests;
//! here `allowed_again_at` must be the stored prompt time + 24 h to the microsecond.

use chrono::{Duration, SecondsFormat, Utc};
use liandong_auth::Role;
use liandong_projections::CoreProjection;
use liandong_testkit::{apply_batch, fresh_core, on_both_stores, validated, TestStore};
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

use common::{Server, TZ};

fn event(n: u32, t: &str, at: chrono::DateTime<Utc>, user: Value, props: Value) -> Value {
    json!({
        "event_id": format!("00000000-0000-4000-8000-{n:012}"),
        "type": t,
        "occurred_at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "user": user,
        "props": props,
    })
}

async fn get(api: &Server, path: &str, role: Option<Role>) -> (StatusCode, Value) {
    let mut req = api.http.get(format!("{}{path}", api.base));
    if let Some(r) = role {
        req = req.bearer_auth(api.keys.key_of(r).expect("a key per role"));
    }
    let res = req.send().await.expect("a response");
    let status = res.status();
    (status, res.json().await.expect("a JSON body"))
}

async fn decisions_and_interests(db: &TestStore) {
    let store = db.store().clone();
    let p = CoreProjection::new(TZ, liandong_testkit::test_vault());
    fresh_core(&store, &p).await;
    let now = Utc::now();
    let recent = now - Duration::hours(23);
    let wire = vec![
        // uFOLLOW: follows the OA, has an MP openid (bound late), was prompted an hour ago.
        event(
            1,
            "oa.follow",
            now - Duration::days(3),
            json!({"oa_openid": "oFOLLOW"}),
            json!({}),
        ),
        event(
            2,
            "mp.visit",
            now - Duration::days(2),
            json!({"mp_openid": "mFOLLOW"}),
            json!({"page": "p"}),
        ),
        event(
            3,
            "member.identified",
            now - Duration::days(1),
            json!({"unionid": "uFOLLOW", "oa_openid": "oFOLLOW", "mp_openid": "mFOLLOW"}),
            json!({}),
        ),
        event(
            4,
            "mp.follow_prompt.shown",
            now - Duration::hours(1),
            json!({"mp_openid": "mFOLLOW"}),
            json!({}),
        ),
        // mp:mQUIET: MP only, turned activity notifications off, prompted 23 hours ago.
        event(
            5,
            "mp.follow_prompt.shown",
            recent,
            json!({"mp_openid": "mQUIET"}),
            json!({}),
        ),
        event(
            6,
            "member.preferences_changed",
            now - Duration::hours(2),
            json!({"mp_openid": "mQUIET"}),
            json!({"activity_notifications": false}),
        ),
        event(
            7,
            "mp.page_view",
            now - Duration::hours(3),
            json!({"mp_openid": "mQUIET"}),
            json!({"page": "pages/goods", "category": "烘焙"}),
        ),
        event(
            8,
            "mp.page_view",
            now - Duration::hours(4),
            json!({"mp_openid": "mQUIET"}),
            json!({"page": "pages/goods", "category": "烘焙"}),
        ),
        event(
            9,
            "mp.page_view",
            now - Duration::hours(5),
            json!({"mp_openid": "mQUIET"}),
            json!({"page": "pages/toys", "category": "玩具"}),
        ),
        // oa:oREADER: OA only, not following, prompted (on another device) 25 hours ago.
        event(
            10,
            "oa.article.read",
            now - Duration::hours(6),
            json!({"oa_openid": "oREADER"}),
            json!({"article_id": "a1", "category": "咖啡"}),
        ),
        event(
            11,
            "mp.follow_prompt.shown",
            now - Duration::hours(25),
            json!({"oa_openid": "oREADER"}),
            json!({}),
        ),
    ];
    apply_batch(&store, &p, &validated(&wire)).await;
    let api = Server::start(&store).await;

    // Follow prompt.
    let prompt = |key: &str| format!("/v1/members/{key}/follow-prompt");
    let (s, b) = get(&api, &prompt("uFOLLOW"), Some(Role::Decide)).await;
    assert_eq!(
        (s, b["show"].clone(), b["reason"].clone()),
        (StatusCode::OK, json!(false), json!("following")),
        "{b}"
    );
    let (_, b) = get(&api, &prompt("mp:mQUIET"), Some(Role::Decide)).await;
    assert_eq!(
        (b["show"].clone(), b["reason"].clone()),
        (json!(false), json!("prompted_within_24h")),
        "{b}"
    );
    assert_eq!(
        b["allowed_again_at"],
        (recent + Duration::hours(24)).to_rfc3339_opts(SecondsFormat::Micros, true),
        "{b}"
    );
    for key in ["oa:oREADER", "uNOBODY", "mp:mNOBODY"] {
        let (_, b) = get(&api, &prompt(key), Some(Role::Decide)).await;
        assert_eq!(
            (b["show"].clone(), b["reason"].clone()),
            (json!(true), json!("eligible")),
            "{key}: {b}"
        );
    }

    // Channel.
    let channel = |key: &str, purpose: &str, urgent: &str| {
        format!("/v1/members/{key}/channel?purpose={purpose}&urgent={urgent}")
    };
    let cases = [
        (
            "uFOLLOW",
            "activity",
            "true",
            json!("mp_notify"),
            "urgent_mp_openid",
        ),
        (
            "uFOLLOW",
            "service",
            "false",
            json!("oa_template"),
            "following",
        ),
        (
            "mp:mQUIET",
            "activity",
            "true",
            Value::Null,
            "notifications_off",
        ),
        (
            "mp:mQUIET",
            "activity",
            "false",
            Value::Null,
            "notifications_off",
        ),
        (
            "mp:mQUIET",
            "service",
            "false",
            json!("mp_notify"),
            "mp_openid",
        ),
        ("oa:oREADER", "service", "true", Value::Null, "unreachable"),
        (
            "oa:oREADER",
            "activity",
            "false",
            Value::Null,
            "unreachable",
        ),
        ("uNOBODY", "service", "true", Value::Null, "unreachable"),
        (
            "mp:mNOBODY",
            "service",
            "true",
            json!("mp_notify"),
            "urgent_mp_openid",
        ),
    ];
    for (key, purpose, urgent, want, reason) in cases {
        let (s, b) = get(&api, &channel(key, purpose, urgent), Some(Role::Decide)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["channel"].clone(), b["reason"].clone()),
            (want, json!(reason)),
            "{key} {purpose} {urgent}: {b}"
        );
    }
    for (path, parameter) in [
        ("/v1/members/uFOLLOW/channel?purpose=promo", "purpose"),
        ("/v1/members/uFOLLOW/channel", "purpose"),
        (
            "/v1/members/uFOLLOW/channel?purpose=service&urgent=yes",
            "urgent",
        ),
        ("/v1/members/uFOLLOW/interests?limit=0", "limit"),
    ] {
        let (s, b) = get(&api, path, Some(Role::Decide)).await;
        assert_eq!(
            (s, b["parameter"].as_str()),
            (StatusCode::BAD_REQUEST, Some(parameter)),
            "{path}: {b}"
        );
    }

    // Interests: the relation's rows, strongest first.
    let (s, b) = get(&api, "/v1/members/mp:mQUIET/interests", Some(Role::Decide)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rows = liandong_projections::member_interest::read(&store, Some("mp:mQUIET"))
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.category.as_str(), r.page_views))
            .collect::<Vec<_>>(),
        [("烘焙", 2), ("玩具", 1)]
    );
    let shown: Vec<(String, i64, i64, String)> = b["interests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["category"].as_str().unwrap().to_owned(),
                i["article_reads"].as_i64().unwrap(),
                i["page_views"].as_i64().unwrap(),
                i["last_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, i64, i64, String)> = rows
        .into_iter()
        .map(|r| (r.category, r.article_reads, r.page_views, r.last_at))
        .collect();
    assert_eq!(shown, want);
    let (_, b) = get(
        &api,
        "/v1/members/mp:mQUIET/interests?limit=1",
        Some(Role::Support),
    )
    .await;
    assert_eq!(b["interests"].as_array().unwrap().len(), 1, "{b}");
    let (_, b) = get(&api, "/v1/members/uNOBODY/interests", Some(Role::Decide)).await;
    assert_eq!(b["interests"], json!([]), "{b}");

    // Segments: counts for analysts, keys for admins (audited).
    let seg = |q: &str| format!("/v1/segments/count?{q}");
    for (query, want) in [
        ("", 3),
        ("interest=烘焙", 1),
        ("interest=咖啡&following=false", 1),
        ("following=true", 1),
        ("following=false&active_within_days=1", 2),
        ("interest=玩具&following=true", 0),
    ] {
        let (s, b) = get(&api, &seg(query), Some(Role::Analyst)).await;
        assert_eq!(
            (s, b["members"].as_i64()),
            (StatusCode::OK, Some(want)),
            "{query}: {b}"
        );
    }
    let (s, b) = get(
        &api,
        "/v1/segments/count?following=maybe",
        Some(Role::Analyst),
    )
    .await;
    assert_eq!(
        (s, b["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("following")),
        "{b}"
    );
    let (s, _) = get(
        &api,
        "/v1/segments/members?following=false",
        Some(Role::Analyst),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = get(
        &api,
        "/v1/segments/members?following=false",
        Some(Role::Admin),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["member_keys"], json!(["mp:mQUIET", "oa:oREADER"]), "{b}");
    let (_, trail) = get(&api, "/v1/audit?limit=100", Some(Role::Admin)).await;
    let exports: Vec<&Value> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "segment.export")
        .collect();
    assert_eq!(exports.len(), 1, "one entry per export: {trail}");
    assert!(
        !serde_json::to_string(&exports).unwrap().contains("mQUIET"),
        "the exported keys are not in the trail"
    );

    // The apps' key reads nothing else; other roles get no decisions.
    let (s, _) = get(&api, "/v1/members/uFOLLOW", Some(Role::Decide)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = get(&api, "/v1/metrics/linkage", Some(Role::Decide)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for role in [Role::Analyst, Role::Support, Role::Ingest, Role::Client] {
        let (s, _) = get(&api, &prompt("uFOLLOW"), Some(role)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}");
    }
}
on_both_stores!(decisions_and_interests);
