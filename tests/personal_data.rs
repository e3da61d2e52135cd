//! Done when (issue 6): no plaintext phone or address anywhere in the read store after members
//! update them. Profile updates go through the real `POST /v1/events` of `liandong serve`
//! (in-process, the embedded log, the read store on PostgreSQL and on SQLite); once the
//! projector has caught up, every relation of the read store — enumerated from the database's
//! own catalog, every column cast to text — is searched for each phone and address and for a
//! distinctive piece of each; so are the embedded log's files on disk, the SQLite files, and
//! the dead-letter stream. Admin reads the values back in full, support masked, analyst not at
//! all; once the member's data key is destroyed they read as `null` with `key_destroyed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use liandong::{Config, Role};
use liandong_log::{EmbeddedLog, EventLog, Stream};
use liandong_testkit::{catalog, on_both_stores, server, TestStore};
use liandong_vault::{DataKeys, MasterKey, Vault};
use serde_json::{json, Value};

const INGEST: &str = "pd-ingest-key-0123456789";
const ANALYST: &str = "pd-analyst-key-0123456789";
const SUPPORT: &str = "pd-support-key-0123456789";
const ADMIN: &str = "pd-admin-key-0123456789";

const UNIONID: &str = "uPDalice0001";
const MP: &str = "oPDaliceMp0001";
const OA_ONLY: &str = "oPDbobOa0001";

/// Alice's current phone and address (her latest update).
const PHONE: &str = "13987651234";
const ADDRESS: &str = "上海市徐汇区漕溪北路1288号";
/// What she gave before: superseded, and still never stored in plaintext.
const OLD_PHONE: &str = "13911112222";
const OLD_ADDRESS: &str = "上海市静安区南京西路666号";
/// Bob, known by his OA openid alone.
const BOB_PHONE: &str = "13755556666";
const BOB_ADDRESS: &str = "北京市朝阳区建国路93号";
/// Sent in an event that is rejected: it goes to the dead-letter stream, redacted.
const REJECTED_PHONE: &str = "13600007777";
const REJECTED_ADDRESS: &str = "广州市天河区体育西路55号";

/// Every value, and a distinctive piece of each (a value cut or re-encoded must not slip by).
const SECRETS: [&str; 16] = [
    PHONE,
    ADDRESS,
    OLD_PHONE,
    OLD_ADDRESS,
    BOB_PHONE,
    BOB_ADDRESS,
    REJECTED_PHONE,
    REJECTED_ADDRESS,
    "87651234",
    "漕溪北路1288",
    "11112222",
    "南京西路666",
    "55556666",
    "建国路93",
    "00007777",
    "体育西路55",
];

fn ev(n: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("6f1c1a9e-2f7a-4d38-9a43-{n:012}"), "type": ty,
           "occurred_at": at, "user": user, "props": props})
}

fn traffic() -> Vec<Value> {
    vec![
        ev(
            1,
            "mp.visit",
            "2026-11-20T10:00:00+08:00",
            json!({"mp_openid": MP}),
            json!({"page": "pages/index/index"}),
        ),
        // Alice's first details, under her MP openid (not yet bound).
        ev(
            2,
            "member.profile_updated",
            "2026-11-20T10:01:00+08:00",
            json!({"mp_openid": MP}),
            json!({"phone": OLD_PHONE, "address": OLD_ADDRESS, "level": "silver"}),
        ),
        // She logs in: her openid binds to her unionid (the earlier update moves with it).
        ev(
            3,
            "member.identified",
            "2026-11-21T09:00:00+08:00",
            json!({"unionid": UNIONID, "mp_openid": MP}),
            json!({}),
        ),
        ev(
            4,
            "member.profile_updated",
            "2026-11-22T09:00:00+08:00",
            json!({"unionid": UNIONID, "mp_openid": MP}),
            json!({"phone": PHONE, "address": ADDRESS, "level": "gold"}),
        ),
        ev(
            5,
            "member.profile_updated",
            "2026-11-20T08:00:00+08:00",
            json!({"oa_openid": OA_ONLY}),
            json!({"phone": BOB_PHONE, "address": BOB_ADDRESS}),
        ),
        // Invalid (`level` must be a string or an integer): rejected with its personal data.
        ev(
            6,
            "member.profile_updated",
            "2026-11-20T08:00:00+08:00",
            json!({"oa_openid": OA_ONLY}),
            json!({"phone": REJECTED_PHONE, "address": REJECTED_ADDRESS, "level": {"x": 1}}),
        ),
    ]
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The secrets found in the bytes of `files`, with the file.
fn secrets_in_files(files: &[PathBuf]) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).expect("read a file");
        for secret in SECRETS {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push((path.display().to_string(), secret));
            }
        }
    }
    found
}

struct Server {
    running: liandong::Running,
    base: String,
    client: reqwest::Client,
}

