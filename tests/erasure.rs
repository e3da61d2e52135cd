//! Erasure end to end (issue 6, "Done when"), on the embedded SQLite store and on PostgreSQL:
//! `liandong serve` takes a member's events — several types, OA and MP openids bound to a
//! unionid late, profile updates with phone and address — and other members' traffic; an admin
//! erases the member through `POST /v1/members/{member_key}/erase`; the member's apps keep
//! sending events about it, which change nothing; `liandong rebuild` empties
//! every projection and `serve` rebuilds them from the start of the log. Then every table and
//! view of the read store (enumerated from the catalog, every column cast to text) is searched
//! for each of the member's identifiers and personal values: nothing is found. The other members
//! are all there, and the member's sealed values in the log no longer open while another
//! member's still do. Only an admin key may erase.

use std::path::Path;
use std::time::Duration;

use liandong::{Config, Role};
use liandong_event::Event;
use liandong_log::{EmbeddedLog, EventLog, Stream};
use liandong_projections::read;
use liandong_store::ReadStore;
use liandong_testkit::{catalog, reference, scenario, server, TestStore, TEST_MASTER_KEY};
use liandong_vault::{DataKeys, MasterKey, Purpose, Vault};
use serde_json::{json, Value};

const INGEST: &str = "erase-ingest-key-0123456789";
const ANALYST: &str = "erase-analyst-key-0123456789";
const SUPPORT: &str = "erase-support-key-0123456789";
const ADMIN: &str = "erase-admin-key-0123456789";

// The member to erase; distinctive, so that finding one cannot be a coincidence.
const UNIONID: &str = "uERASEDe2eunion01";
const OA: &str = "oERASEDe2eoaopenid01";
const MP: &str = "oERASEDe2empopenid01";
const PHONE: &str = "13912340001";
const PHONE_BEFORE_BINDING: &str = "13800007777";
const ADDRESS: &str = "上海市静安区删除路88号";
/// Another member's personal data: still there, still readable.
const KEPT_UNIONID: &str = "uKEPTe2eunion01";
const KEPT_PHONE: &str = "13711112222";

fn ev(n: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-b000-{n:012}"), "type": ty,
           "occurred_at": at, "user": user, "props": props})
}

fn member_events() -> Vec<Value> {
    let mut visit = ev(
        1,
        "mp.visit",
        "2026-10-03T10:00:00+08:00",
        json!({"mp_openid": MP}),
        json!({"page": "pages/index/index"}),
    );
    visit["source"] = json!("from=menu&type=home");
    vec![
        visit,
        ev(
            2,
            "member.profile_updated",
            "2026-10-03T10:01:00+08:00",
            json!({"mp_openid": MP}),
            json!({"phone": PHONE_BEFORE_BINDING}),
        ),
        ev(
            3,
            "order.paid",
            "2026-10-04T09:00:00+08:00",
            json!({"mp_openid": MP}),
            json!({"order_id": "E2E-ERASED-1", "amount_fen": 1800}),
        ),
        ev(
            4,
            "oa.follow",
            "2026-10-03T10:10:00+08:00",
            json!({"oa_openid": OA}),
            json!({"via": "mp_prompt"}),
        ),
        ev(
            5,
            "oa.menu.exposure",
            "2026-10-05T12:00:00+08:00",
            json!({"oa_openid": OA}),
            json!({"entry": "立即点餐", "experiment": "entry_name", "variant": "control"}),
        ),
        ev(
            6,
            "member.identified",
            "2026-10-20T00:00:00+08:00",
            json!({"unionid": UNIONID, "oa_openid": OA, "mp_openid": MP}),
            json!({}),
        ),
        ev(
            7,
            "member.profile_updated",
            "2026-10-21T00:00:00+08:00",
            json!({"unionid": UNIONID}),
            json!({"phone": PHONE, "address": ADDRESS, "level": "gold"}),
        ),
        ev(
            8,
            "coupon.claimed",
            "2026-10-22T00:00:00+08:00",
            json!({"unionid": UNIONID, "mp_openid": MP}),
            json!({"coupon_id": "c1"}),
        ),
    ]
}

/// Events about the member after its erasure (its apps do not know).
fn late_events() -> Vec<Value> {
    vec![
        ev(
            20,
            "mp.visit",
            "2026-10-26T10:00:00+08:00",
            json!({"mp_openid": MP}),
            json!({"page": "pages/index/index"}),
        ),
        ev(
            21,
            "order.paid",
            "2026-10-26T11:00:00+08:00",
            json!({"unionid": UNIONID, "mp_openid": MP}),
            json!({"order_id": "E2E-ERASED-2", "amount_fen": 100}),
        ),
        ev(
            22,
            "oa.menu.click",
            "2026-10-26T12:00:00+08:00",
            json!({"oa_openid": OA}),
            json!({"entry": "立即点餐"}),
        ),
    ]
}

