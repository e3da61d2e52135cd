//! The callback over real HTTP: a server on port 0 with an embedded log in a temporary
//! directory and identity bindings in a temporary SQLite file, driven with pushes built and
//! signed as WeChat builds them. Every bad-input case of the issue, and where each push ends up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use liandong_auth::ApiKeys;
use liandong_event::Schemas;
use liandong_identity::IdentityService;
use liandong_ingest::IngestState;
use liandong_log::{Delivered, EmbeddedLog, EventLog, LogConsumer, LogError, Record, Stream};
use liandong_vault::{DataKeys, MasterKey, Vault};
use liandong_wechat::{router, MenuConfig, WechatConfig, CALLBACK_PATH};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::sqlite::SqlitePoolOptions;

const MENU: &str = r#"{"menus": [
    {"key": "ORDER_NOW", "label": "立即点餐"},
    {"key": "ORDER_NOW", "menu_id": "415", "label": "马上下单", "experiment": "entry_name", "variant": "b"},
    {"target": "pages/menu/index?from=menu&type=home", "label": "点单小程序"}
  ], "templates": {"template_id": "TPL_SHIPPED", "purpose": "order_shipped"}}"#;

/// How the log behind the server behaves.
#[derive(Clone, Copy)]
enum LogMode {
    Working,
    /// Appends never finish (a broker that accepts the connection and then says nothing).
    Hanging,
    /// Appends fail as retryable.
    Unavailable,
}

struct SlowLog {
    inner: Arc<EmbeddedLog>,
    mode: LogMode,
}

#[async_trait::async_trait]
impl EventLog for SlowLog {
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
        match self.mode {
            LogMode::Working => self.inner.append(stream, records).await,
            LogMode::Hanging => futures_pending().await,
            LogMode::Unavailable => Err(LogError::Unavailable {
                reason: "broker down".into(),
                retry_after: Duration::from_secs(2),
            }),
        }
    }

    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError> {
        self.inner.end_offsets(stream).await
    }

    async fn consumer(
        &self,
        group: &str,
        stream: Stream,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        self.inner.consumer(group, stream).await
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

async fn futures_pending() -> Result<(), LogError> {
    std::future::pending::<()>().await;
    Ok(())
}

struct Harness {
    url: String,
    client: reqwest::Client,
    log: Arc<EmbeddedLog>,
    _dir: tempfile::TempDir,
}

fn config() -> WechatConfig {
    WechatConfig {
        appid: Some(APPID.to_owned()),
        aes_keys: vec![key(KEY), key(PREVIOUS_KEY)],
        menu: MenuConfig::parse(MENU).expect("menu"),
        append_timeout: Duration::from_millis(300),
        ..WechatConfig::new(TOKEN)
    }
}

async fn start_with(config: Option<WechatConfig>, mode: LogMode) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("embedded log");
    let served: Arc<dyn EventLog> = Arc::new(SlowLog {
        inner: log.clone(),
        mode,
    });
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("identity.db").display()
        ))
        .await
        .expect("sqlite");
    let identity = IdentityService::sqlite(pool.clone())
        .await
        .expect("identity");
    let keys = ApiKeys::parse("ingest:ingest-key-0123456789").expect("keys");
    let store = liandong_store::ReadStore::Sqlite(pool);
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    liandong_vault::migrate(&store, &vault)
        .await
        .expect("vault tables");
    let ingest = IngestState::new(
        Arc::new(Schemas::load().expect("schemas")),
        served,
        identity,
        Arc::new(keys),
        DataKeys::new(store, vault),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(config, ingest);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness {
        url: format!("http://{addr}{CALLBACK_PATH}"),
        client: reqwest::Client::new(),
        log,
        _dir: dir,
    }
}

async fn start() -> Harness {
    start_with(Some(config()), LogMode::Working).await
}

/// A response's status and body text.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn error(&self) -> String {
        let v: Value =
            serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body));
        v["error"].as_str().unwrap_or_default().to_owned()
    }

    fn assert_success(&self) {
        assert_eq!(
            (self.status, self.body.as_str()),
            (StatusCode::OK, "success"),
            "{}",
            self.body
        );
    }
}

