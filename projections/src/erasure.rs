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
//! [`Eraser`] is the command side, shared by the admin endpoint and ingestion (a sender's
//! `member.erased`): what must be done before `member.erased` is appended to the log — resolve,
//! register, destroy the data keys, forget the bindings.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liandong_event::{Event, EventType, OpenidKind, User};
use liandong_identity::{IdentityError, IdentityService};
use liandong_store::{ReadStore, StoreError};
use liandong_vault::{DataKeys, Purpose, Vault, VaultError};
use serde::Serialize;

use crate::member_profile::ts;

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

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

/// The identifiers of the member `member_key` as the read models know them (see
/// [`MemberIds`]); `None` when no read model holds the member.
pub async fn member_identifiers(
    store: &ReadStore,
    member_key: &str,
) -> Result<Option<MemberIds>, StoreError> {
    let seed = MemberIds::of_member_key(member_key);
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
    let hashes = json(&ids.hashes(vault));
    match store {
        ReadStore::Postgres(p) => p.acquire().await?.register(&hashes, &ts(&at)).await,
        ReadStore::Sqlite(p) => p.acquire().await?.register(&hashes, &ts(&at)).await,
    }
}

/// Whether the identifier `member_key` names is in the registry.
pub async fn is_erased(
    store: &ReadStore,
    vault: &Vault,
    member_key: &str,
) -> Result<bool, StoreError> {
    let hashes = json(&MemberIds::of_member_key(member_key).hashes(vault));
    let found = match store {
        ReadStore::Postgres(p) => p.acquire().await?.registered(&hashes).await?,
        ReadStore::Sqlite(p) => p.acquire().await?.registered(&hashes).await?,
    };
    Ok(!found.is_empty())
}

/// Which of `member_keys` (member-key form: `<unionid>`, `oa:<openid>`, `mp:<openid>`) are in
/// the registry: one query for all of them.
pub async fn erased_among(
    store: &ReadStore,
    vault: &Vault,
    member_keys: &BTreeSet<String>,
) -> Result<BTreeSet<String>, StoreError> {
    if member_keys.is_empty() {
        return Ok(BTreeSet::new());
    }
    let hash_of: BTreeMap<String, &String> = member_keys
        .iter()
        .map(|k| (vault.keyed_hash(Purpose::Erasure, k), k))
        .collect();
    let hashes = json(&hash_of.keys().collect::<Vec<_>>());
    let found = match store {
        ReadStore::Postgres(p) => p.acquire().await?.registered(&hashes).await?,
        ReadStore::Sqlite(p) => p.acquire().await?.registered(&hashes).await?,
    };
    Ok(found
        .iter()
        .filter_map(|h| hash_of.get(h).map(|k| (*k).clone()))
        .collect())
}

