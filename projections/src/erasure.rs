//! Erasure (METRICS.md, "Erasure"): the registry of erased identifiers and what the core
//! projection does with it.
//!
//! The registry `liandong_erasures` holds a keyed hash (`Purpose::Erasure`) of each erased
//! identifier in its member-key form — `<unionid>`, `oa:<openid>`, `mp:<openid>` — never the
//! identifier. It is not a projection table: a rebuild does not empty it, so the projection
//! skips every event carrying an erased identifier whether the event comes before or after the
//! `member.erased` record in the log, and a rebuild from offset 0 never brings the member back.
//!
//! Applying `member.erased` finds the member's identifiers in the read models — its own, and
//! every one connected to them through a binding or a stored event — registers them, deletes
//! every `events` and `member_identity` row carrying one of them, subtracts the deleted events
//! from the traffic counts, and leaves the refold of the touched members (profiles, facts, the
//! aggregates over facts, pseudonyms) to the core projection. The read models then equal those
//! of a rebuild that skips the same events.
//!
//! The registry is the store's table (`liandong_store::erasures`); the command side of an
//! erasure — resolve, register, destroy the data keys, forget the bindings, append
//! `member.erased` — is ingestion's (`liandong_ingest::erase`), which resolves a member through
//! [`member_identifiers`], the read models' answer to "which identifiers are this member's".

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use liandong_event::{Event, EventType, User};
use liandong_store::erasures as registry;
use liandong_store::{ReadStore, StoreError};
use liandong_vault::{Purpose, Vault};

use crate::sql::{self, Db, Statement};
use crate::traffic::{self, TrafficCounts};

/// A member's identifiers, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberIds {
    pub unionids: BTreeSet<String>,
    pub oa_openids: BTreeSet<String>,
    pub mp_openids: BTreeSet<String>,
}

impl MemberIds {
    /// The identifiers an event's `user` carries.
    pub fn of_user(user: &User) -> MemberIds {
        let mut ids = MemberIds::default();
        ids.add(
            user.unionid.as_deref(),
            user.oa_openid.as_deref(),
            user.mp_openid.as_deref(),
        );
        ids
    }

    /// The identifier a member key names: `oa:<openid>`, `mp:<openid>`, else a unionid.
    pub fn of_member_key(member_key: &str) -> MemberIds {
        let mut ids = MemberIds::default();
        ids.add_member_key(member_key);
        ids
    }

    fn add(&mut self, unionid: Option<&str>, oa: Option<&str>, mp: Option<&str>) {
        if let Some(u) = unionid.filter(|u| !u.is_empty()) {
            self.unionids.insert(u.to_owned());
        }
        if let Some(o) = oa.filter(|o| !o.is_empty()) {
            self.oa_openids.insert(o.to_owned());
        }
        if let Some(m) = mp.filter(|m| !m.is_empty()) {
            self.mp_openids.insert(m.to_owned());
        }
    }

    fn add_member_key(&mut self, key: &str) {
        match key.split_once(':') {
            Some(("oa", o)) => self.add(None, Some(o), None),
            Some(("mp", m)) => self.add(None, None, Some(m)),
            _ => self.add(Some(key), None, None),
        }
    }