impl Harness {
    async fn get(&self, query: &str) -> Answer {
        let r = self
            .client
            .get(format!("{}?{query}", self.url))
            .send()
            .await
            .expect("request");
        answer(r).await
    }

    async fn post(&self, query: &str, body: impl Into<reqwest::Body>) -> Answer {
        let r = self
            .client
            .post(format!("{}?{query}", self.url))
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .expect("request");
        answer(r).await
    }

    /// A plaintext push, signed with `token`.
    async fn push_plain(&self, token: &str, xml: &str) -> Answer {
        self.post(&plain_query(token, "1764000000", "991"), xml.to_owned())
            .await
    }

    async fn read(&self, stream: Stream) -> Vec<(Delivered, Value)> {
        let log: &dyn EventLog = self.log.as_ref();
        let end = log.end_offsets(stream).await.expect("end")[0].1;
        let mut consumer = log.consumer(&uuid_like(), stream).await.expect("consumer");
        let mut out = Vec::new();
        while (out.len() as i64) < end {
            let got = consumer
                .poll(1000, Duration::from_millis(200))
                .await
                .expect("poll");
            assert!(!got.is_empty(), "log ends early");
            out.extend(got);
        }
        out.into_iter()
            .map(|d| {
                let v = serde_json::from_slice(&d.payload).expect("JSON");
                (d, v)
            })
            .collect()
    }

    async fn assert_log_empty(&self) {
        assert!(self.read(Stream::Events).await.is_empty(), "events written");
        assert!(
            self.read(Stream::DeadLetter).await.is_empty(),
            "dead letters written"
        );
    }
}

fn uuid_like() -> String {
    format!("t-{}", unix_now(0))
}

async fn answer(r: reqwest::Response) -> Answer {
    Answer {
        status: r.status(),
        retry_after: r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: r.text().await.expect("body"),
    }
}

// ---------------------------------------------------------------- the URL check

#[tokio::test]
async fn url_check_answers_echostr_only_to_the_right_signature() {
    let h = start().await;
    let q = plain_query(TOKEN, "1409659813", "1372623149");
    let a = h.get(&format!("{q}&echostr=5837397749164870218")).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (StatusCode::OK, "5837397749164870218")
    );

    let wrong = plain_query("anotherToken", "1409659813", "1372623149");
    let a = h.get(&format!("{wrong}&echostr=5837397749164870218")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.error().contains("signature mismatch"), "{}", a.body);
    assert!(!a.body.contains("5837397749164870218"));

    let a = h
        .get("timestamp=1409659813&nonce=1372623149&echostr=1")
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = h.get(&q).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "query parameter echostr is required");
}

