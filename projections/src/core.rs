//! The projection `core`: the `events` table, the identity bindings, and the member-level read
//! models updated from them ([`crate::members`]: `member_profile`, linkage, retention, A/B,
//! `member_personal`), plus the traffic counts ([`crate::traffic`]).
//!
//! A batch is applied in a fixed number of set-based statements, whatever its size: insert the
//! bindings the batch carries; resolve every event's member (own unionid, else the OA openid's
//! binding, else the MP openid's, else `oa:`/`mp:` the openid); insert the events (a known
//! event_id changes nothing); re-key earlier events whose openid was bound just now (the binding
//! is retroactive); then merge what changed into the member-level read models. Each step
//! depends only on the set of events stored, never on their order of arrival.
//!
//! Before that, events carrying an erased identifier are dropped (the erasure registry, see
//! [`crate::erasure`]); after it, the batch's `member.erased` events remove their members, and
//! the members they touched are recomputed from the events they have left.
//!
//! Batches of several projector processes apply concurrently on PostgreSQL. What two of them
//! may share is serialized by locks taken in the batch's transaction (see [`crate::sql::Db::lock`]):
//! first every identifier the batch's events carry (so a binding and an event of the same
//! openid never miss each other), then the openids of the events a binding re-keys, then every
//! member the batch touches (in [`crate::members`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Tz;
use liandong_event::props::PERSONAL_DATA_KEYS;
use liandong_event::{Event, EventType, OpenidKind};
use liandong_store::StoreError;
use liandong_vault::Vault;
use serde::Serialize;
use serde_json::Value;

use crate::erasure;
use crate::member_personal::{self, PersonalDb, PersonalFact};
use crate::member_profile::ts;
use crate::members::{self, Changes, Moved};
use crate::sql::{self, json, Db, Statement, Ty};
use crate::traffic::{self, TrafficCounts};
use crate::{Projection, Tx};

/// The projection of `events`, `member_identity` and `member_profile`.
pub struct CoreProjection {
    tz: Tz,
    vault: Arc<Vault>,
}

impl CoreProjection {
    /// `tz` decides the `day` of an event (LIANDONG_TIMEZONE); `vault` makes the hashes of the
    /// erasure registry and the analysts' pseudonyms.
    pub fn new(tz: Tz, vault: Arc<Vault>) -> Self {
        CoreProjection { tz, vault }
    }
}

#[async_trait]
impl Projection for CoreProjection {
    fn name(&self) -> &'static str {
        "core"
    }

    fn version(&self) -> i32 {
        // 2: the metrics read models (issue 3) joined the projection.
        // 3: erasure (skipped identifiers, member.erased) and member_pseudonym (issue 6).
        // 4: member_personal and fact_personal, the sealed phone and address (issue 6).
        // 5: merged instead of refolded (member_order, the deciders of member_profile, ab_counts).
        // 6: ab_readout on five surfaces; metric_message_daily and metric_activity (issue 14).
        // 7: member_interest (issue 15).
        // 8: activity_counts keeps the groups started and completed (metric_activity read
        //    every group of every campaign).
        8
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "member_personal",
            "fact_personal",
            "member_profile",
            "events",
            "member_identity",
            "metric_menu_entry_daily",
            "metric_article_daily",
            "fact_member_day",
            "metric_linkage_daily",
            "fact_conversion",
            "retention_repurchase_30d_counts",
            "fact_follower",
            "retention_follower_30d_counts",
            "fact_member_week",
            "retention_weekly_counts",
            "fact_experiment",
            "ab_counts",
            "ab_readout",
            "fact_message",
            "metric_message_daily",
            "fact_activity",
            "fact_activity_group",
            "fact_activity_order",
            "activity_counts",
            "activity_group_counts",
            "member_order",
            "member_interest",
            "member_pseudonym",
        ]
    }

    async fn apply(&self, tx: Tx<'_>, events: &[Event]) -> Result<(), StoreError> {
        match tx {
            Tx::Postgres(c) => apply(c, self.tz, &self.vault, events).await,
            Tx::Sqlite(c) => apply(c, self.tz, &self.vault, events).await,
        }
    }
}

