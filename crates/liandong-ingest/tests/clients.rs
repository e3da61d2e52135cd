//! The ways in for clients, over real HTTP against the ingestion router (an embedded log in a
//! temporary directory, identities in a temporary SQLite file): what a `client` key may send,
//! the per-key rate limit, the Sensors Data–compatible intake (`/sa`, `/sa.gif`) and the
//! beacon endpoint. Where accepted events and dead letters end up is read back from the log.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use liandong_auth::ApiKeys;
use liandong_event::Schemas;
use liandong_identity::IdentityService;
use liandong_ingest::{router, IngestState, RateLimit};
use liandong_log::{EmbeddedLog, EventLog, Stream};
use liandong_vault::{DataKeys, MasterKey, Vault};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::sqlite::SqlitePoolOptions;

const INGEST_KEY: &str = "ingest-key-0123456789";
const CLIENT_KEY: &str = "client-key-0123456789";
const ANALYST_KEY: &str = "analyst-key-0123456789";

struct Harness {
    base: String,
    http: reqwest::Client,
    log: Arc<EmbeddedLog>,
    _dir: tempfile::TempDir,
}

async fn start(limit: RateLimit) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("embedded log");
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("identity.db").display()
        ))
        .await
        .expect("sqlite");
    let identity = IdentityService::sqlite(pool).await.expect("identity");
    let keys = ApiKeys::parse(&format!(
        "ingest:{INGEST_KEY},client:{CLIENT_KEY},analyst:{ANALYST_KEY}"
    ))
    .expect("keys");
    let store = liandong_store::ReadStore::connect(&format!(
        "sqlite://{}",
        dir.path().join("read.db").display()
    ))
    .await
    .expect("read store");
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    liandong_projections::migrate(&store)
        .await
        .expect("read store tables");
    liandong_vault::migrate(&store, &vault)
        .await
        .expect("vault tables");
    let state = IngestState::new(
        Arc::new(Schemas::load().expect("schemas")),
        log.clone(),
        identity,
        Arc::new(keys),
        DataKeys::new(store, vault),
    )
    .with_rate_limit(limit);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Harness {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        log,
        _dir: dir,
    }
}

fn generous() -> RateLimit {
    RateLimit::parse("1000/s").unwrap()
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        headers,
        body,
    }
}

impl Harness {
    async fn events(&self, key: &str, events: Vec<Value>) -> Answer {
        let resp = self
            .http
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .expect("request");
        answer(resp).await
    }

    async fn post_sa(&self, path_and_query: &str, body: String) -> Answer {
        let resp = self
            .http
            .post(format!("{}{path_and_query}", self.base))
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .expect("request");
        answer(resp).await
    }

    async fn get(&self, path_and_query: &str) -> Answer {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .expect("request");
        answer(resp).await
    }

    async fn read(&self, stream: Stream) -> Vec<Value> {
        let end = self.log.end_offsets(stream).await.expect("end offsets")[0].1;
        let mut consumer = self.log.consumer("t", stream).await.expect("consumer");
        let mut out = Vec::new();
        while (out.len() as i64) < end {
            let got = consumer
                .poll(10_000, Duration::from_millis(200))
                .await
                .expect("poll");
            assert!(!got.is_empty(), "log ends early");
            out.extend(
                got.into_iter()
                    .map(|d| serde_json::from_slice::<Value>(&d.payload).expect("JSON")),
            );
        }
        out
    }
}

fn ev(ty: &str, user: Value, props: Value) -> Value {
    json!({"event_id": uuid::Uuid::new_v4().to_string(), "type": ty,
           "occurred_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
           "user": user, "props": props})
}