async fn serve(data_dir: &Path, db: &TestStore) -> Server {
    let settings: BTreeMap<&str, String> = [
        ("LIANDONG_DATA_DIR", data_dir.display().to_string()),
        ("LIANDONG_DATABASE_URL", db.url().to_owned()),
        ("LIANDONG_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "LIANDONG_API_KEYS",
            format!("ingest:{INGEST},analyst:{ANALYST},support:{SUPPORT},admin:{ADMIN}"),
        ),
    ]
    .into_iter()
    .collect();
    let cfg = Config::from_lookup(|k| settings.get(k).cloned()).expect("config");
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("serve starts");
    Server {
        base: format!("http://{}", running.addr),
        running,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("the API answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn caught_up(&self) {
        server::wait_caught_up(&self.client, &self.base, ADMIN, Duration::from_secs(60)).await;
    }

    async fn personal(&self, member_key: &str, key: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/members/{member_key}"), key).await;
        assert_eq!(status, 200, "{body}");
        body["personal"].clone()
    }
}

async fn no_plaintext_personal_data_anywhere(db: &TestStore) {
    let dir = tempfile::tempdir().expect("a data folder");
    let server = serve(dir.path(), db).await;
    // No LIANDONG_MASTER_KEY: serve made one, readable only by its owner.
    let key_file = dir.path().join("master-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("serve created the master key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let answer: Value = server
        .client
        .post(format!("{}/v1/events", server.base))
        .bearer_auth(INGEST)
        .json(&json!({"events": traffic()}))
        .send()
        .await
        .expect("ingestion answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["accepted"], 5, "{answer}");
    assert_eq!(answer["rejected"][0]["index"], 5, "{answer}");
    server.caught_up().await;

    // Every relation of the read store, from its catalog.
    let relations = catalog::relations(db.store()).await;
    for must in [
        "member_personal",
        "fact_personal",
        "events",
        "liandong_data_keys",
    ] {
        assert!(
            relations.iter().any(|r| r.name == must),
            "{must}: {relations:?}"
        );
    }
    let found = catalog::find(db.store(), &SECRETS).await;
    assert!(found.is_empty(), "plaintext in the read store: {found:#?}");
    // The search sees what is there: the members and their sealed values.
    assert!(!catalog::find(db.store(), &[UNIONID, OA_ONLY, "ld1:"])
        .await
        .is_empty());
    // The embedded store's files too (free pages, the write-ahead log).
    if let Some(path) = db.url().strip_prefix("sqlite://") {
        let folder = Path::new(path).parent().expect("the SQLite folder");
        let found = secrets_in_files(&files_under(folder));
        assert!(found.is_empty(), "plaintext in the SQLite files: {found:?}");
    }

    // Admin reads them; support sees them masked; an analyst cannot ask.
    let admin = server.personal(UNIONID, ADMIN).await;
    assert_eq!(admin["phone"], PHONE, "{admin}");
    assert_eq!(admin["address"], ADDRESS, "{admin}");
    assert_eq!(
        (admin["masked"].clone(), admin["key_destroyed"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(admin["updated_at"], "2026-11-22T01:00:00.000000Z");
    let support = server.personal(UNIONID, SUPPORT).await;
    assert_eq!(support["phone"], "139****1234", "{support}");
    assert_eq!(support["address"], "上海市****", "{support}");
    assert_eq!(support["masked"], true);
    let bob = server.personal(&format!("oa:{OA_ONLY}"), ADMIN).await;
    assert_eq!(
        (bob["phone"].as_str(), bob["address"].as_str()),
        (Some(BOB_PHONE), Some(BOB_ADDRESS))
    );
    let (status, _) = server.get(&format!("/v1/members/{UNIONID}"), ANALYST).await;
    assert_eq!(status, 403);
    let (status, _) = server.get(&format!("/v1/members/{UNIONID}"), INGEST).await;
    assert_eq!(status, 403);
    server.running.stop().await.expect("a clean stop");

    // The log on disk and the dead-letter stream hold no plaintext either.
    let log_dir = dir.path().join("log");
    let found = secrets_in_files(&files_under(&log_dir));
    assert!(found.is_empty(), "plaintext in the log files: {found:?}");
    let log = EmbeddedLog::open(&log_dir).expect("the embedded log");
    let mut letters = log
        .consumer("personal-data-test", Stream::DeadLetter)
        .await
        .expect("a consumer")
        .poll(100, Duration::from_secs(2))
        .await
        .expect("poll");
    assert_eq!(letters.len(), 1);
    let letter: Value = serde_json::from_slice(&letters.remove(0).payload).expect("JSON");
    assert_eq!(letter["event"]["props"]["phone"], "[redacted]", "{letter}");
    assert_eq!(
        letter["event"]["props"]["address"], "[redacted]",
        "{letter}"
    );
    drop(log);

    // Crypto-shredding: with Alice's data keys destroyed (as an erasure does), a fresh process
    // reads her values as null and says why; Bob's are untouched.
    let master = std::fs::read_to_string(&key_file).expect("the master key file");
    let master = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("a key line");
    let vault = std::sync::Arc::new(Vault::new(MasterKey::parse_base64(master).expect("base64")));
    let keys = DataKeys::new(db.store().clone(), vault);
    assert_eq!(keys.destroy(&[UNIONID, MP]).await.expect("destroy"), 2);
    let server = serve(dir.path(), db).await;
    let gone = server.personal(UNIONID, ADMIN).await;
    assert_eq!(
        (
            gone["phone"].clone(),
            gone["address"].clone(),
            gone["key_destroyed"].clone()
        ),
        (Value::Null, Value::Null, json!(true)),
        "{gone}"
    );
    let bob = server.personal(&format!("oa:{OA_ONLY}"), SUPPORT).await;
    assert_eq!(
        (bob["phone"].as_str(), bob["key_destroyed"].as_bool()),
        (Some("137****6666"), Some(false))
    );
    server.running.stop().await.expect("a clean stop");
}
on_both_stores!(no_plaintext_personal_data_anywhere);
