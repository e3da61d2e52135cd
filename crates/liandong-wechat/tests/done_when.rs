//! Done when: WeChat pointed at a real `liandong serve` (in-process, embedded log + SQLite, as
//! `liandong::start(Role::Serve, …)` runs it) gets its URL check answered, and its pushes —
//! plaintext and encrypted, each retried as WeChat retries — show up in `events` and
//! `member_profile`, counted once, while an unmappable one waits in the dead-letter stream.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use liandong::{Config, Role};
use liandong_log::{EmbeddedLog, EventLog, Stream};
use liandong_projections::read;
use liandong_store::ReadStore;
use liandong_wechat::CALLBACK_PATH;
use serde_json::Value;

const KEYS: &str = "ingest:wx-ingest-key-0123456789,support:wx-support-key-0123456789";
const SUPPORT: &str = "wx-support-key-0123456789";

const MENU: &str = r#"{"menus": [
    {"key": "ORDER_NOW", "label": "立即点餐"},
    {"key": "ORDER_NOW", "menu_id": "415", "label": "马上下单", "experiment": "entry_name", "variant": "b"},
    {"target": "pages/menu/index?from=menu&type=home", "label": "点单小程序"}
  ]}"#;

/// Sends one push `times` times (WeChat: the original and its retries); each must get `success`.
async fn push(client: &reqwest::Client, url: &str, query: &str, body: &str, times: usize) {
    for _ in 0..times {
        let r = client
            .post(format!("{url}?{query}"))
            .header("content-type", "text/xml")
            .body(body.to_owned())
            .send()
            .await
            .expect("the callback answers");
        let status = r.status();
        let text = r.text().await.expect("body");
        assert_eq!((status.as_u16(), text.as_str()), (200, "success"));
    }
}

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
        assert!(
            Instant::now() < deadline,
            "projections did not catch up: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_pushes_reach_the_read_models_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let menu_path = dir.path().join("menu.json");
    std::fs::write(&menu_path, MENU).expect("menu file");
    let settings: BTreeMap<&str, String> = [
        ("LIANDONG_DATA_DIR", dir.path().display().to_string()),
        ("LIANDONG_LISTEN", "127.0.0.1:0".to_owned()),
        ("LIANDONG_API_KEYS", KEYS.to_owned()),
        ("LIANDONG_WECHAT_TOKEN", TOKEN.to_owned()),
        ("LIANDONG_WECHAT_APPID", APPID.to_owned()),
        ("LIANDONG_WECHAT_AES_KEY", KEY.to_owned()),
        ("LIANDONG_WECHAT_AES_KEY_PREVIOUS", PREVIOUS_KEY.to_owned()),
        ("LIANDONG_WECHAT_MENU", menu_path.display().to_string()),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|k| settings.get(k).cloned()).expect("config");
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("serve starts");
    let base = format!("http://{}", running.addr);
    let url = format!("{base}{CALLBACK_PATH}");
    let client = reqwest::Client::new();

    // 1. The URL check, as the OA admin console runs it when the address is saved.
    let check = client
        .get(format!(
            "{url}?{}&echostr=7015394829473621",
            plain_query(TOKEN, "1764000000", "4141")
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(check.status(), 200);
    assert_eq!(check.text().await.expect("body"), "7015394829473621");

    // 2. Plaintext pushes, each sent three times (the original and two retries).
    let t = unix_now(600);
    let plain = |xml: String| (plain_query(TOKEN, "1764000000", "4141"), xml);
    let safe = |k: &str, xml: String| safe_push(TOKEN, &key(k), APPID, &xml, "1764000001", "4242");
    let pushes = vec![
        // Alice follows through the Mini Program's prompt, then uses the menu (variant b).
        plain(event_push(
            "oAlice",
            t,
            "subscribe",
            Some("qrscene_mp_prompt"),
            &[],
        )),
        plain(event_push(
            "oAlice",
            t + 10,
            "CLICK",
            Some("ORDER_NOW"),
            &[("MenuId", "415")],
        )),
        plain(event_push(
            "oAlice",
            t + 20,
            "view_miniprogram",
            Some("pages/menu/index?from=menu&type=home"),
            &[("MenuId", "415")],
        )),
        // Bob, in safe mode: follows from a store's QR code, clicks, then unfollows.
        safe(
            KEY,
            event_push("oBob", t + 30, "subscribe", Some("qrscene_store_12"), &[]),
        ),
        safe(
            KEY,
            event_push("oBob", t + 40, "CLICK", Some("ORDER_NOW"), &[]),
        ),
        safe(KEY, event_push("oBob", t + 50, "unsubscribe", None, &[])),
        // Carol's push is sealed with the key being rotated out: it still opens.
        safe(
            PREVIOUS_KEY,
            event_push("oCarol", t + 60, "subscribe", None, &[]),
        ),
        // Not an event: kept in the dead-letter stream, still answered `success`.
        plain(xml(&[
            ("FromUserName", "oCarol"),
            ("CreateTime", &(t + 70).to_string()),
            ("MsgType", "text"),
            ("Content", "几点营业？"),
            ("MsgId", "24601"),
        ])),
    ];
    for (query, body) in &pushes {
        push(&client, &url, query, body, 3).await;
    }

    wait_caught_up(&client, &base).await;
    let store = ReadStore::connect(&format!("sqlite://{}/liandong.db", dir.path().display()))
        .await
        .expect("the read store");

    // `events`: one row per push, whatever the retries.
    let events = read::event_identities(&store).await.expect("events");
    let mut by_type: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &events {
        *by_type
            .entry((e.member_key.clone(), e.event_type.clone()))
            .or_default() += 1;
    }
    let want: BTreeMap<(String, String), usize> = [
        (("oa:oAlice", "oa.follow"), 1),
        (("oa:oAlice", "oa.menu.click"), 2),
        (("oa:oBob", "oa.follow"), 1),
        (("oa:oBob", "oa.menu.click"), 1),
        (("oa:oBob", "oa.unfollow"), 1),
        (("oa:oCarol", "oa.follow"), 1),
    ]
    .into_iter()
    .map(|((m, t), n)| ((m.to_owned(), t.to_owned()), n))
    .collect();
    assert_eq!(by_type, want, "{events:#?}");
    let alice_view = events
        .iter()
        .find(|e| e.member_key == "oa:oAlice" && e.source_from.is_some())
        .expect("the mini program click carries its source");
    assert_eq!(alice_view.source_from.as_deref(), Some("menu"));

    // `member_profile`: who follows, and how they came.
    let profiles = read::member_profiles(&store).await.expect("profiles");
    let profile = |key: &str| {
        profiles
            .iter()
            .find(|p| p.member_key == key)
            .unwrap_or_else(|| panic!("no profile {key}: {profiles:#?}"))
    };
    assert_eq!(profiles.len(), 3, "{profiles:#?}");
    let alice = profile("oa:oAlice");
    assert!(alice.following);
    assert_eq!(alice.follow_via.as_deref(), Some("mp_prompt"));
    assert_eq!(alice.oa_openid.as_deref(), Some("oAlice"));
    let bob = profile("oa:oBob");
    assert!(!bob.following, "{bob:?}");
    let carol = profile("oa:oCarol");
    assert!(carol.following);
    assert_eq!(carol.follow_via.as_deref(), Some("other"));

    running.stop().await.expect("clean stop");

    // The text message waits in the dead-letter stream with its reason (three times: each
    // retry was answered `success` only once its dead letter was durable).
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("the embedded log");
    let mut consumer = log
        .consumer("done-when-dlq", Stream::DeadLetter)
        .await
        .expect("consumer");
    let letters = consumer
        .poll(100, Duration::from_secs(2))
        .await
        .expect("poll");
    assert_eq!(letters.len(), 3);
    assert!(letters.iter().all(|l| l.event_id == letters[0].event_id));
    let letter: Value = serde_json::from_slice(&letters[0].payload).expect("JSON");
    assert!(
        letter["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("WeChat push: MsgType text"),
        "{letter}"
    );
    assert_eq!(letter["event"]["wechat_push"]["Content"], "几点营业？");
}