/// A row of `events`, in the JSON form both dialects read as a record set.
#[derive(Debug, Serialize)]
struct EventRow<'a> {
    event_id: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    occurred_at: String,
    received_at: String,
    day: NaiveDate,
    member_key: String,
    unionid: Option<String>,
    oa_openid: Option<&'a str>,
    mp_openid: Option<&'a str>,
    source_from: Option<String>,
    source_type: Option<&'a str>,
    source_id: Option<&'a str>,
    scene: Option<i64>,
    props: Value,
    source_extra: Option<Value>,
    context: Option<Value>,
    schema_version: u32,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct BindingRow<'a> {
    kind: &'static str,
    openid: &'a str,
    unionid: &'a str,
}

#[derive(Debug, Serialize)]
struct RekeyRow {
    event_id: String,
    member_key: String,
    unionid: Option<String>,
}

type Bindings = HashMap<(String, String), String>;

fn unionid_of(member_key: &str) -> Option<String> {
    // Openid-only keys are `oa:…`/`mp:…`; a unionid never contains ':' (EVENTS.md charset).
    (!member_key.contains(':')).then(|| member_key.to_owned())
}

/// The final member of an event with these identifiers, given the bindings known.
fn resolve(
    unionid: Option<&str>,
    oa: Option<&str>,
    mp: Option<&str>,
    bindings: &Bindings,
) -> String {
    let bound = |kind: OpenidKind, o: Option<&str>| {
        o.and_then(|o| bindings.get(&(kind.as_str().to_owned(), o.to_owned())))
    };
    if let Some(u) = unionid {
        return u.to_owned();
    }
    if let Some(u) = bound(OpenidKind::Oa, oa).or_else(|| bound(OpenidKind::Mp, mp)) {
        return u.clone();
    }
    match (oa, mp) {
        (Some(o), _) => OpenidKind::Oa.member_key(o),
        (None, Some(m)) => OpenidKind::Mp.member_key(m),
        (None, None) => String::new(),
    }
}

async fn apply<C: CoreDb + Db + PersonalDb + Send>(
    db: &mut C,
    tz: Tz,
    vault: &Vault,
    events: &[Event],
) -> Result<(), StoreError> {
    // 0. Events of erased identifiers are skipped; `member.erased` is applied after the rest
    //    of the batch, so it also removes what the batch itself brought of the member.
    let (erasures, others): (Vec<&Event>, Vec<&Event>) = events
        .iter()
        .partition(|e| e.event_type == EventType::MemberErased);
    // Every lock the batch will most likely need, in one sorted acquisition: its identifiers
    // and the unionids their openids are bound to (the members its events belong to). Locks
    // taken later, one set after another, can deadlock with another batch's; these cover all
    // but the members a binding of this batch re-keys events away from.
    let mut identifiers: BTreeSet<String> = events
        .iter()
        .flat_map(|e| erasure::MemberIds::of_user(&e.user).member_keys())
        .collect();
    let openids: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| [e.user.oa_openid.as_deref(), e.user.mp_openid.as_deref()])
        .flatten()
        .collect();
    if !openids.is_empty() {
        identifiers.extend(
            db.bindings_of_openids(&json(&openids))
                .await?
                .into_iter()
                .map(|(_, _, unionid)| unionid),
        );
    }
    db.lock(&json(&identifiers)).await?;
    let kept = erasure::skip_erased(db, vault, others).await?;
    let changes = apply_events(db, tz, &kept).await?;
    members::apply(db, tz, vault, changes).await?;
    if !erasures.is_empty() {
        let touched = erasure::erase(db, vault, &erasures).await?;
        members::recompute(db, tz, vault, touched).await?;
    }
    Ok(())
}

