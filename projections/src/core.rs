//! The projection `core`: the `events` table, the identity bindings, `member_profile`, and the
//! sealed personal data (`member_personal`, see [`crate::member_personal`]).
//!
//! A batch is applied in six set-based statements, whatever its size: insert the bindings the
//! batch carries; resolve every event's member (own unionid, else the OA openid's binding, else
//! the MP openid's, else `oa:`/`mp:` the openid); insert the events (a known event_id changes
//! nothing); re-key earlier events whose openid was bound just now (the binding is retroactive);
//! then refold the profile of every member the batch touched, from that member's stored events.
//! Each step depends only on the set of events stored, never on their order of arrival.
//!
//! Before that, events carrying an erased identifier are dropped (the erasure registry, see
//! [`crate::erasure`]); after it, the batch's `member.erased` events remove their members, and
//! the members they touched are refolded the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use liandong_event::props::PERSONAL_DATA_KEYS;
use liandong_event::{Event, EventType, OpenidKind};
use liandong_store::StoreError;
use liandong_vault::{Purpose, Vault};
use serde::Serialize;
use serde_json::Value;

use crate::erasure::{self, ErasureDb};
use crate::facts;
use crate::member_personal::{self, PersonalDb, PersonalFact};
use crate::member_profile::{self, ts, Identity, MemberProfile, ProfileEvent};
use crate::metrics::{self, MetricsDb, TrafficCounts};
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
        4
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
            "ab_readout",
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

async fn apply<C: CoreDb + MetricsDb + ErasureDb + PersonalDb + Send>(
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
    let kept = erasure::skip_erased(db, vault, others).await?;
    let touched = apply_events(db, tz, &kept).await?;
    refold(db, tz, vault, touched).await?;
    if !erasures.is_empty() {
        let touched = erasure::erase(db, vault, &erasures).await?;
        refold(db, tz, vault, touched).await?;
    }
    Ok(())
}

/// Steps 1 to 4: bindings, events, retroactive re-keying. Returns the member keys to refold.
async fn apply_events<C: CoreDb + MetricsDb + PersonalDb + Send>(
    db: &mut C,
    tz: Tz,
    events: &[&Event],
) -> Result<BTreeSet<String>, StoreError> {
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
    let mut touched: BTreeSet<String> = BTreeSet::new();
    if !rows.is_empty() {
        let inserted = db.insert_events(&json(&rows)).await?;
        // Event counts take only events new to the store: a redelivered event counts once.
        let new_ids: BTreeSet<&str> = inserted.iter().map(|(id, _)| id.as_str()).collect();
        let mut traffic = TrafficCounts::default();
        let mut personal = Vec::new();
        for e in unique
            .iter()
            .filter(|e| new_ids.contains(e.event_id.to_string().as_str()))
        {
            traffic.add(e, tz);
            personal.extend(PersonalFact::of(e));
        }
        metrics::count_traffic(db, &traffic).await?;
        member_personal::insert_facts(db, &personal).await?;
        touched.extend(inserted.into_iter().map(|(_, key)| key));
    }

    // 4. Retroactive bindings: events stored under a bare openid that is now bound.
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
        for (_, o, m, _) in &stale {
            all_openids.extend(o.iter().chain(m.iter()).cloned());
        }
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
                touched.insert(old_key);
                touched.insert(new_key.clone());
                moves.push(RekeyRow {
                    event_id,
                    unionid: unionid_of(&new_key),
                    member_key: new_key,
                });
            }
        }
        if !moves.is_empty() {
            db.rekey(&json(&moves)).await?;
        }
    }

    Ok(touched)
}

