//! A sender's `member.erased` through `POST /v1/events` (EVENTS.md allows it) does what the
//! admin endpoint does before the append: the member's data keys are destroyed (a value sealed
//! earlier no longer opens), its identity bindings forgotten, the erasure registered and audited
//! under the sender's key; once the projector has caught up no relation of the read store holds
//! any of its identifiers. Later profile updates of the member leave no sealed value and make no
//! new data key. On both stores, with the real projector over an embedded log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use liandong_auth::{authorize, ApiKeys, Role};
use liandong_event::{Event, OpenidKind, Schemas};
use liandong_identity::{IdentityError, IdentityService};
use liandong_ingest::{router, IngestResponse, IngestState};
use liandong_log::{EmbeddedLog, EventLog, Stream};
use liandong_projections::CoreProjection;
use liandong_projector::{Projector, ProjectorConfig};
use liandong_store::audit::{self, AuditQuery};
use liandong_store::{sqlx, ReadStore};
use liandong_testkit::{catalog, identity_service, on_both_stores, server, test_vault, TestStore};
use liandong_vault::{DataKeys, Purpose};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const INGEST_KEY: &str = "erasure-ingest-key-0123456789";

// The member; distinctive, so that finding one cannot be a coincidence.
const UNIONID: &str = "uSENDERerasedunion01";
const OA: &str = "oSENDERerasedoa01";
const MP: &str = "oSENDERerasedmp01";
const PHONE: &str = "13900004444";
const ADDRESS: &str = "杭州市西湖区擦除路7号";
const LATE_PHONE: &str = "13900005555";
const LATE_ADDRESS: &str = "杭州市上城区晚到路9号";
/// Another member: kept, readable, and its profile updates still sealed.
const KEPT_UNIONID: &str = "uSENDERkeptunion01";
const KEPT_PHONE: &str = "13700006666";

fn ev(n: u32, ty: &str, at: &str, user: Value, props: Value) -> Value {
    json!({"event_id": format!("00000000-0000-4000-a000-{n:012}"), "type": ty,
           "occurred_at": at, "user": user, "props": props})
}

struct Harness {
    base: String,
    http: reqwest::Client,
    store: ReadStore,
    log: Arc<EmbeddedLog>,
    stop_projector: Option<oneshot::Sender<()>>,
    projector: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(db: &TestStore) -> Harness {
        let store = db.store().clone();
        liandong_projections::migrate(&store)
            .await
            .expect("migrations run");
        let vault = test_vault();
        liandong_vault::migrate(&store, &vault)
            .await
            .expect("vault tables");
        let data_keys = DataKeys::new(store.clone(), vault.clone());
        let identity = identity_service(&store)
            .await
            .with_erasure_registry(vault.clone());
        let dir = tempfile::tempdir().expect("temp dir");
        let log = EmbeddedLog::open(&dir.path().join("log")).expect("embedded log");
        let state = IngestState::new(
            Arc::new(Schemas::load().expect("schemas")),
            log.clone(),
            identity,
            Arc::new(ApiKeys::parse(&format!("ingest:{INGEST_KEY}")).expect("keys")),
            data_keys,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router(state)).await });

        let projector = Projector::new(
            store.clone(),
            log.clone(),
            Arc::new(CoreProjection::new(chrono_tz::Asia::Shanghai, vault)),
            ProjectorConfig {
                poll_wait: Duration::from_millis(50),
                ..ProjectorConfig::default()
            },
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let projector = tokio::spawn(async move {
            projector
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("the projector runs");
        });
        Harness {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            store,
            log,
            stop_projector: Some(stop),
            projector,
            _dir: dir,
        }
    }

    async fn send(&self, events: &[Value]) -> IngestResponse {
        let body = server::post_events(&self.http, &self.base, INGEST_KEY, events).await;
        let answer: IngestResponse = serde_json::from_value(body).expect("a 200 answer");
        assert_eq!(answer.accepted, events.len());
        answer
    }

    /// Waits until the core projection has applied the whole log.
    async fn caught_up(&self) {
        let projection = CoreProjection::new(chrono_tz::Asia::Shanghai, test_vault());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = liandong_projector::status(&self.store, self.log.as_ref(), &[&projection])
                .await
                .expect("the status reads");
            if status[0].lag == 0 && status[0].version.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the projector did not catch up: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every event in the log, in order.
    async fn logged(&self) -> Vec<Event> {
        let mut consumer = self
            .log
            .consumer("erasure-test-reader", Stream::Events)
            .await
            .expect("a consumer");
        let end: i64 = self
            .log
            .end_offsets(Stream::Events)
            .await
            .expect("end offsets")
            .iter()
            .map(|(_, e)| e)
            .sum();
        let mut out = Vec::new();
        while (out.len() as i64) < end {
            let batch = consumer
                .poll(1000, Duration::from_secs(1))
                .await
                .expect("the log reads");
            assert!(!batch.is_empty(), "the log ends early");
            out.extend(
                batch
                    .iter()
                    .map(|r| serde_json::from_slice::<Event>(&r.payload).expect("an event")),
            );
        }
        out
    }

    async fn data_key_count(&self) -> i64 {
        const Q: &str = "SELECT COUNT(*) FROM liandong_data_keys";
        match &self.store {
            ReadStore::Postgres(p) => sqlx::query_scalar(Q).fetch_one(p).await,
            ReadStore::Sqlite(p) => sqlx::query_scalar(Q).fetch_one(p).await,
        }
        .expect("the data keys count")
    }

    async fn stop(mut self) {
        let _ = self.stop_projector.take().map(|s| s.send(()));
        self.projector.await.expect("the projector stops");
    }
}