/// Steps 1 to 4: bindings, events, retroactive re-keying. Returns what changed in `events`.
async fn apply_events<C: CoreDb + Db + PersonalDb + Send>(
    db: &mut C,
    tz: Tz,
    events: &[&Event],
) -> Result<Changes, StoreError> {
    // 1. The bindings the batch carries.
    let mut bindings: BTreeSet<BindingRow> = BTreeSet::new();
    for e in events {
        if let Some((unionid, openids)) = e.user.bindings() {
            for (kind, openid) in openids {
                bindings.insert(BindingRow {
                    kind: kind.as_str(),
                    openid,
                    unionid,
                });
            }
        }
    }
    let newly_bound = if bindings.is_empty() {
        Vec::new()
    } else {
        db.insert_bindings(&json(&bindings)).await?
    };

    // 2. Every binding that matters to the batch's openids.
    let openids: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| [e.user.oa_openid.as_deref(), e.user.mp_openid.as_deref()])
        .flatten()
        .collect();
    let known: Bindings = if openids.is_empty() {
        HashMap::new()
    } else {
        db.bindings_of_openids(&json(&openids))
            .await?
            .into_iter()
            .map(|(k, o, u)| ((k, o), u))
            .collect()
    };

    // 3. The events, each under its final member.
    let mut seen_ids = BTreeSet::new();
    let unique: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| seen_ids.insert(e.event_id))
        .collect();
    let rows: Vec<EventRow> = unique.iter().map(|e| event_row(e, tz, &known)).collect();
    let mut changes = Changes::default();
    if !rows.is_empty() {
        let inserted = db.insert_events(&json(&rows)).await?;
        // Event counts take only events new to the store: a redelivered event counts once.
        let new_ids: HashMap<String, String> = inserted.into_iter().collect();
        let mut traffic = TrafficCounts::default();
        let mut personal = Vec::new();
        for e in &unique {
            let Some(key) = new_ids.get(&e.event_id.to_string()) else {
                continue;
            };
            traffic.add(e, tz);
            personal.extend(PersonalFact::of(e));
            changes
                .added
                .entry(key.clone())
                .or_default()
                .push(members::profile_event(e));
        }
        traffic::count(db, &traffic).await?;
        member_personal::insert_facts(db, &personal).await?;
    }

    // 4. Retroactive bindings: events stored under a bare openid that is now bound. Their
    //    openids are locked first: no other batch may bind them or add events under them
    //    while this one decides where the events belong.
    if !newly_bound.is_empty() {
        let oa: Vec<&str> = newly_bound
            .iter()
            .filter(|(k, _)| k == "oa")
            .map(|(_, o)| o.as_str())
            .collect();
        let mp: Vec<&str> = newly_bound
            .iter()
            .filter(|(k, _)| k == "mp")
            .map(|(_, o)| o.as_str())
            .collect();
        let stale = db.events_to_rekey(&json(&oa), &json(&mp)).await?;
        let mut all_openids: BTreeSet<String> = BTreeSet::new();
        let mut stale_ids: BTreeSet<String> = BTreeSet::new();
        for (_, o, m, _) in &stale {
            all_openids.extend(o.iter().chain(m.iter()).cloned());
            stale_ids.extend(o.iter().map(|o| OpenidKind::Oa.member_key(o)));
            stale_ids.extend(m.iter().map(|m| OpenidKind::Mp.member_key(m)));
        }
        db.lock(&json(&stale_ids)).await?;
        let bound: Bindings = if all_openids.is_empty() {
            HashMap::new()
        } else {
            db.bindings_of_openids(&json(&all_openids))
                .await?
                .into_iter()
                .map(|(k, o, u)| ((k, o), u))
                .collect()
        };
        let mut moves = Vec::new();
        for (event_id, o, m, old_key) in stale {
            let new_key = resolve(None, o.as_deref(), m.as_deref(), &bound);
            if new_key != old_key {
                moves.push(RekeyRow {
                    event_id: event_id.clone(),
                    unionid: unionid_of(&new_key),
                    member_key: new_key.clone(),
                });
                changes.moved.push(Moved {
                    event_id,
                    from: old_key,
                });
            }
        }
        if !moves.is_empty() {
            db.rekey(&json(&moves)).await?;
        }
    }

    Ok(changes)
}

fn event_row<'a>(e: &'a Event, tz: Tz, bindings: &Bindings) -> EventRow<'a> {
    let member_key = resolve(
        e.user.unionid.as_deref(),
        e.user.oa_openid.as_deref(),
        e.user.mp_openid.as_deref(),
        bindings,
    );
    let mut props = e.props.clone();
    if e.event_type == EventType::MemberProfileUpdated {
        // Personal data never leaves the log in plaintext (EVENTS.md, "Personal data").
        // Ingestion moves it to `sealed`; an event logged before it did is dropped here.
        for k in PERSONAL_DATA_KEYS {
            props.remove(*k);
        }
    }
    let source = e.source.as_ref();
    let occurred = e.occurred_utc();
    EventRow {
        event_id: e.event_id.to_string(),
        event_type: e.event_type.as_str(),
        occurred_at: ts(&occurred),
        received_at: ts(&e.received_at),
        day: occurred.with_timezone(&tz).date_naive(),
        unionid: unionid_of(&member_key),
        member_key,
        oa_openid: e.user.oa_openid.as_deref(),
        mp_openid: e.user.mp_openid.as_deref(),
        source_from: e.resolved_from(),
        source_type: source.and_then(|s| s.source_type.as_deref()),
        source_id: source.and_then(|s| s.id.as_deref()),
        scene: e.scene,
        props: Value::Object(props),
        source_extra: source
            .filter(|s| !s.extra.is_empty())
            .map(|s| Value::Object(s.extra.clone())),
        context: e.context.clone().map(Value::Object),
        schema_version: e.schema_version,
    }
}