/// Why a step of an erasure failed. Every step is idempotent: the whole erasure can be retried.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The read store (read models, registry) did not answer.
    #[error("read store: {0}")]
    Store(#[from] StoreError),
    /// The data keys could not be destroyed.
    #[error("destroying data keys: {0}")]
    DataKeys(#[from] VaultError),
    /// The identity bindings could not be forgotten.
    #[error("forgetting identity bindings: {0}")]
    Identity(#[from] IdentityError),
}

/// The command side of an erasure (METRICS.md, "Erasure"): the steps that come before
/// `member.erased` is appended to the log, shared by `POST /v1/members/{member_key}/erase` and
/// by ingestion of a sender's `member.erased`. The caller runs [`resolve`](Self::resolve),
/// records the erasure in the audit trail, runs [`erase`](Self::erase), and appends
/// `member.erased` last: if it dies before the append, nothing it has done is undone, and the
/// retry (every step is idempotent) still finds every identifier, since the read models are
/// only cleared when the projector applies the appended event.
#[derive(Clone, Copy)]
pub struct Eraser<'a> {
    /// The read models (to resolve) and the registry.
    pub store: &'a ReadStore,
    /// Makes the registry's keyed hashes.
    pub vault: &'a Vault,
    pub data_keys: &'a DataKeys,
    pub identity: &'a IdentityService,
}

impl Eraser<'_> {
    /// Step 1, resolve: `seed` and every unionid and openid the read models connect to it by a
    /// binding or a stored event. `None` when no read model holds any of them and none is in
    /// the registry (a member erased already resolves to `seed`: erasing twice is fine).
    pub async fn resolve(&self, seed: MemberIds) -> Result<Option<MemberIds>, StoreError> {
        if seed.is_empty() {
            return Ok(None);
        }
        let (ids, found) = match self.store {
            ReadStore::Postgres(p) => connected(&mut *p.acquire().await?, seed).await?,
            ReadStore::Sqlite(p) => connected(&mut *p.acquire().await?, seed).await?,
        };
        if found {
            return Ok(Some(ids));
        }
        let erased = erased_among(self.store, self.vault, &ids.member_keys()).await?;
        Ok((!erased.is_empty()).then_some(ids))
    }

    /// Steps 2 to 4, in this order: **register** `ids` in the registry (from this instant no
    /// projection, live or rebuilding, adds anything about them, and the identity store binds
    /// none of them again), **destroy their data keys** (crypto-shredding: every value sealed
    /// under them, wherever it lies, is unreadable from now on), **forget their identity
    /// bindings** (the store's and this process's cache). Idempotent.
    pub async fn erase(&self, ids: &MemberIds, at: DateTime<Utc>) -> Result<(), EraseError> {
        register(self.store, self.vault, ids, at).await?;
        let raw: Vec<&str> = ids
            .unionids
            .iter()
            .chain(&ids.oa_openids)
            .chain(&ids.mp_openids)
            .map(String::as_str)
            .collect();
        self.data_keys.destroy(&raw).await?;
        let openids: Vec<(OpenidKind, &str)> = ids
            .oa_openids
            .iter()
            .map(|o| (OpenidKind::Oa, o.as_str()))
            .chain(ids.mp_openids.iter().map(|m| (OpenidKind::Mp, m.as_str())))
            .collect();
        self.identity.forget(&openids).await?;
        Ok(())
    }
}

/// The events of `events` that carry no erased identifier, in their order.
pub(crate) async fn skip_erased<'e, C: ErasureDb + Send>(
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
    let hashes: BTreeSet<&String> = hash_of.values().collect();
    let erased: BTreeSet<String> = db.registered(&json(&hashes)).await?.into_iter().collect();
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
pub(crate) async fn erase<C: ErasureDb + Send>(
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
    db.register(&json(&ids.hashes(vault)), &ts(&at)).await?;

    let [keys, unionids, oa, mp] = ids.json();
    let deleted = db.delete_events(&keys, &oa, &mp).await?;
    let mut menu: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    let mut article: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut touched = ids.member_keys();
    for d in deleted {
        let text = |v: Option<String>| v.unwrap_or_default();
        match d.event_type.parse::<EventType>() {
            Ok(EventType::OaMenuExposure) => {
                menu.entry((d.day, text(d.entry), text(d.variant)))
                    .or_default()
                    .0 += 1
            }
            Ok(EventType::OaMenuClick) => {
                menu.entry((d.day, text(d.entry), text(d.variant)))
                    .or_default()
                    .1 += 1
            }
            Ok(EventType::OaArticleRead) => {
                article.entry((d.day, text(d.article_id))).or_default().0 += 1
            }
            Ok(EventType::OaArticleClick) => {
                article.entry((d.day, text(d.article_id))).or_default().1 += 1
            }
            _ => {}
        }
        touched.insert(d.member_key);
    }
    if !menu.is_empty() {
        let rows: Vec<MenuDelta> = menu
            .iter()
            .map(|((day, entry, variant), (exposures, clicks))| MenuDelta {
                day,
                entry,
                variant,
                exposures: *exposures,
                clicks: *clicks,
            })
            .collect();
        db.subtract_menu(&json(&rows)).await?;
    }
    if !article.is_empty() {
        let rows: Vec<ArticleDelta> = article
            .iter()
            .map(|((day, article_id), (reads, clicks))| ArticleDelta {
                day,
                article_id,
                reads: *reads,
                clicks: *clicks,
            })
            .collect();
        db.subtract_article(&json(&rows)).await?;
    }
    db.delete_identity(&unionids, &oa, &mp).await?;
    Ok(touched)
}

