//! `retention_follower_30d` (METRICS.md, "Retention"): members grouped by the day of their
//! earliest `oa.follow` with `via = mp_prompt` (`t0`), and those whose latest follow or unfollow
//! at or before `t0 + 30 days` is a follow.
//!
//! A member's row of `fact_follower` is merged with the batch's follows and unfollows: `t0` is
//! the earlier of the stored one and the batch's prompt follows; `retained` is probed again (the
//! latest follow and the latest unfollow up to `t0 + 30 days`, one backward step of the
//! `(member_key, type, occurred_at)` index each) only when `t0` moved or an event lands before
//! the horizon. Nothing reads the member's history. The cohort counts move by the difference.

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

/// The type of the member's latest follow or unfollow up to the horizon: the later of two
/// backward probes of the `(member_key, type, occurred_at)` index, one per type.
static LATEST: Statement = Statement::new(|d| {
    let probe = |ty: &str| {
        format!(
            "SELECT e.occurred_at, {id} AS event_id, '{ty}' AS type FROM events e
             WHERE e.member_key = k.member_key AND e.type = '{ty}' AND e.occurred_at <= k.horizon
             ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT 1",
            id = sql::text(d, "e.event_id")
        )
    };
    format!(
        "SELECT k.member_key, (SELECT l.type FROM (SELECT * FROM ({}) AS f UNION ALL SELECT * FROM ({}) AS u) AS l
           ORDER BY l.occurred_at DESC, l.event_id DESC LIMIT 1) FROM {}",
        probe("oa.follow"),
        probe("oa.unfollow"),
        sql::records(d, 1, "k", &[("member_key", Ty::Text), ("horizon", Ty::Ts)])
    )
});
static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, {}, retained FROM fact_follower WHERE member_key IN {}",
        sql::ts_text(d, "t0"),
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

/// Merges the batch's follows and unfollows into the follower rows: `t0` is the earliest prompt
/// follow (the stored one, or one of the batch's: a member's stored prompt follows are all
/// behind its stored row), and `retained` is probed again only when `t0` moved or the batch
/// brings a follow or unfollow at or before `t0 + 30 days`. Members in `reset` start from
/// nothing (their old row is taken off the counts).
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    tz: Tz,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut candidates: BTreeMap<&str, Vec<&ProfileEvent>> = BTreeMap::new();
    for (key, events) in added {
        let follows: Vec<&ProfileEvent> = events
            .iter()
            .filter(|e| matches!(e.event_type, EventType::OaFollow | EventType::OaUnfollow))
            .collect();
        if !follows.is_empty() {
            candidates.insert(key, follows);
        }
    }
    let mut dirty: BTreeSet<&str> = candidates.keys().copied().collect();
    dirty.extend(reset.iter().map(String::as_str));
    if dirty.is_empty() {
        return Ok(());
    }
    let keys = json(&dirty);
    let old = db
        .fetch::<(String, String, String, bool)>(&OLD, &[&keys])
        .await?;
    let mut stored: BTreeMap<String, Follower> = BTreeMap::new();
    for (k, t0, day, retained) in &old {
        let cohort_day: NaiveDate = day
            .parse()
            .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("day {day:?}: {e}").into())))?;
        stored.insert(
            k.clone(),
            Follower {
                t0: parse_ts(t0)?,
                cohort_day,
                retained: *retained,
            },
        );
    }
    let mut probe: Vec<(String, DateTime<Utc>)> = Vec::new();
    let mut new: Vec<(String, Follower)> = Vec::new();
    for key in &dirty {
        let before = if reset.contains(*key) {
            None
        } else {
            stored.get(*key)
        };
        let events = candidates.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let prompt = events
            .iter()
            .filter(|e| {
                e.event_type == EventType::OaFollow
                    && e.props.get("via").and_then(|v| v.as_str()) == Some("mp_prompt")
            })
            .map(|e| e.occurred_at)
            .min();
        let t0 = match (before.map(|f| f.t0), prompt) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => continue,
            },
        };
        let unchanged = before.is_some_and(|f| {
            f.t0 == t0
                && !events
                    .iter()
                    .any(|e| e.occurred_at <= t0 + Duration::days(30))
        });
        match before {
            Some(f) if unchanged => new.push(((*key).to_owned(), f.clone())),
            _ => probe.push(((*key).to_owned(), t0)),
        }
    }
    if !probe.is_empty() {
        let horizons: Vec<_> = probe
            .iter()
            .map(|(k, t)| j!({"member_key": k, "horizon": ts(&(*t + Duration::days(30)))}))
            .collect();
        let latest: BTreeMap<String, Option<String>> = db
            .fetch::<(String, Option<String>)>(&LATEST, &[&json(&horizons)])
            .await?
            .into_iter()
            .collect();
        for (k, t0) in probe {
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
    let old: Vec<(String, String, bool)> = old
        .into_iter()
        .map(|(k, _, day, retained)| (k, day, retained))
        .collect();
    // Rows that did not change are left alone.
    let same: BTreeSet<String> = new
        .iter()
        .filter(|(k, f)| !reset.contains(k) && stored.get(k) == Some(f))
        .map(|(k, _)| k.clone())
        .collect();
    let dirty: BTreeSet<&str> = dirty.into_iter().filter(|k| !same.contains(*k)).collect();
    let old: Vec<(String, String, bool)> = old
        .into_iter()
        .filter(|(k, _, _)| !same.contains(k))
        .collect();
    let new: Vec<(String, Follower)> = new.into_iter().filter(|(k, _)| !same.contains(k)).collect();
    if dirty.is_empty() {
        return Ok(());
    }
    let keys = json(&dirty);
    let mut deltas: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
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