type StaleRow = (String, Option<String>, Option<String>, String);

const EVENT_COLUMNS: sql::Columns = &[
    ("event_id", Ty::Uuid),
    ("type", Ty::Text),
    ("occurred_at", Ty::Ts),
    ("received_at", Ty::Ts),
    ("day", Ty::Date),
    ("member_key", Ty::Text),
    ("unionid", Ty::Text),
    ("oa_openid", Ty::Text),
    ("mp_openid", Ty::Text),
    ("source_from", Ty::Text),
    ("source_type", Ty::Text),
    ("source_id", Ty::Text),
    ("scene", Ty::Int),
    ("props", Ty::Json),
    ("source_extra", Ty::Json),
    ("context", Ty::Json),
    ("schema_version", Ty::Int),
];

static INSERT_BINDINGS: Statement = Statement::new(|d| {
    format!(
        "{} ON CONFLICT DO NOTHING RETURNING kind, openid",
        sql::insert(
            d,
            "member_identity",
            &[
                ("kind", Ty::Text),
                ("openid", Ty::Text),
                ("unionid", Ty::Text)
            ]
        )
    )
});
static BINDINGS_OF_OPENIDS: Statement = Statement::new(|d| {
    format!(
        "SELECT kind, openid, unionid FROM member_identity WHERE openid IN {}",
        sql::values(d, 1)
    )
});
static INSERT_EVENTS: Statement = Statement::new(|d| {
    format!(
        "{} ON CONFLICT (event_id) DO NOTHING RETURNING {}, member_key",
        sql::insert(d, "events", EVENT_COLUMNS),
        sql::text(d, "event_id")
    )
});
static EVENTS_TO_REKEY: Statement = Statement::new(|d| {
    format!(
        "SELECT {}, oa_openid, mp_openid, member_key FROM events
         WHERE (oa_openid IN {} OR mp_openid IN {}) AND (member_key LIKE 'oa:%' OR member_key LIKE 'mp:%')",
        sql::text(d, "event_id"),
        sql::values(d, 1),
        sql::values(d, 2)
    )
});
static REKEY: Statement = Statement::new(|d| {
    format!(
        "UPDATE events SET member_key = x.member_key, unionid = x.unionid FROM {} WHERE events.event_id = x.event_id",
        sql::records(
            d,
            1,
            "x",
            &[("event_id", Ty::Uuid), ("member_key", Ty::Text), ("unionid", Ty::Text)]
        )
    )
});

/// The statements of `events` and `member_identity`, on a connection of either store. Every
/// argument is a JSON array: one round trip per statement, whatever the batch size.
#[async_trait]
trait CoreDb {
    /// Inserts bindings; returns (kind, openid) of those that were new.
    async fn insert_bindings(&mut self, rows: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// (kind, openid, unionid) of the given openids.
    async fn bindings_of_openids(
        &mut self,
        openids: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Inserts events; returns (event_id, member_key) of those that were new.
    async fn insert_events(&mut self, rows: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// (event_id, oa_openid, mp_openid, member_key) of events under a bare openid key that
    /// carry one of the given openids.
    async fn events_to_rekey(&mut self, oa: &str, mp: &str) -> Result<Vec<StaleRow>, StoreError>;
    async fn rekey(&mut self, rows: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<C: Db> CoreDb for C {
    async fn insert_bindings(&mut self, rows: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.fetch(&INSERT_BINDINGS, &[rows]).await
    }
    async fn bindings_of_openids(
        &mut self,
        openids: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        self.fetch(&BINDINGS_OF_OPENIDS, &[openids]).await
    }
    async fn insert_events(&mut self, rows: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.fetch(&INSERT_EVENTS, &[rows]).await
    }
    async fn events_to_rekey(&mut self, oa: &str, mp: &str) -> Result<Vec<StaleRow>, StoreError> {
        self.fetch(&EVENTS_TO_REKEY, &[oa, mp]).await
    }
    async fn rekey(&mut self, rows: &str) -> Result<(), StoreError> {
        self.exec(&REKEY, &[rows]).await.map(drop)
    }
}