fn kept_member_events() -> Vec<Value> {
    vec![ev(
        50,
        "member.profile_updated",
        "2026-10-21T00:00:00+08:00",
        json!({"unionid": KEPT_UNIONID, "mp_openid": "oKEPTe2emp01"}),
        json!({"phone": KEPT_PHONE}),
    )]
}

fn others() -> Vec<Value> {
    let mut wire = scenario::events(&scenario::Shape {
        seed: 23,
        members: 25,
        events_per_member: 10,
        ..Default::default()
    });
    wire.extend(kept_member_events());
    wire
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, events: &[Value]) {
        for chunk in events.chunks(200) {
            server::post_events(&self.http, &self.base, INGEST, chunk).await;
        }
    }

    async fn erase(&self, key: Option<&str>, member_key: &str) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/members/{member_key}/erase", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.expect("the API answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every projection is at the end of the log.
    async fn caught_up(&self) {
        server::wait_caught_up(&self.http, &self.base, ADMIN, Duration::from_secs(120)).await;
    }
}

fn config(data_dir: &Path, database_url: Option<&str>) -> Config {
    let keys = format!("ingest:{INGEST},analyst:{ANALYST},support:{SUPPORT},admin:{ADMIN}");
    Config::from_lookup(|name| match name {
        "LIANDONG_DATA_DIR" => Some(data_dir.display().to_string()),
        "LIANDONG_LISTEN" => Some("127.0.0.1:0".into()),
        "LIANDONG_API_KEYS" => Some(keys.clone()),
        "LIANDONG_MASTER_KEY" => Some(TEST_MASTER_KEY.into()),
        "LIANDONG_DATABASE_URL" => database_url.map(str::to_owned),
        _ => None,
    })
    .expect("a valid configuration")
}

/// Every sealed value in the log, by the event's identifiers.
async fn sealed_values(log_dir: &Path) -> Vec<(Event, String)> {
    let log = EmbeddedLog::open(log_dir).expect("the embedded log opens");
    let mut consumer = log
        .consumer("erasure-test", Stream::Events)
        .await
        .expect("a consumer");
    let end: i64 = log
        .end_offsets(Stream::Events)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e)
        .sum();
    let mut out = Vec::new();
    let mut read = 0;
    while read < end {
        let batch = consumer
            .poll(1000, Duration::from_secs(1))
            .await
            .expect("the log reads");
        assert!(!batch.is_empty(), "the log ends early");
        read += batch.len() as i64;
        for rec in batch {
            let e: Event = serde_json::from_slice(&rec.payload).expect("an event");
            for v in e.sealed.values() {
                out.push((e.clone(), v.clone()));
            }
        }
    }
    out
}