/// `seed` and every identifier connected to it through a binding or a stored event, and whether
/// any read-model row was found. Stops after a few rounds: a member is a small set of ids.
async fn connected<C: ErasureDb + Send>(
    db: &mut C,
    seed: MemberIds,
) -> Result<(MemberIds, bool), StoreError> {
    let mut ids = seed;
    let mut found = false;
    for _ in 0..8 {
        let before = ids.len();
        let [keys, unionids, oa, mp] = ids.json();
        for (kind, openid, unionid) in db.identity_rows(&unionids, &oa, &mp).await? {
            found = true;
            ids.unionids.insert(unionid);
            match kind.as_str() {
                "oa" => ids.oa_openids.insert(openid),
                _ => ids.mp_openids.insert(openid),
            };
        }
        for (key, unionid, oa, mp) in db.event_identities(&keys, &oa, &mp).await? {
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

#[derive(Serialize)]
struct MenuDelta<'a> {
    day: &'a str,
    entry: &'a str,
    variant: &'a str,
    exposures: i64,
    clicks: i64,
}

#[derive(Serialize)]
struct ArticleDelta<'a> {
    day: &'a str,
    article_id: &'a str,
    reads: i64,
    clicks: i64,
}

/// A deleted `events` row: what the traffic counts and the refold need of it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Deleted {
    member_key: String,
    event_type: String,
    day: String,
    entry: Option<String>,
    variant: Option<String>,
    article_id: Option<String>,
}

type EventIds = (String, Option<String>, Option<String>, Option<String>);

