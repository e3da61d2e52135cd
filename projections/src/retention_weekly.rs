//! `retention_weekly` (METRICS.md, "Retention"): a member's cohort is the Monday week of its
//! earliest activity event (any type but `member.*`); `active` counts the cohort's members
//! active in each of the 13 weeks from it.
//!
//! A member's rows of `fact_member_week` — its cohort week and the offsets (0..=12) it was
//! active in — are its whole state: a batch merges its new events' weeks into them
//! ([`merge_weeks`]: the cohort is the earliest week, the set a union, cut at offset 12), so an
//! event costs at most 13 rows, however long the history. A week beyond offset 12 can never come
//! back into range, since a cohort only moves earlier. The counts move by the difference.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use liandong_store::StoreError;
use serde_json::json as j;

use crate::member_profile::ProfileEvent;
use crate::sql::{self, json, Db, Statement, Ty};
use crate::time::day_of;

/// The Monday that starts the week of `day`.
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(day.weekday().num_days_from_monday() as i64)
}

/// A member's weeks: its cohort week and the weeks (Mondays) it was active in, within 12
/// weeks of the cohort. Empty before any activity.
pub type Weeks = BTreeSet<NaiveDate>;

/// Adds active weeks to a member's weeks (the first is the cohort).
pub fn merge_weeks(old: &Weeks, new: impl IntoIterator<Item = NaiveDate>) -> Weeks {
    let mut all: Weeks = old.iter().copied().chain(new).collect();
    if let Some(cohort) = all.first().copied() {
        all.retain(|w| (*w - cohort).num_days() / 7 <= 12);
    }
    all
}

fn offsets(weeks: &Weeks) -> impl Iterator<Item = (NaiveDate, i64)> + '_ {
    let cohort = weeks.first().copied();
    weeks
        .iter()
        .filter_map(move |w| cohort.map(|c| (c, (*w - c).num_days() / 7)))
}

static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, CAST(week_offset AS BIGINT) FROM fact_member_week WHERE member_key IN {}",
        sql::text(d, "cohort_week"),
        sql::values(d, 1)
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_member_week WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static INSERT: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "fact_member_week",
        &[
            ("member_key", Ty::Text),
            ("cohort_week", Ty::Date),
            ("week_offset", Ty::Int),
        ],
    )
});
static ADD: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "retention_weekly_counts",
        &["cohort_week", "week_offset"],
        &[
            ("cohort_week", Ty::Date),
            ("week_offset", Ty::Int),
            ("active", Ty::Int),
        ],
    )
});
static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM retention_weekly_counts WHERE active = 0 AND cohort_week IN (SELECT cohort_week FROM {})",
        sql::records(d, 1, "x", &[("cohort_week", Ty::Date)])
    )
});

/// Merges the weeks of the activity events of `added` into their members' weeks; members in
/// `reset` start from nothing (their old weeks are taken off the counts).
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    tz: Tz,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut new_weeks: BTreeMap<&str, Vec<NaiveDate>> = BTreeMap::new();
    for (key, events) in added {
        let weeks: Vec<NaiveDate> = events
            .iter()
            .filter(|e| e.event_type.is_activity())
            .map(|e| week_of(day_of(e.occurred_at, tz)))
            .collect();
        if !weeks.is_empty() {
            new_weeks.insert(key, weeks);
        }
    }
    let mut keys: BTreeSet<&str> = new_weeks.keys().copied().collect();
    keys.extend(reset.iter().map(String::as_str));
    if keys.is_empty() {
        return Ok(());
    }
    let keys_json = json(&keys);
    let mut old: BTreeMap<String, Weeks> = BTreeMap::new();
    for (k, cohort, offset) in db
        .fetch::<(String, String, i64)>(&OLD, &[&keys_json])
        .await?
    {
        let cohort: NaiveDate = cohort.parse().map_err(|e| {
            StoreError::Db(sqlx::Error::Decode(format!("week {cohort:?}: {e}").into()))
        })?;
        old.entry(k)
            .or_default()
            .insert(cohort + Duration::weeks(offset));
    }
    let mut deltas: BTreeMap<(NaiveDate, i64), i64> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut changed: BTreeSet<&str> = BTreeSet::new();
    for key in &keys {
        let before = old.remove(*key).unwrap_or_default();
        let base = if reset.contains(*key) {
            Weeks::new()
        } else {
            before.clone()
        };
        let after = merge_weeks(&base, new_weeks.get(key).cloned().unwrap_or_default());
        if after == before {
            continue;
        }
        changed.insert(key);
        for w in offsets(&before) {
            *deltas.entry(w).or_default() -= 1;
        }
        for (cohort, offset) in offsets(&after) {
            *deltas.entry((cohort, offset)).or_default() += 1;
            rows.push(j!({"member_key": key, "cohort_week": cohort, "week_offset": offset}));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    db.exec(&DELETE, &[&json(&changed)]).await?;
    if !rows.is_empty() {
        db.exec(&INSERT, &[&json(&rows)]).await?;
    }
    let counts: Vec<_> = deltas
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|((c, o), n)| j!({"cohort_week": c, "week_offset": o, "active": n}))
        .collect();
    if !counts.is_empty() {
        db.exec(&ADD, &[&json(&counts)]).await?;
        let shrunk: BTreeSet<NaiveDate> = deltas
            .iter()
            .filter(|(_, n)| **n < 0)
            .map(|((c, _), _)| *c)
            .collect();
        if !shrunk.is_empty() {
            let rows: Vec<_> = shrunk.iter().map(|c| j!({ "cohort_week": c })).collect();
            db.exec(&DROP_EMPTY, &[&json(&rows)]).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn given_an_earlier_week_then_the_cohort_moves_and_weeks_past_12_drop() {
        let old = merge_weeks(&Weeks::new(), [w("2026-11-02"), w("2026-11-09")]);
        let merged = merge_weeks(&old, [w("2026-08-17")]);
        // 2026-11-09 is 12 weeks after 2026-08-17, 2026-11-02 is 11: both stay.
        assert_eq!(merged.len(), 3);
        let merged = merge_weeks(&merged, [w("2026-08-10")]);
        assert!(
            !merged.contains(&w("2026-11-09")),
            "13 weeks after the cohort"
        );
        assert_eq!(merged.first(), Some(&w("2026-08-10")));
    }

    #[test]
    fn merging_in_any_order_gives_the_same_weeks() {
        let weeks = [
            w("2026-08-10"),
            w("2026-11-09"),
            w("2026-09-07"),
            w("2026-11-02"),
        ];
        let all = merge_weeks(&Weeks::new(), weeks);
        let mut one_by_one = Weeks::new();
        for x in weeks.iter().rev() {
            one_by_one = merge_weeks(&one_by_one, [*x]);
        }
        assert_eq!(all, one_by_one);
    }

    #[test]
    fn week_of_is_monday() {
        assert_eq!(week_of(w("2026-11-08")), w("2026-11-02"));
        assert_eq!(week_of(w("2026-11-09")), w("2026-11-09"));
    }
}