async fn erase_rebuild_search(db_url: Option<&str>, store_of: impl Fn(&Config) -> String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data_dir = dir.path().join("data");
    let cfg = config(&data_dir, db_url);
    let url = store_of(&cfg);
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("liandong serve starts");
    let api = Api {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
    };
    let others = others();
    api.send(&others).await;
    api.send(&member_events()).await;
    api.caught_up().await;

    let store = ReadStore::connect(&url)
        .await
        .expect("the read store opens");
    let identifiers = [UNIONID, OA, MP];
    let personal = [PHONE, PHONE_BEFORE_BINDING, ADDRESS];
    let before = catalog::find(&store, &identifiers).await;
    assert!(
        before.iter().any(|(r, _, _)| r == "member_profile")
            && before.iter().any(|(r, _, _)| r == "identity_events"),
        "the search sees the member before its erasure: {before:?}"
    );

    // Only an admin erases.
    assert_eq!(api.erase(None, UNIONID).await.0, 401);
    for key in [INGEST, ANALYST, SUPPORT] {
        assert_eq!(api.erase(Some(key), UNIONID).await.0, 403, "{key}");
    }
    assert_eq!(api.erase(Some(ADMIN), "uNOSUCHmember").await.0, 404);
    let (status, body) = api.erase(Some(ADMIN), UNIONID).await;
    assert_eq!(status, 202, "{body}");
    let event_id = body["event_id"].as_str().expect("the event id").to_owned();
    uuid::Uuid::parse_str(&event_id).expect("a UUID");
    api.caught_up().await;
    // The member's apps keep sending: accepted, and skipped by everything after the log.
    api.send(&late_events()).await;
    api.caught_up().await;
    let found = catalog::find(&store, &identifiers).await;
    assert!(found.is_empty(), "after the erasure: {found:#?}");
    let (status, again) = api.erase(Some(ADMIN), UNIONID).await;
    assert_eq!(status, 202, "erasing twice is fine: {again}");
    assert_ne!(again["event_id"], body["event_id"]);
    api.caught_up().await;
    let gone = api
        .http
        .get(format!("{}/v1/members/{UNIONID}", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // The audit trail names the erasures by a keyed hash only.
    let vault = Vault::new(MasterKey::parse_base64(TEST_MASTER_KEY).unwrap());
    let audit: Value = api
        .http
        .get(format!("{}/v1/audit", api.base))
        .query(&[("member", UNIONID)])
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let erasures: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("audit entries")
        .iter()
        .filter(|e| e["action"] == "member.erase")
        .collect();
    assert_eq!(erasures.len(), 2, "{audit}");
    assert!(erasures
        .iter()
        .all(|e| e["member_ref"] == vault.keyed_hash(Purpose::Audit, UNIONID)));

    // Rebuild every projection from the start of the log, as an operator does.
    running.stop().await.expect("liandong stops");
    let cfg = config(&data_dir, db_url);
    let rebuilt = liandong::rebuild::rebuild(&cfg, &[])
        .await
        .expect("rebuild");
    assert!(
        rebuilt.iter().any(|(name, _, _)| name == "core"),
        "{rebuilt:?}"
    );
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("liandong serve starts again");
    let api = Api {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
    };
    api.caught_up().await;

    // Nothing anywhere: every table and view, every column.
    let relations = catalog::relations(&store).await;
    assert!(relations.len() > 20, "{relations:?}");
    let mut needles: Vec<&str> = identifiers.to_vec();
    needles.extend(personal);
    let found = catalog::find(&store, &needles).await;
    assert!(
        found.is_empty(),
        "the erased member is still in the read store: {found:#?}"
    );

    // The others are all there, as the reference computes them from their events.
    let (_, want_profiles) = reference::compute(
        &liandong_testkit::validated(&others),
        chrono_tz::Asia::Shanghai,
    );
    assert_eq!(read::member_profiles(&store).await.unwrap(), want_profiles);
    assert!(!catalog::find(&store, &[KEPT_UNIONID]).await.is_empty());
    running.stop().await.expect("liandong stops");

    // The log keeps the member's sealed values, and they no longer open; another member's do.
    let data_keys = DataKeys::new(
        store.clone(),
        std::sync::Arc::new(Vault::new(
            MasterKey::parse_base64(TEST_MASTER_KEY).unwrap(),
        )),
    );
    let sealed = sealed_values(&data_dir.join("log")).await;
    let (mut erased, mut kept) = (0, 0);
    for (e, value) in &sealed {
        let user = &e.user;
        let ids = [&user.unionid, &user.oa_openid, &user.mp_openid];
        let opened = data_keys
            .open(value)
            .await
            .expect("the data key store answers");
        if ids
            .iter()
            .any(|i| i.as_deref().is_some_and(|i| identifiers.contains(&i)))
        {
            erased += 1;
            assert_eq!(
                opened, None,
                "a sealed value of the erased member still opens"
            );
        } else if user.unionid.as_deref() == Some(KEPT_UNIONID) {
            kept += 1;
            assert_eq!(opened.as_deref(), Some(KEPT_PHONE));
        }
    }
    assert_eq!(
        (erased, kept),
        (3, 1),
        "the log holds the member's three sealed values and the other member's one"
    );
    // Not even the ciphertexts stay in the read store; the other member's does.
    let (mine, theirs): (Vec<_>, Vec<_>) = sealed
        .iter()
        .partition(|(e, _)| e.user.unionid.as_deref() != Some(KEPT_UNIONID));
    let mine: Vec<&str> = mine.iter().map(|(_, v)| v.as_str()).collect();
    let found = catalog::find(&store, &mine).await;
    assert!(found.is_empty(), "{found:#?}");
    assert!(!catalog::find(&store, &[theirs[0].1.as_str()])
        .await
        .is_empty());
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    erase_rebuild_search(None, |cfg| cfg.database_url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let url = db.url().to_owned();
    erase_rebuild_search(Some(&url), |_| url.clone()).await;
    drop(db);
}