/// Step 5: refolds the profile, facts and pseudonym of every touched member from its stored
/// events (a member without events loses them), and recounts the aggregates the facts move.
async fn refold<C: CoreDb + MetricsDb + PersonalDb + Send>(
    db: &mut C,
    tz: Tz,
    vault: &Vault,
    touched: BTreeSet<String>,
) -> Result<(), StoreError> {
    if touched.is_empty() {
        return Ok(());
    }
    let keys = json(&touched);
    let seen: HashMap<String, (DateTime<Utc>, DateTime<Utc>)> = db
        .seen_range(&keys)
        .await?
        .into_iter()
        .map(|(k, first, last)| Ok((k, (parse_ts(&first)?, parse_ts(&last)?))))
        .collect::<Result<_, StoreError>>()?;
    let mut by_member: BTreeMap<String, Vec<ProfileEvent>> = BTreeMap::new();
    for (key, event_id, ty, at, from, props) in db.member_events(&keys).await? {
        let Ok(event_type) = ty.parse::<EventType>() else {
            continue;
        };
        by_member.entry(key).or_default().push(ProfileEvent {
            event_id,
            event_type,
            occurred_at: parse_ts(&at)?,
            source_from: from,
            props: serde_json::from_str(&props).unwrap_or(Value::Null),
        });
    }
    let unionids: Vec<&str> = touched
        .iter()
        .filter(|k| !k.contains(':'))
        .map(String::as_str)
        .collect();
    let mut identities: HashMap<String, Identity> = HashMap::new();
    if !unionids.is_empty() {
        for (kind, openid, unionid) in db.bindings_of_unionids(&json(&unionids)).await? {
            let id = identities.entry(unionid).or_default();
            let slot = if kind == "oa" {
                &mut id.oa_openid
            } else {
                &mut id.mp_openid
            };
            // Deterministic when (against the invariant) two openids of a kind share a unionid.
            if slot.as_ref().is_none_or(|s| openid < *s) {
                *slot = Some(openid);
            }
        }
    }
    let mut facts = Vec::with_capacity(touched.len());
    let profiles: Vec<MemberProfile> = touched
        .iter()
        .filter_map(|key| {
            let seen = *seen.get(key)?;
            let mut identity = identities.remove(key).unwrap_or_default();
            match key.split_once(':') {
                Some(("oa", o)) => identity.oa_openid = Some(o.to_owned()),
                Some(("mp", m)) => identity.mp_openid = Some(m.to_owned()),
                _ => identity.unionid = Some(key.clone()),
            }
            let events = by_member.remove(key).unwrap_or_default();
            facts.push((key.clone(), facts::fold(&events, tz)));
            Some(member_profile::fold(key, identity, seen, &events))
        })
        .collect();
    db.replace_profiles(&keys, &json(&profiles)).await?;
    member_personal::refold(db, &keys).await?;
    let pseudonyms: Vec<PseudonymRow> = profiles
        .iter()
        .map(|p| PseudonymRow {
            pseudonym: vault.keyed_hash(Purpose::Pseudonym, &p.member_key),
            member_key: &p.member_key,
        })
        .collect();
    db.replace_pseudonyms(&keys, &json(&pseudonyms)).await?;
    metrics::replace_facts(db, &keys, &facts).await
}

#[derive(Debug, Serialize)]
struct PseudonymRow<'a> {
    member_key: &'a str,
    pseudonym: String,
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

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    // Serializing plain data structs and strings cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("time {s:?}: {e}").into())))
}

type StaleRow = (String, Option<String>, Option<String>, String);
type ProfileRow = (String, String, String, String, Option<String>, String);