#[tokio::test]
async fn a_client_key_sends_what_a_client_sees_and_nothing_else() {
    let h = start(generous()).await;
    let mp = json!({"mp_openid": "o_client_1"});
    let events = vec![
        ev("mp.visit", mp.clone(), json!({"page": "pages/index/index"})),
        ev(
            "order.paid",
            mp.clone(),
            json!({"order_id": "A1", "amount_fen": 100}),
        ),
        ev("member.erased", mp.clone(), json!({})),
        ev(
            "mp.page_view",
            json!({"mp_openid": "o_client_1", "unionid": "u_client_1"}),
            json!({"page": "p"}),
        ),
        ev(
            "oa.article.read",
            json!({"oa_openid": "oa_client_1"}),
            json!({"article_id": "A"}),
        ),
        ev("coupon.claimed", mp.clone(), json!({"coupon_id": "C"})),
    ];
    let a = h.events(CLIENT_KEY, events.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["accepted"], 2, "{}", a.body);
    let rejected = a.body["rejected"].as_array().unwrap();
    assert_eq!(
        rejected
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_u64()))
            .collect::<Vec<_>>(),
        vec![
            (1, Some(403)),
            (2, Some(403)),
            (3, Some(403)),
            (5, Some(403))
        ]
    );
    assert!(rejected[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("type: a client key may not send \"order.paid\""));
    assert!(rejected[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("user.unionid: a client key may not send a unionid"));

    // The refused events are in the dead-letter stream, with the reason and the 403; nothing
    // of them reached the events stream (the erasure did not happen, the unionid bound nothing).
    let dead = h.read(Stream::DeadLetter).await;
    assert_eq!(dead.len(), 4);
    assert!(dead.iter().all(|d| d["status"] == 403), "{dead:?}");
    assert_eq!(dead[1]["event"]["type"], "member.erased");
    let stored: Vec<String> = h
        .read(Stream::Events)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, vec!["mp.visit", "oa.article.read"]);

    // The same batch from an ingest key (the merchant's server) is taken whole.
    let a = h.events(INGEST_KEY, events[..2].to_vec()).await;
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    // An analyst key sends nothing.
    let a = h.events(ANALYST_KEY, events[..1].to_vec()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    let h = start(RateLimit::parse("1/s,burst=3").unwrap()).await;
    let visit = || {
        vec![ev(
            "mp.visit",
            json!({"mp_openid": "o_rate"}),
            json!({"page": "p"}),
        )]
    };
    for _ in 0..3 {
        assert_eq!(h.events(CLIENT_KEY, visit()).await.status, StatusCode::OK);
    }
    let a = h.events(CLIENT_KEY, visit()).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.headers["retry-after"], "1");
    assert!(a.body["error"]
        .as_str()
        .unwrap()
        .contains("1 requests per second"));
    // The Sensors intake spends the same key's budget.
    let a = h.get(&format!("/sa?token={CLIENT_KEY}&data=e30")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // Another key is not affected.
    assert_eq!(h.events(INGEST_KEY, visit()).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.events(CLIENT_KEY, visit()).await.status, StatusCode::OK);
}

/// A record as sa-sdk-miniprogram builds it.
fn record(event: &str, time: i64, properties: Value) -> Value {
    json!({
        "distinct_id": "o_sa_http", "type": "track", "event": event, "time": time,
        "_track_id": time % 1_000_000, "_flush_time": time + 5,
        "identities": {"$identity_mp_id": "0c9f", "$identity_mp_openid": "o_sa_http"},
        "lib": {"$lib": "MiniProgram", "$lib_method": "code", "$lib_version": "1.22.7"},
        "properties": properties
    })
}

fn form(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn the_sensors_intake_maps_dedups_and_dead_letters() {
    let h = start(generous()).await;
    let t = Utc::now().timestamp_millis() - 60_000;
    let landing = json!({"$scene": "wx-1035", "$url_path": "pages/index/index",
                         "$url_query": "from=menu&type=home", "$lib": "MiniProgram"});
    let records = json!([
        record("$MPLaunch", t, landing.clone()),
        record("$MPShow", t + 1, landing),
        record(
            "$MPViewScreen",
            t + 2,
            json!({"$url_path": "pages/item/index", "$title": "商品"})
        ),
        record(
            "mp_follow_prompt_click",
            t + 3,
            json!({"placement": "home", "$latest_scene": "wx-1035"})
        ),
        record("BuyButtonClick", t + 4, json!({})),
        record("$MPHide", t + 5, json!({})),
    ]);
    let body = format!("data_list={}", form(&STANDARD.encode(records.to_string())));
    let path = format!("/sa?project=shop&token={CLIENT_KEY}");
    let a = h.post_sa(&path, body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["accepted"], 4);
    let reasons: Vec<&str> = a.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].starts_with("sensors record 4: event \"BuyButtonClick\" is not a type"));
    assert!(reasons[1].starts_with("sensors record 5: $MPHide"));

    let events = h.read(Stream::Events).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "mp.visit",
            "mp.visit",
            "mp.page_view",
            "mp.follow_prompt.click"
        ]
    );
    assert_eq!(
        events[0]["event_id"], events[1]["event_id"],
        "the show of a cold start is the launch's landing"
    );
    assert_eq!(events[0]["scene"], 1035);
    assert_eq!(events[0]["source"]["from"], "menu");
    assert_eq!(events[0]["user"]["mp_openid"], "o_sa_http");
    assert_eq!(events[2]["props"]["page"], "pages/item/index");
    assert_eq!(events[3]["props"]["placement"], "home");
    assert_eq!(events[0]["context"]["sensors"]["project"], "shop");
    let dead = h.read(Stream::DeadLetter).await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["event"]["event"], "BuyButtonClick");

    // The SDK resends after a timeout (a new _flush_time): the same ids.
    let mut resent = records.clone();
    for r in resent.as_array_mut().unwrap() {
        r["_flush_time"] = json!(t + 9_999);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(resent.to_string().as_bytes()).unwrap();
    let gz = STANDARD.encode(gz.finish().unwrap());
    // gzip=1 as the SDK's gzip plugin sends it, on /sa.gif this time, by GET.
    let a = h
        .get(&format!(
            "/sa.gif?project=shop&token={CLIENT_KEY}&gzip=1&data_list={}",
            form(&gz)
        ))
        .await;
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (StatusCode::OK, Some(4))
    );
    let again = h.read(Stream::Events).await;
    let ids = |es: &[Value]| es.iter().map(|e| e["event_id"].clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&again[4..]),
        ids(&events),
        "a resend carries the same event ids"
    );

    // A unionid from a client key is refused, as on POST /v1/events.
    let mut bound = record("$MPViewScreen", t + 6, json!({"$url_path": "p"}));
    bound["identities"]["$identity_mp_unionid"] = json!("u_sa");
    let a = h
        .get(&format!(
            "/sa?token={CLIENT_KEY}&data={}",
            form(&STANDARD.encode(bound.to_string()))
        ))
        .await;
    assert_eq!(a.body["rejected"][0]["status"], 403, "{}", a.body);
}

