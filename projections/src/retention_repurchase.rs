//! `retention_repurchase_30d` (METRICS.md, "Retention"): members grouped by the day of their
//! linkage conversion `t0` — the earliest paid time of an order paid within 7 days after one of
//! their OA-guided visits — and those of them with another order paid in `(t0, t0 + 30 days]`.
//!
//! The orders that qualify are flagged `guided` in `member_order`: an order's flag is decided
//! when its paid time is (the member's guided visits in `(paid_at − 7 days, paid_at]`), and a
//! new guided visit at `g` flags the orders paid in `[g, g + 7 days)`. `t0` is then the first
//! guided order through the `(member_key, paid_at)` index, and the repurchase a look into the 30
//! days after it: a member's conversion costs a few index probes, never its history. The
//! cohort counts move by the difference of the old and new `fact_conversion` rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use liandong_event::source::is_oa_guided;
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;

use crate::member_profile::{parse_ts, ts, ProfileEvent};
use crate::orders::OrderChange;
use crate::sql::{self, json, Db, Statement, Ty};
use crate::time::{day_of, Ranges};

/// The member's linkage conversion (a row of `fact_conversion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub t0: DateTime<Utc>,
    pub cohort_day: NaiveDate,
    pub repurchased: bool,
}

/// Whether an order paid at `paid` is guided by one of the visits at `guided_visits`.
pub fn is_guided(paid: DateTime<Utc>, guided_visits: &[DateTime<Utc>]) -> bool {
    guided_visits
        .iter()
        .any(|g| *g <= paid && paid < *g + Duration::days(7))
}

static VISITS: Statement = Statement::new(|d| {
    format!(
        "SELECT e.member_key, {}, e.source_from
         FROM {} JOIN events e ON e.member_key = r.member_key AND e.occurred_at >= r.start AND e.occurred_at < r.stop
         WHERE e.type = 'mp.visit'",
        sql::ts_text(d, "e.occurred_at"),
        sql::records(d, 1, "r", Ranges::COLUMNS)
    )
});
static FLAG: Statement = Statement::new(|d| {
    format!(
        "UPDATE member_order AS o SET guided = true FROM {}
         WHERE o.member_key = r.member_key AND o.paid_at >= r.start AND o.paid_at < r.stop AND NOT o.guided",
        sql::records(d, 1, "r", Ranges::COLUMNS)
    )
});
static FIRST_GUIDED: Statement = Statement::new(|d| {
    format!(
        "SELECT k.member_key, o.order_id, {} FROM {} JOIN member_order o ON o.member_key = k.member_key
           AND o.order_id = (SELECT p.order_id FROM member_order p WHERE p.member_key = k.member_key AND p.guided
                             ORDER BY p.paid_at, p.order_id LIMIT 1)",
        sql::ts_text(d, "o.paid_at"),
        sql::records(d, 1, "k", &[("member_key", Ty::Text)])
    )
});
const T0: sql::Columns = &[
    ("member_key", Ty::Text),
    ("order_id", Ty::Text),
    ("t0", Ty::Ts),
    ("horizon", Ty::Ts),
];
static REPURCHASED: Statement = Statement::new(|d| {
    format!(
        "SELECT c.member_key FROM {} WHERE EXISTS (SELECT 1 FROM member_order o
           WHERE o.member_key = c.member_key AND o.order_id <> c.order_id AND o.paid_at > c.t0 AND o.paid_at <= c.horizon)",
        sql::records(d, 1, "c", T0)
    )
});
static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, repurchased FROM fact_conversion WHERE member_key IN {}",
        sql::text(d, "cohort_day"),
        sql::values(d, 1)
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_conversion WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
const FACT: sql::Columns = &[
    ("member_key", Ty::Text),
    ("t0", Ty::Ts),
    ("cohort_day", Ty::Date),
    ("repurchased", Ty::Bool),
];
static INSERT: Statement = Statement::new(|d| sql::insert(d, "fact_conversion", FACT));
const COUNTS: sql::Columns = &[
    ("cohort_day", Ty::Date),
    ("converted", Ty::Int),
    ("repurchased", Ty::Int),
];
static ADD: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "retention_repurchase_30d_counts",
        &["cohort_day"],
        COUNTS,
    )
});
static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM retention_repurchase_30d_counts WHERE converted = 0 AND cohort_day IN (SELECT cohort_day FROM {})",
        sql::records(d, 1, "x", &[("cohort_day", Ty::Date)])
    )
});