#[tokio::test]
async fn without_a_token_the_callback_is_404() {
    let h = start_with(None, LogMode::Working).await;
    let q = plain_query(TOKEN, "1", "2");
    let a = h.get(&format!("{q}&echostr=x")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.error().contains("LIANDONG_WECHAT_TOKEN is unset"),
        "{}",
        a.body
    );
    let a = h
        .push_plain(
            TOKEN,
            &event_push("oA-1", unix_now(5), "subscribe", None, &[]),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    h.assert_log_empty().await;
}

// ---------------------------------------------------------------- pushes that become events

#[tokio::test]
async fn plaintext_pushes_become_events_and_retries_keep_their_id() {
    let h = start().await;
    let t = unix_now(30);
    let click = event_push("oA-1", t, "CLICK", Some("ORDER_NOW"), &[("MenuId", "415")]);
    // WeChat's retries: the same push, up to three more times.
    for _ in 0..3 {
        h.push_plain(TOKEN, &click).await.assert_success();
    }
    let page = "pages/menu/index?from=menu&type=home";
    h.push_plain(
        TOKEN,
        &event_push(
            "oA-1",
            t + 1,
            "view_miniprogram",
            Some(page),
            &[("MenuId", "415")],
        ),
    )
    .await
    .assert_success();

    let events = h.read(Stream::Events).await;
    assert_eq!(events.len(), 4);
    let ids: Vec<&str> = events.iter().map(|(d, _)| d.event_id.as_str()).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_ne!(ids[2], ids[3]);
    let click = &events[0].1;
    assert_eq!(click["type"], "oa.menu.click");
    assert_eq!(
        click["props"],
        json!({"entry": "马上下单", "experiment": "entry_name", "variant": "b"})
    );
    assert_eq!(click["user"], json!({"oa_openid": "oA-1"}));
    assert_eq!(events[0].0.key, "oA-1", "partitioned by the person");
    let view = &events[3].1;
    assert_eq!(
        view["props"],
        json!({"entry": "点单小程序", "target": page})
    );
    assert_eq!(view["source"]["from"], "menu");
    assert_eq!(view["source"]["type"], "home");
    assert!(h.read(Stream::DeadLetter).await.is_empty());
}

#[tokio::test]
async fn safe_mode_pushes_open_with_the_current_and_the_previous_key() {
    let h = start().await;
    let t = unix_now(30);
    let follow = event_push("oA-2", t, "subscribe", Some("qrscene_mp_prompt:home"), &[]);
    let (q, body) = safe_push(TOKEN, &key(KEY), APPID, &follow, "1764000001", "17");
    h.post(&q, body.clone()).await.assert_success();
    h.post(&q, body).await.assert_success();
    // A pusher still on the key being rotated out.
    let result = event_push(
        "oA-2",
        t + 1,
        "TEMPLATESENDJOBFINISH",
        None,
        &[("MsgID", "200163836"), ("Status", "failed:user block")],
    );
    let (q, body) = safe_push(
        TOKEN,
        &key(PREVIOUS_KEY),
        APPID,
        &result,
        "1764000002",
        "18",
    );
    h.post(&q, body).await.assert_success();

    let events = h.read(Stream::Events).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].0.event_id, events[1].0.event_id);
    let follow = &events[0].1;
    assert_eq!(follow["type"], "oa.follow");
    assert_eq!(
        follow["props"],
        json!({"via": "mp_prompt", "qrscene": "mp_prompt:home"})
    );
    let sent = &events[2].1;
    assert_eq!(sent["type"], "oa.template.sent");
    assert_eq!(sent["schema_version"], 2);
    assert_eq!(
        sent["props"],
        json!({"template_id": "TPL_SHIPPED", "purpose": "order_shipped",
               "msg_id": "200163836", "status": "user_block"})
    );
}