    fn len(&self) -> usize {
        self.unionids.len() + self.oa_openids.len() + self.mp_openids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each identifier in its member-key form: `<unionid>`, `oa:<openid>`, `mp:<openid>`. These
    /// are also every member key the identifiers can stand for.
    pub fn member_keys(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.unionids.iter().cloned().collect();
        out.extend(self.oa_openids.iter().map(|o| format!("oa:{o}")));
        out.extend(self.mp_openids.iter().map(|m| format!("mp:{m}")));
        out
    }

    /// The registry's hashes of these identifiers.
    pub fn hashes(&self, vault: &Vault) -> BTreeSet<String> {
        self.member_keys()
            .iter()
            .map(|k| vault.keyed_hash(Purpose::Erasure, k))
            .collect()
    }

    fn json(&self) -> [String; 4] {
        [
            json(&self.member_keys()),
            json(&self.unionids),
            json(&self.oa_openids),
            json(&self.mp_openids),
        ]
    }
}

use crate::sql::json;

/// The identifiers of the member `member_key` as the read models know them (see
/// [`MemberIds`]); `None` when no read model holds the member.
pub async fn member_identifiers(
    store: &ReadStore,
    member_key: &str,
) -> Result<Option<MemberIds>, StoreError> {
    connected_ids(store, MemberIds::of_member_key(member_key)).await
}

/// `seed` and every unionid and openid the read models connect to it by a binding or a stored
/// event; `None` when no read model holds any of them.
pub async fn connected_ids(
    store: &ReadStore,
    seed: MemberIds,
) -> Result<Option<MemberIds>, StoreError> {
    if seed.is_empty() {
        return Ok(None);
    }
    let (ids, found) = match store {
        ReadStore::Postgres(p) => connected(&mut *p.acquire().await?, seed).await?,
        ReadStore::Sqlite(p) => connected(&mut *p.acquire().await?, seed).await?,
    };
    Ok(found.then_some(ids))
}

/// Records `ids` as erased (idempotent). From then on every projection skips their events.
pub async fn register(
    store: &ReadStore,
    vault: &Vault,
    ids: &MemberIds,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    registry::register(store, &ids.hashes(vault), at).await
}

/// Whether the identifier `member_key` names is in the registry.
pub async fn is_erased(
    store: &ReadStore,
    vault: &Vault,
    member_key: &str,
) -> Result<bool, StoreError> {
    let hashes = MemberIds::of_member_key(member_key).hashes(vault);
    Ok(!registry::registered(store, &hashes).await?.is_empty())
}

/// Which of `member_keys` (member-key form: `<unionid>`, `oa:<openid>`, `mp:<openid>`) are in
/// the registry: one query for all of them.
pub async fn erased_among(
    store: &ReadStore,
    vault: &Vault,
    member_keys: &BTreeSet<String>,
) -> Result<BTreeSet<String>, StoreError> {
    let hash_of: BTreeMap<String, &String> = member_keys
        .iter()
        .map(|k| (vault.keyed_hash(Purpose::Erasure, k), k))
        .collect();
    let hashes: BTreeSet<String> = hash_of.keys().cloned().collect();
    let found = registry::registered(store, &hashes).await?;
    Ok(found
        .iter()
        .filter_map(|h| hash_of.get(h).map(|k| (*k).clone()))
        .collect())
}

/// The events of `events` that carry no erased identifier, in their order.
pub(crate) async fn skip_erased<'e, C: Db>(
    db: &mut C,
    vault: &Vault,
    events: Vec<&'e Event>,
) -> Result<Vec<&'e Event>, StoreError> {
    if events.is_empty() {
        return Ok(events);
    }
    let mut hash_of: BTreeMap<String, String> = BTreeMap::new();
    for e in &events {
        for key in MemberIds::of_user(&e.user).member_keys() {
            hash_of
                .entry(key)
                .or_insert_with_key(|k| vault.keyed_hash(Purpose::Erasure, k));
        }
    }
    let hashes: BTreeSet<String> = hash_of.values().cloned().collect();
    let erased = registry::registered_in(db, &hashes).await?;
    if erased.is_empty() {
        return Ok(events);
    }
    Ok(events
        .into_iter()
        .filter(|e| {
            !MemberIds::of_user(&e.user)
                .member_keys()
                .iter()
                .any(|k| hash_of.get(k).is_some_and(|h| erased.contains(h)))
        })
        .collect())
}