/// A fresh identity service over the store, with an empty cache and no registry: it sees only
/// the bindings the identity store holds.
async fn binds_elsewhere(store: &ReadStore, kind: OpenidKind, openid: &str) -> bool {
    let fresh: IdentityService = identity_service(store).await;
    match fresh.bind("uSOMEONEelse01", &[(kind, openid)]).await {
        Ok(()) => true,
        Err(IdentityError::Conflict { .. }) => false,
        Err(e) => panic!("the identity store answers: {e}"),
    }
}

async fn sender_erasure(db: &TestStore) {
    let h = Harness::start(db).await;
    let member = vec![
        ev(
            1,
            "mp.visit",
            "2026-10-03T10:00:00+08:00",
            json!({"mp_openid": MP}),
            json!({"page": "pages/index/index"}),
        ),
        ev(
            2,
            "oa.follow",
            "2026-10-03T10:10:00+08:00",
            json!({"oa_openid": OA}),
            json!({"via": "mp_prompt"}),
        ),
        ev(
            3,
            "member.identified",
            "2026-10-20T00:00:00+08:00",
            json!({"unionid": UNIONID, "oa_openid": OA, "mp_openid": MP}),
            json!({}),
        ),
        ev(
            4,
            "member.profile_updated",
            "2026-10-21T00:00:00+08:00",
            json!({"unionid": UNIONID}),
            json!({"phone": PHONE, "address": ADDRESS, "level": "gold"}),
        ),
        ev(
            5,
            "member.profile_updated",
            "2026-10-21T00:00:00+08:00",
            json!({"unionid": KEPT_UNIONID, "mp_openid": "oSENDERkeptmp01"}),
            json!({"phone": KEPT_PHONE}),
        ),
    ];
    h.send(&member).await;
    h.caught_up().await;
    let identifiers = [UNIONID, OA, MP];
    let before = catalog::find(&h.store, &identifiers).await;
    assert!(
        before.iter().any(|(r, _, _)| r == "member_profile")
            && before.iter().any(|(r, _, _)| r == "identity_events"),
        "the search sees the member before its erasure: {before:?}"
    );
    // Sealed under the member's key, and readable.
    let sealed: Vec<(String, String)> = h
        .logged()
        .await
        .iter()
        .flat_map(|e| {
            let who = e.user.unionid.clone().unwrap_or_default();
            e.sealed.values().map(move |v| (who.clone(), v.clone()))
        })
        .collect();
    let (mine, kept): (Vec<_>, Vec<_>) = sealed.iter().partition(|(u, _)| u == UNIONID);
    assert_eq!((mine.len(), kept.len()), (2, 1), "{sealed:?}");
    let reader = DataKeys::new(h.store.clone(), test_vault());
    let opened = reader.open(&mine[0].1).await.expect("the data keys answer");
    assert!(opened.as_deref() == Some(PHONE) || opened.as_deref() == Some(ADDRESS));
    assert!(!binds_elsewhere(&h.store, OpenidKind::Oa, OA).await);

    // The sender erases the member by its unionid alone: its openids are resolved.
    let erased = ev(
        10,
        "member.erased",
        "2026-10-25T00:00:00+08:00",
        json!({"unionid": UNIONID}),
        json!({}),
    );
    h.send(&[erased]).await;

    // Before the projector applies anything: the keys are destroyed.
    let reader = DataKeys::new(h.store.clone(), test_vault());
    for (_, value) in &mine {
        assert_eq!(
            reader.open(value).await.expect("the data keys answer"),
            None
        );
    }
    assert_eq!(
        reader.open(&kept[0].1).await.unwrap().as_deref(),
        Some(KEPT_PHONE),
        "another member's sealed value still opens"
    );
    // Audited under the sender's key.
    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {INGEST_KEY}");
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&bearer).unwrap(),
    );
    let keys = ApiKeys::parse(&format!("ingest:{INGEST_KEY}")).unwrap();
    let sender = authorize(&keys, &headers, &[Role::Ingest]).expect("the key");
    let entries = audit::list(
        &h.store,
        &AuditQuery {
            action: Some("member.erase".into()),
            ..AuditQuery::default()
        },
    )
    .await
    .expect("the audit trail reads");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(
        (
            entry.key_id.as_str(),
            entry.role.as_str(),
            entry.endpoint.as_str()
        ),
        (sender.key_id.as_str(), "ingest", "POST /v1/events")
    );
    assert_eq!(
        entry.member_ref.as_deref(),
        Some(test_vault().keyed_hash(Purpose::Audit, UNIONID).as_str())
    );
    assert_eq!(
        entry.detail.as_deref(),
        Some("event 00000000-0000-4000-a000-000000000010")
    );

    // Later profile updates of the member: accepted, nothing sealed, no new data key. Another
    // member's in the same batch is sealed under a new key, as always.
    let keys_before = h.data_key_count().await;
    h.send(&[
        ev(
            20,
            "member.profile_updated",
            "2026-10-26T00:00:00+08:00",
            json!({"unionid": UNIONID}),
            json!({"phone": LATE_PHONE, "address": LATE_ADDRESS}),
        ),
        ev(
            21,
            "member.profile_updated",
            "2026-10-26T00:00:00+08:00",
            json!({"mp_openid": MP}),
            json!({"phone": LATE_PHONE}),
        ),
        ev(
            22,
            "member.profile_updated",
            "2026-10-26T00:00:00+08:00",
            json!({"unionid": "uSENDERnewcomer01"}),
            json!({"phone": "13600007777"}),
        ),
    ])
    .await;
    assert_eq!(h.data_key_count().await, keys_before + 1);
    let logged = h.logged().await;
    let id = |n: u32| format!("00000000-0000-4000-a000-{n:012}");
    let late: Vec<&Event> = logged
        .iter()
        .filter(|e| [id(20), id(21)].contains(&e.event_id.to_string()))
        .collect();
    assert_eq!(late.len(), 2, "{late:?}");
    for e in late {
        assert!(e.sealed.is_empty(), "{e:?}");
        assert!(!e.props.contains_key("phone") && !e.props.contains_key("address"));
    }
    let newcomer = logged
        .iter()
        .find(|e| e.event_id.to_string() == id(22))
        .expect("the newcomer's update is in the log");
    assert_eq!(newcomer.sealed.len(), 1);

    // Once the projector has caught up, no relation names the member.
    h.caught_up().await;
    let mut needles = identifiers.to_vec();
    needles.extend([PHONE, ADDRESS, LATE_PHONE, LATE_ADDRESS]);
    let found = catalog::find(&h.store, &needles).await;
    assert!(found.is_empty(), "after the erasure: {found:#?}");
    assert!(!catalog::find(&h.store, &[KEPT_UNIONID]).await.is_empty());
    // The bindings are forgotten (the search above covers the identity tables too): the
    // identity store lets the openids be bound afresh, to anyone.
    assert!(binds_elsewhere(&h.store, OpenidKind::Oa, OA).await);
    assert!(binds_elsewhere(&h.store, OpenidKind::Mp, MP).await);
    h.stop().await;
}
on_both_stores!(sender_erasure);
