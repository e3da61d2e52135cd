//! The member-level read models of the core projection, updated from what a batch changed:
//! the events new to the store (under their final member), and the events a late binding moved
//! from an openid-only member (`oa:…`/`mp:…`) to a unionid.
//!
//! Each read model merges a member's new events into the rows it keeps of that member, reading
//! only those rows and the member's events inside the windows its definitions look at
//! (`member_profile`, `member_order`, `fact_member_day`, `fact_conversion`, `fact_follower`,
//! `fact_member_week`, `fact_experiment`, `fact_message`, `fact_activity`, `fact_activity_group`,
//! `fact_activity_order`). A member that lost events — the openid-only member a
//! binding emptied, or the members an erasure touched — is reset (its rows dropped, their
//! contributions taken off the counts) and its remaining events, the openid's own rows, merged
//! again. So an event costs work bounded by the rows it changes, and a binding costs the
//! openid's rows, once; no step reads a member's whole history.
//!
//! Concurrent batches (several projector processes on PostgreSQL) take a lock on every member
//! they touch before reading its rows, so two batches that share a member take turns; the
//! shared counts are commutative `+=` updates, and each A/B readout is locked by experiment.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use liandong_event::EventType;
use liandong_store::StoreError;
use liandong_vault::{Purpose, Vault};
use serde_json::{json as j, Value};

use crate::member_interest;
use crate::member_personal::{self, PersonalDb};
use crate::member_profile::{self, parse_ts, ProfileEvent};
use crate::sql::{self, json, Db, Statement};
use crate::{
    ab_readout, activity, linkage, messages, orders, retention_follower, retention_repurchase,
    retention_weekly,
};

/// An event a binding moved from an openid-only member to a unionid.
#[derive(Debug, Clone)]
pub(crate) struct Moved {
    pub event_id: String,
    pub from: String,
}

/// What a batch changed in `events`.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Events new to the store, by their member.
    pub added: BTreeMap<String, Vec<ProfileEvent>>,
    pub moved: Vec<Moved>,
}

type EventTuple = (String, String, String, String, Option<String>, String);

static EVENTS_BY_ID: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, type, {}, source_from, {} FROM events WHERE {} IN {}",
        sql::text(d, "event_id"),
        sql::ts_text(d, "occurred_at"),
        sql::text(d, "props"),
        sql::text(d, "event_id"),
        sql::values(d, 1)
    )
});
static EVENTS_OF: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, type, {}, source_from, {} FROM events WHERE member_key IN {}",
        sql::text(d, "event_id"),
        sql::ts_text(d, "occurred_at"),
        sql::text(d, "props"),
        sql::values(d, 1)
    )
});
static WITH_EVENTS: Statement = Statement::new(|d| {
    format!(
        "SELECT k.value FROM {} WHERE EXISTS (SELECT 1 FROM events e WHERE e.member_key = k.value)",
        match d {
            liandong_store::Dialect::Postgres =>
                "jsonb_array_elements_text($1::jsonb)".to_owned() + " AS k(value)",
            liandong_store::Dialect::Sqlite => "json_each($1) AS k".to_owned(),
        }
    )
});
static DELETE_PSEUDONYMS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM member_pseudonym WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static INSERT_PSEUDONYMS: Statement = Statement::new(|d| {
    format!(
        "{} ON CONFLICT (member_key) DO NOTHING",
        sql::insert(
            d,
            "member_pseudonym",
            &[("member_key", sql::Ty::Text), ("pseudonym", sql::Ty::Text)]
        )
    )
});

async fn read_events<C: Db>(
    db: &mut C,
    s: &Statement,
    arg: &str,
    into: &mut BTreeMap<String, Vec<ProfileEvent>>,
) -> Result<(), StoreError> {
    for (key, id, ty, at, from, props) in db.fetch::<EventTuple>(s, &[arg]).await? {
        let Ok(event_type) = ty.parse::<EventType>() else {
            continue;
        };
        into.entry(key).or_default().push(ProfileEvent {
            event_id: id,
            event_type,
            occurred_at: parse_ts(&at)?,
            source_from: from,
            props: serde_json::from_str(&props).unwrap_or(Value::Null),
        });
    }
    Ok(())
}