/// The changed orders that are guided: each one's member has a guided visit in the 7 days up
/// to its (new) paid time.
pub(crate) async fn guided_orders<C: Db + ?Sized>(
    db: &mut C,
    changes: &[OrderChange],
) -> Result<BTreeSet<(String, String)>, StoreError> {
    if changes.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut windows = Ranges::default();
    for c in changes {
        let p = c.new.paid_at;
        windows.add(
            &c.member_key,
            p - Duration::days(7),
            p + Duration::microseconds(1),
        );
    }
    let mut visits: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (key, at, from) in db
        .fetch::<(String, String, Option<String>)>(&VISITS, &[&windows.json()])
        .await?
    {
        if from.as_deref().is_some_and(is_oa_guided) {
            visits.entry(key).or_default().push(parse_ts(&at)?);
        }
    }
    Ok(changes
        .iter()
        .filter(|c| {
            visits
                .get(&c.member_key)
                .is_some_and(|v| is_guided(c.new.paid_at, v))
        })
        .map(|c| (c.member_key.clone(), c.order_id.clone()))
        .collect())
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
struct Counts {
    converted: i64,
    repurchased: i64,
}

/// Flags the orders the batch's guided visits qualify, then recomputes the conversion of every
/// member whose orders or guided visits changed.
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    tz: Tz,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    orders: &[OrderChange],
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut windows = Ranges::default();
    let mut dirty: BTreeSet<&str> = orders.iter().map(|o| o.member_key.as_str()).collect();
    dirty.extend(reset.iter().map(String::as_str));
    for (key, events) in added {
        for e in events.iter().filter(|e| {
            e.event_type == EventType::MpVisit && e.source_from.as_deref().is_some_and(is_oa_guided)
        }) {
            windows.add(key, e.occurred_at, e.occurred_at + Duration::days(7));
            dirty.insert(key);
        }
    }
    if !windows.is_empty() {
        db.exec(&FLAG, &[&windows.json()]).await?;
    }
    if dirty.is_empty() {
        return Ok(());
    }
    let keys: Vec<serde_json::Value> = dirty
        .iter()
        .map(|k| serde_json::json!({ "member_key": k }))
        .collect();
    let mut t0: Vec<(String, String, DateTime<Utc>)> = Vec::new();
    for (key, order, at) in db
        .fetch::<(String, String, String)>(&FIRST_GUIDED, &[&json(&keys)])
        .await?
    {
        t0.push((key, order, parse_ts(&at)?));
    }
    let repurchased: BTreeSet<String> = if t0.is_empty() {
        BTreeSet::new()
    } else {
        let rows: Vec<serde_json::Value> = t0
            .iter()
            .map(|(k, o, t)| {
                serde_json::json!({"member_key": k, "order_id": o, "t0": ts(t), "horizon": ts(&(*t + Duration::days(30)))})
            })
            .collect();
        db.fetch::<(String,)>(&REPURCHASED, &[&json(&rows)])
            .await?
            .into_iter()
            .map(|(k,)| k)
            .collect()
    };
    let new: Vec<(String, Conversion)> = t0
        .into_iter()
        .map(|(k, _, t)| {
            let c = Conversion {
                t0: t,
                cohort_day: day_of(t, tz),
                repurchased: repurchased.contains(&k),
            };
            (k, c)
        })
        .collect();
    replace(db, &json(&dirty), &new).await
}

/// Replaces the conversions of `keys` (JSON array) by `new`, moving the cohort counts.
async fn replace<C: Db + ?Sized>(
    db: &mut C,
    keys: &str,
    new: &[(String, Conversion)],
) -> Result<(), StoreError> {
    let mut deltas: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
    let old = db.fetch::<(String, String, bool)>(&OLD, &[keys]).await?;
    for (_, day, repurchased) in &old {
        let day: NaiveDate = day
            .parse()
            .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("day {day:?}: {e}").into())))?;
        let c = deltas.entry(day).or_default();
        c.converted -= 1;
        c.repurchased -= i64::from(*repurchased);
    }
    for (_, c) in new {
        let d = deltas.entry(c.cohort_day).or_default();
        d.converted += 1;
        d.repurchased += i64::from(c.repurchased);
    }
    if !old.is_empty() {
        db.exec(&DELETE, &[keys]).await?;
    }
    if !new.is_empty() {
        let rows: Vec<serde_json::Value> = new
            .iter()
            .map(|(k, c)| {
                serde_json::json!({"member_key": k, "t0": ts(&c.t0), "cohort_day": c.cohort_day, "repurchased": c.repurchased})
            })
            .collect();
        db.exec(&INSERT, &[&json(&rows)]).await?;
    }
    let rows: Vec<serde_json::Value> = deltas
        .iter()
        .filter(|(_, c)| **c != Counts::default())
        .map(|(d, c)| serde_json::json!({"cohort_day": d, "converted": c.converted, "repurchased": c.repurchased}))
        .collect();
    if !rows.is_empty() {
        db.exec(&ADD, &[&json(&rows)]).await?;
        let shrunk: Vec<serde_json::Value> = deltas
            .iter()
            .filter(|(_, c)| c.converted < 0)
            .map(|(d, _)| serde_json::json!({ "cohort_day": d }))
            .collect();
        if !shrunk.is_empty() {
            db.exec(&DROP_EMPTY, &[&json(&shrunk)]).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_guided_by_a_visit_up_to_but_not_at_7_days_before() {
        let g: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        assert!(is_guided(g, &[g]));
        assert!(is_guided(
            g + Duration::days(7) - Duration::microseconds(1),
            &[g]
        ));
        assert!(!is_guided(g + Duration::days(7), &[g]));
        assert!(!is_guided(g - Duration::microseconds(1), &[g]));
    }
}
