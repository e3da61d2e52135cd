//! `retention_follower_30d` (METRICS.md, "Retention"): members grouped by the day of their
//! earliest `oa.follow` with `via = mp_prompt` (`t0`), and those whose latest follow or unfollow
//! at or before `t0 + 30 days` is a follow.
//!
//! A member's row of `fact_follower` is recomputed only when a batch brings it a follow or an
//! unfollow: two probes of the `(member_key, type, occurred_at)` index (its first prompt follow;
//! its latest follow or unfollow up to the horizon), which read the member's follow events and
//! nothing else of its history. The cohort counts move by the difference.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;
use serde_json::json as j;

use crate::member_profile::{parse_ts, ts, ProfileEvent};
use crate::sql::{self, json, Db, Statement, Ty};
use crate::time::day_of;

/// The member's first follow through the MP prompt (a row of `fact_follower`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follower {
    pub t0: DateTime<Utc>,
    pub cohort_day: NaiveDate,
    pub retained: bool,
}

static FIRST: Statement = Statement::new(|d| {
    format!(
        "SELECT k.member_key, {} FROM {}",
        sql::ts_text(
            d,
            "(SELECT e.occurred_at FROM events e WHERE e.member_key = k.member_key AND e.type = 'oa.follow'
               AND e.props ->> 'via' = 'mp_prompt' ORDER BY e.occurred_at, e.event_id LIMIT 1)"
        ),
        sql::records(d, 1, "k", &[("member_key", Ty::Text)])
    )
});
static LATEST: Statement = Statement::new(|d| {
    format!(
        "SELECT k.member_key, (SELECT e.type FROM events e WHERE e.member_key = k.member_key
           AND e.type IN ('oa.follow', 'oa.unfollow') AND e.occurred_at <= k.horizon
           ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT 1) FROM {}",
        sql::records(d, 1, "k", &[("member_key", Ty::Text), ("horizon", Ty::Ts)])
    )
});
static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, retained FROM fact_follower WHERE member_key IN {}",
        sql::text(d, "cohort_day"),
        sql::values(d, 1)
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_follower WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static INSERT: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "fact_follower",
        &[
            ("member_key", Ty::Text),
            ("t0", Ty::Ts),
            ("cohort_day", Ty::Date),
            ("retained", Ty::Bool),
        ],
    )
});
static ADD: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "retention_follower_30d_counts",
        &["cohort_day"],
        &[
            ("cohort_day", Ty::Date),
            ("followers", Ty::Int),
            ("retained", Ty::Int),
        ],
    )
});
static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM retention_follower_30d_counts WHERE followers = 0 AND cohort_day IN (SELECT cohort_day FROM {})",
        sql::records(d, 1, "x", &[("cohort_day", Ty::Date)])
    )
});

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
struct Counts {
    followers: i64,
    retained: i64,
}

/// Recomputes the follower row of every member of `added` that got a follow or an unfollow,
/// and of every member in `reset` (whose old row is dropped first).
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    tz: Tz,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut dirty: BTreeSet<&str> = reset.iter().map(String::as_str).collect();
    for (key, events) in added {
        if events
            .iter()
            .any(|e| matches!(e.event_type, EventType::OaFollow | EventType::OaUnfollow))
        {
            dirty.insert(key);
        }
    }
    if dirty.is_empty() {
        return Ok(());
    }
    let keys: Vec<_> = dirty.iter().map(|k| j!({ "member_key": k })).collect();
    let mut first: Vec<(String, DateTime<Utc>)> = Vec::new();
    for (k, at) in db
        .fetch::<(String, Option<String>)>(&FIRST, &[&json(&keys)])
        .await?
    {
        if let Some(at) = at {
            first.push((k, parse_ts(&at)?));
        }
    }
    let mut new: Vec<(String, Follower)> = Vec::new();
    if !first.is_empty() {
        let horizons: Vec<_> = first
            .iter()
            .map(|(k, t)| j!({"member_key": k, "horizon": ts(&(*t + Duration::days(30)))}))
            .collect();
        let latest: BTreeMap<String, Option<String>> = db
            .fetch::<(String, Option<String>)>(&LATEST, &[&json(&horizons)])
            .await?
            .into_iter()
            .collect();
        for (k, t0) in first {
            let retained = latest
                .get(&k)
                .is_some_and(|t| t.as_deref() == Some(EventType::OaFollow.as_str()));
            new.push((
                k,
                Follower {
                    t0,
                    cohort_day: day_of(t0, tz),
                    retained,
                },
            ));
        }
    }

    let keys = json(&dirty);
    let mut deltas: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
    let old = db.fetch::<(String, String, bool)>(&OLD, &[&keys]).await?;
    for (_, day, retained) in &old {
        let day: NaiveDate = day
            .parse()
            .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("day {day:?}: {e}").into())))?;
        let c = deltas.entry(day).or_default();
        c.followers -= 1;
        c.retained -= i64::from(*retained);
    }
    for (_, f) in &new {
        let c = deltas.entry(f.cohort_day).or_default();
        c.followers += 1;
        c.retained += i64::from(f.retained);
    }
    if !old.is_empty() {
        db.exec(&DELETE, &[&keys]).await?;
    }
    if !new.is_empty() {
        let rows: Vec<_> = new
            .iter()
            .map(|(k, f)| j!({"member_key": k, "t0": ts(&f.t0), "cohort_day": f.cohort_day, "retained": f.retained}))
            .collect();
        db.exec(&INSERT, &[&json(&rows)]).await?;
    }
    let rows: Vec<_> = deltas
        .iter()
        .filter(|(_, c)| **c != Counts::default())
        .map(|(d, c)| j!({"cohort_day": d, "followers": c.followers, "retained": c.retained}))
        .collect();
    if !rows.is_empty() {
        db.exec(&ADD, &[&json(&rows)]).await?;
        let shrunk: Vec<_> = deltas
            .iter()
            .filter(|(_, c)| c.followers < 0)
            .map(|(d, _)| j!({ "cohort_day": d }))
            .collect();
        if !shrunk.is_empty() {
            db.exec(&DROP_EMPTY, &[&json(&shrunk)]).await?;
        }
    }
    Ok(())
}