/// Updates the member-level read models from a batch's changes.
pub(crate) async fn apply<C: Db + PersonalDb>(
    db: &mut C,
    tz: Tz,
    vault: &Vault,
    changes: Changes,
) -> Result<(), StoreError> {
    let Changes { mut added, moved } = changes;
    let mut emptied: BTreeSet<String> = BTreeSet::new();
    if !moved.is_empty() {
        let ids: Vec<&str> = moved.iter().map(|m| m.event_id.as_str()).collect();
        read_events(db, &EVENTS_BY_ID, &json(&ids), &mut added).await?;
        emptied = moved.iter().map(|m| m.from.clone()).collect();
    }
    update(db, tz, vault, added, emptied).await
}

/// Recomputes `keys` from their stored events (members an erasure touched).
pub(crate) async fn recompute<C: Db + PersonalDb>(
    db: &mut C,
    tz: Tz,
    vault: &Vault,
    keys: BTreeSet<String>,
) -> Result<(), StoreError> {
    update(db, tz, vault, BTreeMap::new(), keys).await
}

/// Merges `added` into the members' rows, after resetting the members of `reset` and merging
/// their remaining events again.
async fn update<C: Db + PersonalDb>(
    db: &mut C,
    tz: Tz,
    vault: &Vault,
    mut added: BTreeMap<String, Vec<ProfileEvent>>,
    reset: BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut members: BTreeSet<&str> = added.keys().map(String::as_str).collect();
    members.extend(reset.iter().map(String::as_str));
    if members.is_empty() {
        return Ok(());
    }
    db.lock(&json(&members)).await?;

    let reset_json = json(&reset);
    if !reset.is_empty() {
        // The events left to a reset member are merged again, from nothing.
        let left: Vec<String> = db
            .fetch::<(String,)>(&WITH_EVENTS, &[&reset_json])
            .await?
            .into_iter()
            .map(|(k,)| k)
            .collect();
        if !left.is_empty() {
            for key in &left {
                added.remove(key);
            }
            read_events(db, &EVENTS_OF, &json(&left), &mut added).await?;
        }
        member_profile::reset(db, &reset_json).await?;
        orders::reset(db, &reset_json).await?;
        member_interest::reset(db, &reset_json).await?;
        db.exec(&DELETE_PSEUDONYMS, &[&reset_json]).await?;
    }

    let changed = orders::merge_paid(db, &added).await?;
    let guided = retention_repurchase::guided_orders(db, &changed).await?;
    orders::write(db, &changed, &guided).await?;
    let new_members = member_profile::update(db, &added, &changed).await?;
    retention_repurchase::update(db, tz, &added, &changed, &reset).await?;
    linkage::update(db, tz, &added, &changed, &reset).await?;
    retention_follower::update(db, tz, &added, &reset).await?;
    retention_weekly::update(db, tz, &added, &reset).await?;
    ab_readout::update(db, &added, &reset).await?;
    messages::update(db, tz, &added, &changed, &reset).await?;
    activity::update(db, &added, &changed, &reset).await?;
    member_interest::update(db, &added).await?;

    if !new_members.is_empty() {
        let rows: Vec<_> = new_members
            .iter()
            .map(|k| j!({"member_key": k, "pseudonym": vault.keyed_hash(Purpose::Pseudonym, k)}))
            .collect();
        db.exec(&INSERT_PSEUDONYMS, &[&json(&rows)]).await?;
    }
    let mut personal: BTreeSet<&str> = reset.iter().map(String::as_str).collect();
    for (key, events) in &added {
        if events
            .iter()
            .any(|e| e.event_type == EventType::MemberProfileUpdated)
        {
            personal.insert(key);
        }
    }
    if !personal.is_empty() {
        member_personal::refold(db, &json(&personal)).await?;
    }
    Ok(())
}

/// The fields of a new event the member-level read models read.
pub(crate) fn profile_event(e: &liandong_event::Event) -> ProfileEvent {
    let occurred_at: DateTime<Utc> = e.occurred_utc();
    ProfileEvent {
        event_id: e.event_id.to_string(),
        event_type: e.event_type,
        occurred_at,
        source_from: e.resolved_from(),
        props: Value::Object(e.props.clone()),
    }
}
