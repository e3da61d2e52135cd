//! The template-message funnel end to end from WeChat's own delivery results: the OA server's
//! `TEMPLATESENDJOBFINISH` pushes (success, `failed:user block`, `failed: system failed`) reach
//! `liandong serve`'s callback as `oa.template.sent` with `status`; the clicks, the landing in
//! the Mini Program, the binding and the payment come from the other senders through
//! `POST /v1/events`; `GET /v1/metrics/messages` then shows the funnel of that template.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::*;
use liandong::{Config, Role};
use liandong_wechat::CALLBACK_PATH;
use serde_json::{json, Value};

const INGEST: &str = "wx-ingest-key-0123456789";
const ANALYST: &str = "wx-analyst-key-0123456789";
const SUPPORT: &str = "wx-support-key-0123456789";

const MENU: &str = r#"{"menus": [{"key": "ORDER_NOW", "label": "立即点餐"}],
  "templates": {"template_id": "ORDER_READY_TPL", "purpose": "order_ready"}}"#;

async fn wait_caught_up(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = client
            .get(format!("{base}/v1/status"))
            .bearer_auth(SUPPORT)
            .send()
            .await
            .expect("status answers")
            .json()
            .await
            .expect("status is JSON");
        if status["lag"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no catch-up: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_results_from_wechat_feed_the_message_funnel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let menu_path = dir.path().join("menu.json");
    std::fs::write(&menu_path, MENU).expect("menu file");
    let settings: BTreeMap<&str, String> = [
        ("LIANDONG_DATA_DIR", dir.path().display().to_string()),
        ("LIANDONG_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "LIANDONG_API_KEYS",
            format!("ingest:{INGEST},analyst:{ANALYST},support:{SUPPORT}"),
        ),
        ("LIANDONG_WECHAT_TOKEN", TOKEN.to_owned()),
        ("LIANDONG_WECHAT_APPID", APPID.to_owned()),
        ("LIANDONG_WECHAT_AES_KEY", KEY.to_owned()),
        ("LIANDONG_WECHAT_MENU", menu_path.display().to_string()),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|k| settings.get(k).cloned()).expect("config");
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("serve starts");
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();

    // WeChat's delivery results, one per follower, each pushed twice (a retry).
    let t = unix_now(3600);
    let results = [
        ("oDan", "success"),
        ("oEve", "failed:user block"),
        ("oFay", "failed: system failed"),
    ];
    for (i, (openid, status)) in results.iter().enumerate() {
        let msg_id = format!("20016383{i}");
        let body = event_push(
            openid,
            t + i as i64,
            "TEMPLATESENDJOBFINISH",
            None,
            &[("MsgID", &msg_id), ("Status", status)],
        );
        let query = plain_query(TOKEN, "1764000000", "4141");
        for _ in 0..2 {
            let r = client
                .post(format!("{base}{CALLBACK_PATH}?{query}"))
                .header("content-type", "text/xml")
                .body(body.clone())
                .send()
                .await
                .expect("the callback answers");
            assert_eq!(r.status(), 200);
        }
    }

    // Dan opens the message, lands in the Mini Program (scene 1043: from a template message),
    // logs in there (binding both openids to his unionid) and pays. Eve opens hers too,
    // although WeChat reported it blocked.
    let at = |secs: i64| {
        Utc.timestamp_opt(t + secs, 0)
            .single()
            .expect("a time")
            .to_rfc3339()
    };
    let id = || uuid::Uuid::new_v4().to_string();
    let events = json!({"events": [
        {"event_id": id(), "type": "oa.template.click", "occurred_at": at(60),
         "user": {"oa_openid": "oDan"}, "props": {"template_id": "ORDER_READY_TPL"}},
        {"event_id": id(), "type": "mp.visit", "occurred_at": at(62), "scene": 1043,
         "user": {"mp_openid": "mDan"}, "props": {"page": "pages/order/detail"}},
        {"event_id": id(), "type": "member.identified", "occurred_at": at(63),
         "user": {"unionid": "uDan", "oa_openid": "oDan", "mp_openid": "mDan"}},
        {"event_id": id(), "type": "order.paid", "occurred_at": at(600),
         "user": {"mp_openid": "mDan"}, "props": {"order_id": "d1", "amount_fen": 3200}},
        {"event_id": id(), "type": "oa.template.click", "occurred_at": at(90),
         "user": {"oa_openid": "oEve"}, "props": {"template_id": "ORDER_READY_TPL"}},
    ]});
    let r = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(INGEST)
        .json(&events)
        .send()
        .await
        .expect("ingestion answers");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["accepted"], 5, "{body}");

    wait_caught_up(&client, &base).await;
    let day = Utc
        .timestamp_opt(t, 0)
        .single()
        .expect("a time")
        .with_timezone(&chrono_tz_shanghai())
        .date_naive()
        .to_string();
    let funnel: Value = client
        .get(format!(
            "{base}/v1/metrics/messages?from={day}&to={day}&channel=oa_template"
        ))
        .bearer_auth(ANALYST)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    let total = &funnel["totals"][0];
    assert_eq!(total["template_id"], "ORDER_READY_TPL", "{funnel}");
    let counts: Vec<i64> = [
        "sent_users",
        "delivered_users",
        "clicked_users",
        "visit_users",
        "converted_users",
    ]
    .iter()
    .map(|k| total[*k].as_i64().expect("a count"))
    .collect();
    // Three sent, one delivered (Dan); Dan and Eve clicked; Dan visited and paid.
    assert_eq!(counts, [3, 1, 2, 1, 1], "{funnel}");
    assert_eq!(total["delivery_rate"].as_f64(), Some(1.0 / 3.0));
    assert_eq!(total["conversion_rate"].as_f64(), Some(0.5));
    running.stop().await.expect("clean stop");
}

/// The zone `day` is counted in by default (LIANDONG_TIMEZONE unset).
fn chrono_tz_shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00")
}