/// The statements of the core projection, once per dialect. Every argument is a JSON array
/// (text): one round trip per statement, whatever the batch size.
#[async_trait]
trait CoreDb {
    /// Inserts bindings; returns (kind, openid) of those that were new.
    async fn insert_bindings(&mut self, rows: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// (kind, openid, unionid) of the given openids.
    async fn bindings_of_openids(
        &mut self,
        openids: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// (kind, openid, unionid) bound to the given unionids.
    async fn bindings_of_unionids(
        &mut self,
        unionids: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Inserts events; returns (event_id, member_key) of those that were new.
    async fn insert_events(&mut self, rows: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// (event_id, oa_openid, mp_openid, member_key) of events under a bare openid key that
    /// carry one of the given openids.
    async fn events_to_rekey(&mut self, oa: &str, mp: &str) -> Result<Vec<StaleRow>, StoreError>;
    async fn rekey(&mut self, rows: &str) -> Result<(), StoreError>;
    /// (member_key, earliest, latest occurred_at) of the given members.
    async fn seen_range(&mut self, keys: &str)
        -> Result<Vec<(String, String, String)>, StoreError>;
    /// (member_key, event_id, type, occurred_at, source_from, props) of the given members' events.
    async fn member_events(&mut self, keys: &str) -> Result<Vec<ProfileRow>, StoreError>;
    /// Replaces the profiles of `keys` by `rows` (a key without a row loses its profile).
    async fn replace_profiles(&mut self, keys: &str, rows: &str) -> Result<(), StoreError>;
    /// Keeps `member_pseudonym` to the members of `keys` that have a profile (`rows`).
    async fn replace_pseudonyms(&mut self, keys: &str, rows: &str) -> Result<(), StoreError>;
}

struct Sql {
    insert_bindings: &'static str,
    bindings_of_openids: &'static str,
    bindings_of_unionids: &'static str,
    insert_events: &'static str,
    events_to_rekey: &'static str,
    rekey: &'static str,
    seen_range: &'static str,
    member_events: &'static str,
    delete_profiles: &'static str,
    insert_profiles: &'static str,
    delete_pseudonyms: &'static str,
    insert_pseudonyms: &'static str,
}

const PG: Sql = Sql {
    insert_bindings: "INSERT INTO member_identity (kind, openid, unionid)
        SELECT kind, openid, unionid FROM jsonb_to_recordset($1::jsonb) AS x(kind text, openid text, unionid text)
        ON CONFLICT DO NOTHING RETURNING kind, openid",
    bindings_of_openids: "SELECT kind, openid, unionid FROM member_identity
        WHERE openid IN (SELECT jsonb_array_elements_text($1::jsonb))",
    bindings_of_unionids: "SELECT kind, openid, unionid FROM member_identity
        WHERE unionid IN (SELECT jsonb_array_elements_text($1::jsonb))",
    insert_events: "INSERT INTO events (event_id, type, occurred_at, received_at, day, member_key, unionid,
            oa_openid, mp_openid, source_from, source_type, source_id, scene, props, source_extra, context, schema_version)
        SELECT event_id, type, occurred_at, received_at, day, member_key, unionid,
            oa_openid, mp_openid, source_from, source_type, source_id, scene, props, source_extra, context, schema_version
        FROM jsonb_to_recordset($1::jsonb) AS x(event_id uuid, type text, occurred_at timestamptz,
            received_at timestamptz, day date, member_key text, unionid text, oa_openid text, mp_openid text,
            source_from text, source_type text, source_id text, scene bigint, props jsonb, source_extra jsonb,
            context jsonb, schema_version int)
        ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text, member_key",
    events_to_rekey: "SELECT event_id::text, oa_openid, mp_openid, member_key FROM events
        WHERE (oa_openid IN (SELECT jsonb_array_elements_text($1::jsonb))
            OR mp_openid IN (SELECT jsonb_array_elements_text($2::jsonb)))
          AND (member_key LIKE 'oa:%' OR member_key LIKE 'mp:%')",
    rekey: "UPDATE events e SET member_key = x.member_key, unionid = x.unionid
        FROM jsonb_to_recordset($1::jsonb) AS x(event_id uuid, member_key text, unionid text)
        WHERE e.event_id = x.event_id",
    seen_range: "SELECT member_key,
            to_char(min(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
            to_char(max(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
        FROM events WHERE member_key IN (SELECT jsonb_array_elements_text($1::jsonb)) GROUP BY member_key",
    member_events: "SELECT member_key, event_id::text, type,
            to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), source_from, props::text
        FROM events WHERE member_key IN (SELECT jsonb_array_elements_text($1::jsonb))",
    delete_profiles: "DELETE FROM member_profile WHERE member_key IN (SELECT jsonb_array_elements_text($1::jsonb))",
    insert_profiles: "INSERT INTO member_profile (member_key, unionid, oa_openid, mp_openid, first_seen_at, last_seen_at,
            first_from, following, followed_at, follow_via, orders_paid, revenue_fen, first_paid_at, last_paid_at,
            coupons_claimed, coupons_redeemed, activity_notifications, last_prompt_at)
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(member_key text, unionid text, oa_openid text,
            mp_openid text, first_seen_at timestamptz, last_seen_at timestamptz, first_from text, following boolean,
            followed_at timestamptz, follow_via text, orders_paid bigint, revenue_fen bigint,
            first_paid_at timestamptz, last_paid_at timestamptz, coupons_claimed bigint, coupons_redeemed bigint,
            activity_notifications boolean, last_prompt_at timestamptz)",
    // A pseudonym is a function of the member key: a member that keeps its profile keeps its row.
    delete_pseudonyms: "DELETE FROM member_pseudonym WHERE member_key IN (SELECT jsonb_array_elements_text($1::jsonb))
        AND member_key NOT IN (SELECT x ->> 'member_key' FROM jsonb_array_elements($2::jsonb) AS x)",
    insert_pseudonyms: "INSERT INTO member_pseudonym (member_key, pseudonym)
        SELECT member_key, pseudonym FROM jsonb_to_recordset($1::jsonb) AS x(member_key text, pseudonym text)
        ON CONFLICT (member_key) DO NOTHING",
};

const SQLITE: Sql = Sql {
    insert_bindings: "INSERT INTO member_identity (kind, openid, unionid)
        SELECT value ->> 'kind', value ->> 'openid', value ->> 'unionid' FROM json_each($1) WHERE true
        ON CONFLICT DO NOTHING RETURNING kind, openid",
    bindings_of_openids: "SELECT kind, openid, unionid FROM member_identity
        WHERE openid IN (SELECT value FROM json_each($1))",
    bindings_of_unionids: "SELECT kind, openid, unionid FROM member_identity
        WHERE unionid IN (SELECT value FROM json_each($1))",
    insert_events: "INSERT INTO events (event_id, type, occurred_at, received_at, day, member_key, unionid,
            oa_openid, mp_openid, source_from, source_type, source_id, scene, props, source_extra, context, schema_version)
        SELECT value ->> 'event_id', value ->> 'type', value ->> 'occurred_at', value ->> 'received_at',
            value ->> 'day', value ->> 'member_key', value ->> 'unionid', value ->> 'oa_openid',
            value ->> 'mp_openid', value ->> 'source_from', value ->> 'source_type', value ->> 'source_id',
            value ->> 'scene', value -> 'props', nullif(value -> 'source_extra', 'null'),
            nullif(value -> 'context', 'null'), value ->> 'schema_version'
        FROM json_each($1) WHERE true
        ON CONFLICT (event_id) DO NOTHING RETURNING event_id, member_key",
    events_to_rekey: "SELECT event_id, oa_openid, mp_openid, member_key FROM events
        WHERE (oa_openid IN (SELECT value FROM json_each($1)) OR mp_openid IN (SELECT value FROM json_each($2)))
          AND (member_key LIKE 'oa:%' OR member_key LIKE 'mp:%')",
    rekey: "UPDATE events SET member_key = x.value ->> 'member_key', unionid = x.value ->> 'unionid'
        FROM json_each($1) AS x WHERE events.event_id = x.value ->> 'event_id'",
    seen_range: "SELECT member_key, min(occurred_at), max(occurred_at)
        FROM events WHERE member_key IN (SELECT value FROM json_each($1)) GROUP BY member_key",
    member_events: "SELECT member_key, event_id, type, occurred_at, source_from, props
        FROM events WHERE member_key IN (SELECT value FROM json_each($1))",
    delete_profiles: "DELETE FROM member_profile WHERE member_key IN (SELECT value FROM json_each($1))",
    insert_profiles: "INSERT INTO member_profile (member_key, unionid, oa_openid, mp_openid, first_seen_at, last_seen_at,
            first_from, following, followed_at, follow_via, orders_paid, revenue_fen, first_paid_at, last_paid_at,
            coupons_claimed, coupons_redeemed, activity_notifications, last_prompt_at)
        SELECT value ->> 'member_key', value ->> 'unionid', value ->> 'oa_openid', value ->> 'mp_openid',
            value ->> 'first_seen_at', value ->> 'last_seen_at', value ->> 'first_from', value ->> 'following',
            value ->> 'followed_at', value ->> 'follow_via', value ->> 'orders_paid', value ->> 'revenue_fen',
            value ->> 'first_paid_at', value ->> 'last_paid_at', value ->> 'coupons_claimed',
            value ->> 'coupons_redeemed', value ->> 'activity_notifications', value ->> 'last_prompt_at'
        FROM json_each($1) WHERE true",
    delete_pseudonyms: "DELETE FROM member_pseudonym WHERE member_key IN (SELECT value FROM json_each($1))
        AND member_key NOT IN (SELECT value ->> 'member_key' FROM json_each($2))",
    insert_pseudonyms: "INSERT INTO member_pseudonym (member_key, pseudonym)
        SELECT value ->> 'member_key', value ->> 'pseudonym' FROM json_each($1) WHERE true
        ON CONFLICT (member_key) DO NOTHING",
};

macro_rules! core_db {
    ($conn:ty, $sql:expr) => {
        #[async_trait]
        impl CoreDb for $conn {
            async fn insert_bindings(
                &mut self,
                rows: &str,
            ) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as($sql.insert_bindings)
                    .bind(rows)
                    .fetch_all(self)
                    .await?)
            }
            async fn bindings_of_openids(
                &mut self,
                openids: &str,
            ) -> Result<Vec<(String, String, String)>, StoreError> {
                Ok(sqlx::query_as($sql.bindings_of_openids)
                    .bind(openids)
                    .fetch_all(self)
                    .await?)
            }
            async fn bindings_of_unionids(
                &mut self,
                unionids: &str,
            ) -> Result<Vec<(String, String, String)>, StoreError> {
                Ok(sqlx::query_as($sql.bindings_of_unionids)
                    .bind(unionids)
                    .fetch_all(self)
                    .await?)
            }
            async fn insert_events(
                &mut self,
                rows: &str,
            ) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as($sql.insert_events)
                    .bind(rows)
                    .fetch_all(self)
                    .await?)
            }
            async fn events_to_rekey(
                &mut self,
                oa: &str,
                mp: &str,
            ) -> Result<Vec<StaleRow>, StoreError> {
                Ok(sqlx::query_as($sql.events_to_rekey)
                    .bind(oa)
                    .bind(mp)
                    .fetch_all(self)
                    .await?)
            }
            async fn rekey(&mut self, rows: &str) -> Result<(), StoreError> {
                sqlx::query($sql.rekey).bind(rows).execute(self).await?;
                Ok(())
            }
            async fn seen_range(
                &mut self,
                keys: &str,
            ) -> Result<Vec<(String, String, String)>, StoreError> {
                Ok(sqlx::query_as($sql.seen_range)
                    .bind(keys)
                    .fetch_all(self)
                    .await?)
            }
            async fn member_events(&mut self, keys: &str) -> Result<Vec<ProfileRow>, StoreError> {
                Ok(sqlx::query_as($sql.member_events)
                    .bind(keys)
                    .fetch_all(self)
                    .await?)
            }
            async fn replace_profiles(&mut self, keys: &str, rows: &str) -> Result<(), StoreError> {
                sqlx::query($sql.delete_profiles)
                    .bind(keys)
                    .execute(&mut *self)
                    .await?;
                sqlx::query($sql.insert_profiles)
                    .bind(rows)
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }
            async fn replace_pseudonyms(
                &mut self,
                keys: &str,
                rows: &str,
            ) -> Result<(), StoreError> {
                sqlx::query($sql.delete_pseudonyms)
                    .bind(keys)
                    .bind(rows)
                    .execute(&mut *self)
                    .await?;
                sqlx::query($sql.insert_pseudonyms)
                    .bind(rows)
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }
        }
    };
}

core_db!(sqlx::PgConnection, PG);
core_db!(sqlx::SqliteConnection, SQLITE);
