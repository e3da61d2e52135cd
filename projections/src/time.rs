//! Days in the configured time zone, and the time windows a batch reads of its members.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::member_profile::ts;
use crate::sql::{self, Ty};

/// The calendar day of `t` in `tz` (METRICS.md: `day`).
pub fn day_of(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The instant `day` begins in `tz` (the earliest, where a zone's clock goes back at midnight).
pub fn day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight).earliest() {
        Some(t) => t.with_timezone(&Utc),
        // A zone that skips midnight: the day begins at the first instant after the gap.
        None => (1..=24)
            .find_map(|h| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                    .earliest()
            })
            .map_or_else(
                || Utc.from_utc_datetime(&midnight),
                |t| t.with_timezone(&Utc),
            ),
    }
}

/// Half-open time windows `[start, stop)` per member, merged where they overlap or touch, as
/// one JSON argument of a statement that joins them to a member's rows through an index.
#[derive(Debug, Default)]
pub struct Ranges {
    by_member: BTreeMap<String, Vec<(DateTime<Utc>, DateTime<Utc>)>>,
}

#[derive(Serialize)]
struct RangeRow<'a> {
    member_key: &'a str,
    start: String,
    stop: String,
}

impl Ranges {
    pub(crate) const COLUMNS: sql::Columns = &[
        ("member_key", Ty::Text),
        ("start", Ty::Ts),
        ("stop", Ty::Ts),
    ];

    pub fn add(&mut self, member_key: &str, start: DateTime<Utc>, stop: DateTime<Utc>) {
        if start < stop {
            self.by_member
                .entry(member_key.to_owned())
                .or_default()
                .push((start, stop));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }

    /// The merged windows, as `[{member_key, start, stop}]`.
    pub fn json(&self) -> String {
        let mut rows = Vec::new();
        for (key, windows) in &self.by_member {
            let mut sorted = windows.clone();
            sorted.sort();
            let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
            for (s, e) in sorted {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            rows.extend(merged.into_iter().map(|(s, e)| RangeRow {
                member_key: key,
                start: ts(&s),
                stop: ts(&e),
            }));
        }
        sql::json(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_days_begin_at_16_utc() {
        let d: NaiveDate = "2026-11-02".parse().unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        assert_eq!(ts(&day_start(d, tz)), "2026-11-01T16:00:00.000000Z");
        assert_eq!(day_of(day_start(d, tz), tz), d);
    }

    #[test]
    fn overlapping_windows_merge() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut r = Ranges::default();
        r.add("u", t("2026-11-01T00:00:00Z"), t("2026-11-02T00:00:00Z"));
        r.add("u", t("2026-11-02T00:00:00Z"), t("2026-11-03T00:00:00Z"));
        r.add("u", t("2026-11-05T00:00:00Z"), t("2026-11-06T00:00:00Z"));
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["stop"], "2026-11-03T00:00:00.000000Z");
    }
}
