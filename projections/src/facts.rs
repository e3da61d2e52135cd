//! Per-member facts: everything the linkage, retention and A/B read models count about one
//! member, as a pure fold of that member's events. The read models are counts over these
//! facts, so a late event or a late binding refolds the facts of the members it touches and
//! recounts only the days, cohorts and experiments whose facts moved.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use liandong_event::source::is_oa_guided;
use liandong_event::EventType;
use serde::Serialize;
use serde_json::Value;

use crate::member_profile::{ts, ProfileEvent};

/// A member's day with an `mp.visit` or an `oa.follow` (a row of `fact_member_day`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFact {
    pub day: NaiveDate,
    pub mp_visit: bool,
    pub oa_guided: bool,
    pub prompt_follow: bool,
    pub core_user: bool,
    pub guided_order: bool,
    pub guided_converted_7d: bool,
}

/// The member's linkage conversion (a row of `fact_conversion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversion {
    #[serde(serialize_with = "ser_ts")]
    pub t0: DateTime<Utc>,
    pub cohort_day: NaiveDate,
    pub repurchased: bool,
}

/// The member's first follow through the MP prompt (a row of `fact_follower`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Follower {
    #[serde(serialize_with = "ser_ts")]
    pub t0: DateTime<Utc>,
    pub cohort_day: NaiveDate,
    pub retained: bool,
}

/// The member in one experiment (a row of `fact_experiment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimentFact {
    pub experiment: String,
    /// `None` when the member was exposed to more than one variant: excluded.
    pub variant: Option<String>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub first_exposed_at: Option<DateTime<Utc>>,
    pub clicked: bool,
}

/// Everything counted about one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFacts {
    pub days: Vec<DayFact>,
    pub conversion: Option<Conversion>,
    pub follower: Option<Follower>,
    /// (cohort week, week offset 0..=12) of every week the member was active in.
    pub weeks: Vec<(NaiveDate, i32)>,
    pub experiments: Vec<ExperimentFact>,
}

fn ser_ts<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts(t))
}

fn ser_opt_ts<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&ts(t)),
        None => s.serialize_none(),
    }
}

/// The Monday that starts the week of `day`.
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(day.weekday().num_days_from_monday() as i64)
}

fn text<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

/// First paid time of each of the member's orders (an order is paid at its first `order.paid`).
pub fn paid_orders(events: &[&ProfileEvent]) -> BTreeMap<String, DateTime<Utc>> {
    let mut paid = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.event_type == EventType::OrderPaid)
    {
        if let Some(order) = text(&e.props, "order_id") {
            paid.entry(order.to_owned())
                .and_modify(|t: &mut DateTime<Utc>| *t = (*t).min(e.occurred_at))
                .or_insert(e.occurred_at);
        }
    }
    paid
}