/// The erasure statements, once per dialect. Arguments are JSON arrays (text).
#[async_trait]
pub(crate) trait ErasureDb {
    /// The given hashes that are in the registry.
    async fn registered(&mut self, hashes: &str) -> Result<Vec<String>, StoreError>;
    async fn register(&mut self, hashes: &str, at: &str) -> Result<(), StoreError>;
    /// (kind, openid, unionid) of bindings of the unionids or openids.
    async fn identity_rows(
        &mut self,
        unionids: &str,
        oa: &str,
        mp: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Distinct (member_key, unionid, oa_openid, mp_openid) of events under one of `keys` or
    /// carrying one of the openids.
    async fn event_identities(
        &mut self,
        keys: &str,
        oa: &str,
        mp: &str,
    ) -> Result<Vec<EventIds>, StoreError>;
    async fn delete_events(
        &mut self,
        keys: &str,
        oa: &str,
        mp: &str,
    ) -> Result<Vec<Deleted>, StoreError>;
    async fn delete_identity(
        &mut self,
        unionids: &str,
        oa: &str,
        mp: &str,
    ) -> Result<(), StoreError>;
    async fn subtract_menu(&mut self, rows: &str) -> Result<(), StoreError>;
    async fn subtract_article(&mut self, rows: &str) -> Result<(), StoreError>;
}

struct Sql {
    registered: &'static str,
    register: &'static str,
    identity_rows: &'static str,
    event_identities: &'static str,
    delete_events: &'static str,
    delete_identity: &'static str,
    subtract_menu: &'static str,
    subtract_article: &'static str,
    drop_empty_menu: &'static str,
    drop_empty_article: &'static str,
}

const PG: Sql = Sql {
    registered: "SELECT id_hash FROM liandong_erasures
        WHERE id_hash IN (SELECT jsonb_array_elements_text($1::jsonb))",
    register: "INSERT INTO liandong_erasures (id_hash, erased_at)
        SELECT h, $2::timestamptz FROM jsonb_array_elements_text($1::jsonb) AS h
        ON CONFLICT (id_hash) DO NOTHING",
    identity_rows: "SELECT kind, openid, unionid FROM member_identity
        WHERE unionid IN (SELECT jsonb_array_elements_text($1::jsonb))
           OR (kind = 'oa' AND openid IN (SELECT jsonb_array_elements_text($2::jsonb)))
           OR (kind = 'mp' AND openid IN (SELECT jsonb_array_elements_text($3::jsonb)))",
    event_identities: "SELECT DISTINCT member_key, unionid, oa_openid, mp_openid FROM events
        WHERE member_key IN (SELECT jsonb_array_elements_text($1::jsonb))
           OR oa_openid IN (SELECT jsonb_array_elements_text($2::jsonb))
           OR mp_openid IN (SELECT jsonb_array_elements_text($3::jsonb))",
    delete_events: "DELETE FROM events
        WHERE member_key IN (SELECT jsonb_array_elements_text($1::jsonb))
           OR oa_openid IN (SELECT jsonb_array_elements_text($2::jsonb))
           OR mp_openid IN (SELECT jsonb_array_elements_text($3::jsonb))
        RETURNING member_key, type AS event_type, day::text AS day, props ->> 'entry' AS entry,
            props ->> 'variant' AS variant, props ->> 'article_id' AS article_id",
    delete_identity: "DELETE FROM member_identity
        WHERE unionid IN (SELECT jsonb_array_elements_text($1::jsonb))
           OR (kind = 'oa' AND openid IN (SELECT jsonb_array_elements_text($2::jsonb)))
           OR (kind = 'mp' AND openid IN (SELECT jsonb_array_elements_text($3::jsonb)))",
    subtract_menu: "UPDATE metric_menu_entry_daily m
        SET exposures = m.exposures - x.exposures, clicks = m.clicks - x.clicks
        FROM jsonb_to_recordset($1::jsonb) AS x(day date, entry text, variant text, exposures bigint, clicks bigint)
        WHERE m.day = x.day AND m.entry = x.entry AND m.variant = x.variant",
    subtract_article: "UPDATE metric_article_daily m
        SET reads = m.reads - x.reads, clicks = m.clicks - x.clicks
        FROM jsonb_to_recordset($1::jsonb) AS x(day date, article_id text, reads bigint, clicks bigint)
        WHERE m.day = x.day AND m.article_id = x.article_id",
    drop_empty_menu: "DELETE FROM metric_menu_entry_daily WHERE exposures <= 0 AND clicks <= 0",
    drop_empty_article: "DELETE FROM metric_article_daily WHERE reads <= 0 AND clicks <= 0",
};

const SQLITE: Sql = Sql {
    registered:
        "SELECT id_hash FROM liandong_erasures WHERE id_hash IN (SELECT value FROM json_each($1))",
    register: "INSERT INTO liandong_erasures (id_hash, erased_at)
        SELECT value, $2 FROM json_each($1) WHERE true ON CONFLICT (id_hash) DO NOTHING",
    identity_rows: "SELECT kind, openid, unionid FROM member_identity
        WHERE unionid IN (SELECT value FROM json_each($1))
           OR (kind = 'oa' AND openid IN (SELECT value FROM json_each($2)))
           OR (kind = 'mp' AND openid IN (SELECT value FROM json_each($3)))",
    event_identities: "SELECT DISTINCT member_key, unionid, oa_openid, mp_openid FROM events
        WHERE member_key IN (SELECT value FROM json_each($1))
           OR oa_openid IN (SELECT value FROM json_each($2))
           OR mp_openid IN (SELECT value FROM json_each($3))",
    delete_events: "DELETE FROM events
        WHERE member_key IN (SELECT value FROM json_each($1))
           OR oa_openid IN (SELECT value FROM json_each($2))
           OR mp_openid IN (SELECT value FROM json_each($3))
        RETURNING member_key, type AS event_type, day, props ->> 'entry' AS entry,
            props ->> 'variant' AS variant, props ->> 'article_id' AS article_id",
    delete_identity: "DELETE FROM member_identity
        WHERE unionid IN (SELECT value FROM json_each($1))
           OR (kind = 'oa' AND openid IN (SELECT value FROM json_each($2)))
           OR (kind = 'mp' AND openid IN (SELECT value FROM json_each($3)))",
    subtract_menu: "UPDATE metric_menu_entry_daily
        SET exposures = metric_menu_entry_daily.exposures - (x.value ->> 'exposures'),
            clicks = metric_menu_entry_daily.clicks - (x.value ->> 'clicks')
        FROM json_each($1) AS x
        WHERE metric_menu_entry_daily.day = x.value ->> 'day'
          AND metric_menu_entry_daily.entry = x.value ->> 'entry'
          AND metric_menu_entry_daily.variant = x.value ->> 'variant'",
    subtract_article: "UPDATE metric_article_daily
        SET reads = metric_article_daily.reads - (x.value ->> 'reads'),
            clicks = metric_article_daily.clicks - (x.value ->> 'clicks')
        FROM json_each($1) AS x
        WHERE metric_article_daily.day = x.value ->> 'day'
          AND metric_article_daily.article_id = x.value ->> 'article_id'",
    drop_empty_menu: "DELETE FROM metric_menu_entry_daily WHERE exposures <= 0 AND clicks <= 0",
    drop_empty_article: "DELETE FROM metric_article_daily WHERE reads <= 0 AND clicks <= 0",
};

macro_rules! erasure_db {
    ($conn:ty, $sql:expr) => {
        #[async_trait]
        impl ErasureDb for $conn {
            async fn registered(&mut self, hashes: &str) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar($sql.registered)
                    .bind(hashes)
                    .fetch_all(self)
                    .await?)
            }
            async fn register(&mut self, hashes: &str, at: &str) -> Result<(), StoreError> {
                sqlx::query($sql.register)
                    .bind(hashes)
                    .bind(at)
                    .execute(self)
                    .await?;
                Ok(())
            }
            async fn identity_rows(
                &mut self,
                unionids: &str,
                oa: &str,
                mp: &str,
            ) -> Result<Vec<(String, String, String)>, StoreError> {
                Ok(sqlx::query_as($sql.identity_rows)
                    .bind(unionids)
                    .bind(oa)
                    .bind(mp)
                    .fetch_all(self)
                    .await?)
            }
            async fn event_identities(
                &mut self,
                keys: &str,
                oa: &str,
                mp: &str,
            ) -> Result<Vec<EventIds>, StoreError> {
                Ok(sqlx::query_as($sql.event_identities)
                    .bind(keys)
                    .bind(oa)
                    .bind(mp)
                    .fetch_all(self)
                    .await?)
            }
            async fn delete_events(
                &mut self,
                keys: &str,
                oa: &str,
                mp: &str,
            ) -> Result<Vec<Deleted>, StoreError> {
                Ok(sqlx::query_as($sql.delete_events)
                    .bind(keys)
                    .bind(oa)
                    .bind(mp)
                    .fetch_all(self)
                    .await?)
            }
            async fn delete_identity(
                &mut self,
                unionids: &str,
                oa: &str,
                mp: &str,
            ) -> Result<(), StoreError> {
                sqlx::query($sql.delete_identity)
                    .bind(unionids)
                    .bind(oa)
                    .bind(mp)
                    .execute(self)
                    .await?;
                Ok(())
            }
            async fn subtract_menu(&mut self, rows: &str) -> Result<(), StoreError> {
                sqlx::query($sql.subtract_menu)
                    .bind(rows)
                    .execute(&mut *self)
                    .await?;
                sqlx::query($sql.drop_empty_menu).execute(self).await?;
                Ok(())
            }
            async fn subtract_article(&mut self, rows: &str) -> Result<(), StoreError> {
                sqlx::query($sql.subtract_article)
                    .bind(rows)
                    .execute(&mut *self)
                    .await?;
                sqlx::query($sql.drop_empty_article).execute(self).await?;
                Ok(())
            }
        }
    };
}

erasure_db!(sqlx::PgConnection, PG);
erasure_db!(sqlx::SqliteConnection, SQLITE);