#[tokio::test]
async fn the_published_sample_opens_and_its_text_message_is_dead_lettered() {
    // The published worked example: token, AppID and key of the sample, its Encrypt value in
    // full, its msg_signature. A text message, so it is kept as a dead letter, not dropped.
    let encrypt = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
    let sample = WechatConfig {
        appid: Some("wx5823bf96d3bd56c7".into()),
        aes_keys: vec![key("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")],
        ..WechatConfig::new("QDG6eK")
    };
    let h = start_with(Some(sample), LogMode::Working).await;
    let query = "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149&encrypt_type=aes";
    let body = format!(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    );
    h.post(query, body).await.assert_success();
    assert!(h.read(Stream::Events).await.is_empty());
    let dead = h.read(Stream::DeadLetter).await;
    assert_eq!(dead.len(), 1);
    let (record, letter) = &dead[0];
    assert_eq!(record.key, "mycreate");
    assert!(
        letter["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("WeChat push: MsgType text: a user message"),
        "{letter}"
    );
    assert_eq!(letter["event"]["wechat_push"]["Content"], "hello");
    assert_eq!(
        letter["event"]["wechat_push"]["MsgId"],
        "4561255354251345929"
    );
}

// ---------------------------------------------------------------- kept, not dropped

#[tokio::test]
async fn unknown_kinds_are_dead_lettered_with_a_reason_and_scan_is_acknowledged() {
    let h = start().await;
    let t = unix_now(30);
    h.push_plain(
        TOKEN,
        &event_push("oA-3", t, "LOCATION", None, &[("Latitude", "23.137466")]),
    )
    .await
    .assert_success();
    h.push_plain(
        TOKEN,
        &xml(&[
            ("FromUserName", "oA-3"),
            ("CreateTime", &t.to_string()),
            ("MsgType", "text"),
            ("Content", "你好"),
            ("MsgId", "1234567890"),
        ]),
    )
    .await
    .assert_success();
    // An openid the envelope refuses: ingestion's own validation dead-letters it.
    h.push_plain(TOKEN, &event_push("o A", t, "subscribe", None, &[]))
        .await
        .assert_success();
    // SCAN by a follower: acknowledged, nothing logged (documented).
    h.push_plain(TOKEN, &event_push("oA-3", t, "SCAN", Some("store_12"), &[]))
        .await
        .assert_success();

    assert!(h.read(Stream::Events).await.is_empty());
    let dead = h.read(Stream::DeadLetter).await;
    let errors: Vec<&str> = dead
        .iter()
        .map(|(_, v)| v["error"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(
        errors[0],
        "WeChat push: Event LOCATION: no event of the catalogue maps it"
    );
    assert!(
        errors[1].starts_with("WeChat push: MsgType text"),
        "{errors:?}"
    );
    assert!(errors[2].starts_with("user.oa_openid"), "{errors:?}");
    assert_eq!(dead[0].1["event"]["wechat_push"]["Latitude"], "23.137466");
    // Dead letters carry the push's own id, so a replay of them dedupes too.
    assert!(!dead[0].0.event_id.is_empty());
}

// ---------------------------------------------------------------- refused, nothing processed

#[tokio::test]
async fn wrong_signatures_are_401_and_change_nothing() {
    let h = start().await;
    let push = event_push("oA-1", unix_now(5), "subscribe", None, &[]);
    let a = h.push_plain("anotherToken", &push).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.error().starts_with("signature:"), "{}", a.body);
    let a = h.post("timestamp=1&nonce=2", push.clone()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Safe mode: msg_signature over another Encrypt (e.g. a swapped body).
    let (q, _) = safe_push(TOKEN, &key(KEY), APPID, &push, "1764000001", "17");
    let (_, other_body) = safe_push(TOKEN, &key(KEY), APPID, "<xml/>", "1764000001", "17");
    let a = h.post(&q, other_body).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.error().starts_with("msg_signature:"), "{}", a.body);
    let (_, body) = safe_push(TOKEN, &key(KEY), APPID, &push, "1764000001", "17");
    let a = h
        .post("timestamp=1764000001&nonce=17&encrypt_type=aes", body)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    h.assert_log_empty().await;
}

#[tokio::test]
async fn undecryptable_and_foreign_pushes_are_400_and_change_nothing() {
    let h = start().await;
    let push = event_push("oA-1", unix_now(5), "subscribe", None, &[]);

    let (q, body) = safe_push(TOKEN, &key(UNKNOWN_KEY), APPID, &push, "1764000001", "17");
    let a = h.post(&q, body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.error()
            .starts_with("cannot decrypt Encrypt with the current or the previous EncodingAESKey"),
        "{}",
        a.body
    );

    let (q, body) = safe_push(
        TOKEN,
        &key(KEY),
        "wxffffffffffffffff",
        &push,
        "1764000001",
        "17",
    );
    let a = h.post(&q, body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("\"wxffffffffffffffff\""), "{}", a.body);
    assert!(a.error().contains("LIANDONG_WECHAT_APPID"), "{}", a.body);

    for (encrypt, says) in [
        ("not base64!", "not base64"),
        ("AAAA", "expected a non-empty multiple of 32"),
    ] {
        let (q, body) = safe_envelope(TOKEN, encrypt, "1764000001", "17");
        let a = h.post(&q, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{encrypt}");
        assert!(a.error().contains(says), "{encrypt}: {}", a.body);
    }

    // A correctly signed envelope without Encrypt.
    let q = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        plain_query(TOKEN, "1", "2"),
        liandong_wechat::crypto::signature(&[TOKEN, "1", "2", ""])
    );
    let a = h.post(&q, "<xml><ToUserName>gh</ToUserName></xml>").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.error(),
        "malformed push: Encrypt: required in a safe-mode push"
    );

    let a = h
        .post(
            &format!("{}&encrypt_type=des", plain_query(TOKEN, "1", "2")),
            push.clone(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().starts_with("encrypt_type: expected aes or raw"));
    h.assert_log_empty().await;

    // Plaintext mode only: a safe-mode push is refused with a message for the operator.
    let plain_only = start_with(Some(WechatConfig::new(TOKEN)), LogMode::Working).await;
    let (q, body) = safe_push(TOKEN, &key(KEY), APPID, &push, "1764000001", "17");
    let a = plain_only.post(&q, body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("LIANDONG_WECHAT_AES_KEY is not set"));
}

#[tokio::test]
async fn malformed_xml_and_entity_expansion_are_400_and_change_nothing() {
    let h = start().await;
    let lol = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName>&lol9;</FromUserName><CreateTime>1764000000</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>"#;
    for (body, says) in [
        (lol.to_owned(), "DOCTYPE is not allowed"),
        (
            "<xml><FromUserName>&lol9;</FromUserName></xml>".to_owned(),
            "unknown entity &lol9;",
        ),
        (
            "<xml><FromUserName>oA-1</ToUserName></xml>".to_owned(),
            "malformed XML",
        ),
        ("{\"events\": []}".to_owned(), "text outside"),
        (String::new(), "empty body"),
    ] {
        let a = h.push_plain(TOKEN, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(a.error().contains(says), "{body}: {}", a.body);
        assert!(a.error().starts_with("request body is not a WeChat push"));
    }
    // The same inside safe mode: the decrypted message is held to the same rules.
    let (q, body) = safe_push(TOKEN, &key(KEY), APPID, lol, "1764000001", "17");
    let a = h.post(&q, body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.error()
            .contains("decrypted message: DOCTYPE is not allowed"),
        "{}",
        a.body
    );

    // Well-formed, but not identifiable.
    let a = h
        .push_plain(TOKEN, &xml(&[("CreateTime", "1"), ("MsgType", "event")]))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.error(),
        "malformed push: FromUserName: required in every push"
    );
    h.assert_log_empty().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_naming_the_limit() {
    let h = start().await;
    let padding = "x".repeat(liandong_wechat::MAX_BODY_BYTES);
    let push = event_push("oA-1", unix_now(5), "CLICK", Some(&padding), &[]);
    let a = h.push_plain(TOKEN, &push).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.error(),
        "request body too large: the limit is 65536 bytes (64 KiB)"
    );
    // Far beyond the limit: still a 413 (the rest is not read), and the server lives on.
    let huge = "x".repeat(16 * liandong_wechat::MAX_BODY_BYTES);
    let r = h
        .client
        .post(format!(
            "{}?{}",
            h.url,
            plain_query(TOKEN, "1764000000", "991")
        ))
        .body(huge)
        .send()
        .await;
    // The server may close before the client has sent everything: a reset is fine too.
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // The limit is inclusive: a push padded (with a comment) to exactly 64 KiB goes through.
    let push = event_push("oA-1", unix_now(5), "unsubscribe", None, &[]);
    let room = liandong_wechat::MAX_BODY_BYTES - push.len() - "<!---->".len();
    let at_limit = format!("{push}<!--{}-->", "x".repeat(room));
    assert_eq!(at_limit.len(), liandong_wechat::MAX_BODY_BYTES);
    h.push_plain(TOKEN, &at_limit).await.assert_success();
    assert_eq!(h.read(Stream::Events).await.len(), 1);
}

// ---------------------------------------------------------------- when the log says no

#[tokio::test]
async fn a_log_that_does_not_answer_in_time_gets_503_so_wechat_retries() {
    let h = start_with(Some(config()), LogMode::Hanging).await;
    let push = event_push("oA-1", unix_now(5), "subscribe", None, &[]);
    let started = std::time::Instant::now();
    let a = h.push_plain(TOKEN, &push).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        a.error().contains("did not confirm the push within 300ms"),
        "{}",
        a.body
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let h = start_with(Some(config()), LogMode::Unavailable).await;
    let a = h.push_plain(TOKEN, &push).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.retry_after.as_deref(), Some("2"));
}