/// Folds one member's events into its facts; `tz` decides days and weeks.
pub fn fold(events: &[ProfileEvent], tz: Tz) -> MemberFacts {
    let mut sorted: Vec<&ProfileEvent> = events.iter().collect();
    sorted.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let guided = |e: &ProfileEvent| {
        e.event_type == EventType::MpVisit && e.source_from.as_deref().is_some_and(is_oa_guided)
    };
    let paid = paid_orders(&sorted);
    let paid_times: Vec<DateTime<Utc>> = paid.values().copied().collect();
    let paid_within_7d = |g: DateTime<Utc>| {
        paid_times
            .iter()
            .any(|t| g <= *t && *t < g + Duration::days(7))
    };

    // Linkage, per day.
    let mut by_day: BTreeMap<NaiveDate, Vec<&ProfileEvent>> = BTreeMap::new();
    for e in &sorted {
        by_day.entry(day(e.occurred_at)).or_default().push(e);
    }
    let mut days = Vec::new();
    for (d, evs) in &by_day {
        let has = |t: EventType| evs.iter().any(|e| e.event_type == t);
        let mp_visit = has(EventType::MpVisit);
        let followed = has(EventType::OaFollow);
        if !mp_visit && !followed {
            continue;
        }
        let g = evs
            .iter()
            .filter(|e| guided(e))
            .map(|e| e.occurred_at)
            .min();
        days.push(DayFact {
            day: *d,
            mp_visit,
            oa_guided: g.is_some(),
            prompt_follow: evs.iter().any(|e| {
                e.event_type == EventType::OaFollow && text(&e.props, "via") == Some("mp_prompt")
            }),
            core_user: mp_visit
                && (has(EventType::OrderPlaced) || has(EventType::ActivityReserved)),
            guided_order: g.is_some_and(|g| {
                evs.iter()
                    .any(|e| e.event_type == EventType::OrderPlaced && e.occurred_at >= g)
            }),
            guided_converted_7d: g.is_some_and(paid_within_7d),
        });
    }

    // Linkage conversion and 30-day repurchase.
    let guided_visits: Vec<DateTime<Utc>> = sorted
        .iter()
        .filter(|e| guided(e))
        .map(|e| e.occurred_at)
        .collect();
    let t0 = paid
        .iter()
        .filter(|(_, t)| {
            guided_visits
                .iter()
                .any(|g| *g <= **t && **t < *g + Duration::days(7))
        })
        .min_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    let conversion = t0.map(|(order, t0)| Conversion {
        t0: *t0,
        cohort_day: day(*t0),
        repurchased: paid
            .iter()
            .any(|(o, t)| o != order && *t0 < *t && *t <= *t0 + Duration::days(30)),
    });

    // Follower retention.
    let follower = sorted
        .iter()
        .find(|e| e.event_type == EventType::OaFollow && text(&e.props, "via") == Some("mp_prompt"))
        .map(|first| {
            let horizon = first.occurred_at + Duration::days(30);
            let latest = sorted
                .iter()
                .filter(|e| matches!(e.event_type, EventType::OaFollow | EventType::OaUnfollow))
                .filter(|e| e.occurred_at <= horizon)
                .last();
            Follower {
                t0: first.occurred_at,
                cohort_day: day(first.occurred_at),
                retained: latest.is_some_and(|e| e.event_type == EventType::OaFollow),
            }
        });

    // Weekly activity.
    let active_weeks: BTreeSet<NaiveDate> = sorted
        .iter()
        .filter(|e| e.event_type.is_activity())
        .map(|e| week_of(day(e.occurred_at)))
        .collect();
    let weeks = match active_weeks.first() {
        None => Vec::new(),
        Some(cohort) => active_weeks
            .iter()
            .map(|w| (*cohort, ((*w - *cohort).num_days() / 7) as i32))
            .filter(|(_, offset)| *offset <= 12)
            .collect(),
    };

    // Experiments.
    let mut exposures: BTreeMap<&str, (BTreeSet<&str>, DateTime<Utc>)> = BTreeMap::new();
    for e in sorted
        .iter()
        .filter(|e| e.event_type == EventType::OaMenuExposure)
    {
        let Some(x) = text(&e.props, "experiment").filter(|x| !x.is_empty()) else {
            continue;
        };
        let v = text(&e.props, "variant").unwrap_or("");
        let entry = exposures
            .entry(x)
            .or_insert_with(|| (BTreeSet::new(), e.occurred_at));
        entry.0.insert(v);
    }
    let experiments = exposures
        .into_iter()
        .map(|(x, (variants, first))| {
            let variant = (variants.len() == 1)
                .then(|| variants.first().map(|v| v.to_string()))
                .flatten();
            let clicked = variant.as_deref().is_some_and(|v| {
                sorted.iter().any(|e| {
                    e.event_type == EventType::OaMenuClick
                        && text(&e.props, "experiment") == Some(x)
                        && text(&e.props, "variant").unwrap_or("") == v
                        && e.occurred_at >= first
                })
            });
            ExperimentFact {
                experiment: x.to_owned(),
                first_exposed_at: variant.as_ref().map(|_| first),
                variant,
                clicked,
            }
        })
        .collect();

    MemberFacts {
        days,
        conversion,
        follower,
        weeks,
        experiments,
    }
}