/// Applies `member.erased` events: registers the members' identifiers, deletes their `events`
/// and `member_identity` rows and subtracts the deleted events from the traffic counts. Returns
/// the member keys whose profile, facts and pseudonym the caller must refold.
pub(crate) async fn erase<C: Db>(
    db: &mut C,
    vault: &Vault,
    erasures: &[&Event],
) -> Result<BTreeSet<String>, StoreError> {
    let mut ids = MemberIds::default();
    for e in erasures {
        let seed = MemberIds::of_user(&e.user);
        ids.unionids.extend(seed.unionids);
        ids.oa_openids.extend(seed.oa_openids);
        ids.mp_openids.extend(seed.mp_openids);
    }
    let (ids, _) = connected(db, ids).await?;
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let at = erasures
        .iter()
        .map(|e| e.received_at)
        .min()
        .unwrap_or_else(Utc::now);
    registry::register_in(db, &ids.hashes(vault), at).await?;

    let [keys, unionids, oa, mp] = ids.json();
    let deleted: Vec<Deleted> = db.fetch(&DELETE_EVENTS, &[&keys, &oa, &mp]).await?;
    // The deleted events come off the traffic counts, as if they had never counted.
    let mut counts = TrafficCounts::default();
    let mut touched = ids.member_keys();
    for (member_key, event_type, day, entry, variant, article_id) in deleted {
        if let (Ok(t), Ok(day)) = (event_type.parse::<EventType>(), day.parse::<NaiveDate>()) {
            let text = |v: Option<String>| v.unwrap_or_default();
            counts.subtract(t, day, text(entry), text(variant), text(article_id));
        }
        touched.insert(member_key);
    }
    traffic::count(db, &counts).await?;
    traffic::drop_empty(db).await?;
    db.exec(&DELETE_IDENTITY, &[&unionids, &oa, &mp]).await?;
    Ok(touched)
}
/// `seed` and every identifier connected to it through a binding or a stored event, and whether
/// any read-model row was found. Stops after a few rounds: a member is a small set of ids.
async fn connected<C: Db>(db: &mut C, seed: MemberIds) -> Result<(MemberIds, bool), StoreError> {
    let mut ids = seed;
    let mut found = false;
    for _ in 0..8 {
        let before = ids.len();
        let [keys, unionids, oa, mp] = ids.json();
        let bound: Vec<(String, String, String)> =
            db.fetch(&IDENTITY_ROWS, &[&unionids, &oa, &mp]).await?;
        for (kind, openid, unionid) in bound {
            found = true;
            ids.unionids.insert(unionid);
            match kind.as_str() {
                "oa" => ids.oa_openids.insert(openid),
                _ => ids.mp_openids.insert(openid),
            };
        }
        let stored: Vec<EventIds> = db.fetch(&EVENT_IDENTITIES, &[&keys, &oa, &mp]).await?;
        for (key, unionid, oa, mp) in stored {
            found = true;
            ids.add_member_key(&key);
            ids.add(unionid.as_deref(), oa.as_deref(), mp.as_deref());
        }
        if ids.len() == before {
            break;
        }
    }
    Ok((ids, found))
}

type EventIds = (String, Option<String>, Option<String>, Option<String>);

/// A deleted `events` row: (member_key, type, day, entry, variant, article_id), what the
/// traffic counts and the refold need of it.
type Deleted = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// `WHERE` over `member_identity`: the bindings of the unionids `$1`, OA openids `$2`, MP
/// openids `$3`.
fn of_identity(d: liandong_store::Dialect) -> String {
    format!(
        "unionid IN {} OR (kind = 'oa' AND openid IN {}) OR (kind = 'mp' AND openid IN {})",
        sql::values(d, 1),
        sql::values(d, 2),
        sql::values(d, 3)
    )
}

/// `WHERE` over `events`: the events under the member keys `$1` or carrying the OA openids
/// `$2` or the MP openids `$3`.
fn of_events(d: liandong_store::Dialect) -> String {
    format!(
        "member_key IN {} OR oa_openid IN {} OR mp_openid IN {}",
        sql::values(d, 1),
        sql::values(d, 2),
        sql::values(d, 3)
    )
}

static IDENTITY_ROWS: Statement = Statement::new(|d| {
    format!(
        "SELECT kind, openid, unionid FROM member_identity WHERE {}",
        of_identity(d)
    )
});
static EVENT_IDENTITIES: Statement = Statement::new(|d| {
    format!(
        "SELECT DISTINCT member_key, unionid, oa_openid, mp_openid FROM events WHERE {}",
        of_events(d)
    )
});
static DELETE_EVENTS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM events WHERE {} RETURNING member_key, type, {} AS day,
            props ->> 'entry', props ->> 'variant', props ->> 'article_id'",
        of_events(d),
        sql::text(d, "day")
    )
});
static DELETE_IDENTITY: Statement =
    Statement::new(|d| format!("DELETE FROM member_identity WHERE {}", of_identity(d)));