#[tokio::test]
async fn the_sensors_intake_refuses_bad_requests_by_name() {
    let h = start(generous()).await;
    let a = h.get("/sa?data=e30").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body["error"].as_str().unwrap().contains("token"));
    let a = h.get(&format!("/sa?token={ANALYST_KEY}&data=e30")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    for (query, starts) in [
        ("project=shop", "data: missing"),
        ("data=%21%21", "data: expected base64"),
        (
            "data_list=bm90IGpzb24",
            "data_list: expected base64 of JSON records, but it is not JSON",
        ),
        ("data=e30&gzip=7", "gzip: expected 0 or 1"),
        (
            "data=e30&project=no%20spaces",
            "project: expected a Sensors project name",
        ),
    ] {
        let a = h.get(&format!("/sa?token={CLIENT_KEY}&{query}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.body);
        let error = a.body["error"].as_str().unwrap();
        assert!(error.starts_with(starts), "{query}: {error}");
    }

    // A gzip bomb: 100 MiB of zeros, about 100 KiB compressed. 413, without expanding it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = STANDARD.encode(gz.finish().unwrap());
    let a = h
        .post_sa(
            &format!("/sa?token={CLIENT_KEY}"),
            format!("gzip=1&data_list={}", form(&bomb)),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert!(a.body["error"]
        .as_str()
        .unwrap()
        .starts_with("data_list: the decompressed data is larger than the limit"));
}

#[tokio::test]
async fn a_beacon_carries_the_key_in_the_url() {
    let h = start(generous()).await;
    let batch = json!({"events": [ev("oa.article.read", json!({"oa_openid": "oa_beacon"}), json!({"article_id": "A"}))]});
    let post = |query: String, ct: &'static str| {
        h.http
            .post(format!("{}/v1/beacon{query}", h.base))
            .header("content-type", ct)
            .body(batch.to_string())
            .send()
    };
    let a = answer(
        post(format!("?token={CLIENT_KEY}"), "text/plain;charset=UTF-8")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{}",
        a.body
    );
    let a = answer(post(String::new(), "text/plain").await.unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = answer(
        post(format!("?token={CLIENT_KEY}"), "image/png")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["error"].as_str().unwrap().contains("beacon"));
}
