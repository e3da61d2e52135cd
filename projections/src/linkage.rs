//! `metric_linkage_daily` (METRICS.md, "Linkage"): distinct members per day with an `mp.visit`,
//! an OA-guided visit, a follow through the MP prompt, a core action, a guided order, a guided
//! conversion within 7 days.
//!
//! Each member's day is a row of `fact_member_day` ([`day_fact`], a pure function of the
//! member's events of that day and the paid times of its orders in the 7 days after). A batch
//! recomputes only the member-days its events can move — the day of a visit, follow, placed
//! order or reservation; for an order paid at `p` (or paid earlier than known), the days
//! `day(p − 7 days)..=day(p)` — reading the member's events of those days and its orders paid
//! in their windows through the `(member_key, occurred_at)` and `(member_key, paid_at)`
//! indexes, never its whole history. The day's counts move by the difference of the old and
//! new facts (a commutative `+=`, so concurrent batches may share a day).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use liandong_event::source::is_oa_guided;
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;

use crate::member_profile::{parse_ts, ProfileEvent};
use crate::orders::OrderChange;
use crate::sql::{self, json, Db, Statement, Ty};
use crate::time::{day_of, day_start, Ranges};

/// A member's day with an `mp.visit` or an `oa.follow` (a row of `fact_member_day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayFact {
    pub day: NaiveDate,
    pub mp_visit: bool,
    pub oa_guided: bool,
    pub prompt_follow: bool,
    pub core_user: bool,
    pub guided_order: bool,
    pub guided_converted_7d: bool,
}

/// The event types a day's fact reads.
const TYPES: [EventType; 4] = [
    EventType::MpVisit,
    EventType::OaFollow,
    EventType::OrderPlaced,
    EventType::ActivityReserved,
];

fn guided(e: &ProfileEvent) -> bool {
    e.event_type == EventType::MpVisit && e.source_from.as_deref().is_some_and(is_oa_guided)
}

/// The member's fact of `day`, from its events of that day (any order) and the paid times of
/// its orders (at least those in `[day, day + 8 days)`). `None` without a visit or a follow.
pub fn day_fact(
    day: NaiveDate,
    events: &[&ProfileEvent],
    paid: &[DateTime<Utc>],
) -> Option<DayFact> {
    let has = |t: EventType| events.iter().any(|e| e.event_type == t);
    let mp_visit = has(EventType::MpVisit);
    if !mp_visit && !has(EventType::OaFollow) {
        return None;
    }
    let g = events
        .iter()
        .filter(|e| guided(e))
        .map(|e| e.occurred_at)
        .min();
    Some(DayFact {
        day,
        mp_visit,
        oa_guided: g.is_some(),
        prompt_follow: events.iter().any(|e| {
            e.event_type == EventType::OaFollow
                && e.props.get("via").and_then(|v| v.as_str()) == Some("mp_prompt")
        }),
        core_user: mp_visit && (has(EventType::OrderPlaced) || has(EventType::ActivityReserved)),
        guided_order: g.is_some_and(|g| {
            events
                .iter()
                .any(|e| e.event_type == EventType::OrderPlaced && e.occurred_at >= g)
        }),
        guided_converted_7d: g
            .is_some_and(|g| paid.iter().any(|t| g <= *t && *t < g + Duration::days(7))),
    })
}

/// The days of a member's facts that `events` and `orders` can move.
pub fn affected_days(
    events: &[ProfileEvent],
    orders: &[&OrderChange],
    tz: Tz,
) -> BTreeSet<NaiveDate> {
    let mut days: BTreeSet<NaiveDate> = events
        .iter()
        .filter(|e| TYPES.contains(&e.event_type))
        .map(|e| day_of(e.occurred_at, tz))
        .collect();
    for o in orders {
        for p in std::iter::once(o.new.paid_at).chain(o.old.as_ref().map(|x| x.paid_at)) {
            let (first, last) = (day_of(p - Duration::days(7), tz), day_of(p, tz));
            days.extend(first.iter_days().take_while(|d| *d <= last));
        }
    }
    days
}

/// Counts of one day, as added to (or taken from) `metric_linkage_daily`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
struct Counts {
    members: i64,
    mp_users: i64,
    oa_guided_users: i64,
    prompt_follows: i64,
    core_users: i64,
    guided_order_users: i64,
    guided_converted_7d: i64,
}

impl Counts {
    fn add(&mut self, f: &DayFact, sign: i64) {
        let n = |b: bool| sign * i64::from(b);
        self.members += sign;
        self.mp_users += n(f.mp_visit);
        self.oa_guided_users += n(f.oa_guided);
        self.prompt_follows += n(f.prompt_follow);
        self.core_users += n(f.core_user);
        self.guided_order_users += n(f.guided_order);
        self.guided_converted_7d += n(f.guided_converted_7d);
    }
}

#[derive(Serialize)]
struct CountRow {
    day: NaiveDate,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
struct FactRow<'a> {
    member_key: &'a str,
    #[serde(flatten)]
    fact: &'a DayFact,
}

#[derive(Serialize)]
struct PairRow<'a> {
    member_key: &'a str,
    day: NaiveDate,
}

const FACT: sql::Columns = &[
    ("member_key", Ty::Text),
    ("day", Ty::Date),
    ("mp_visit", Ty::Bool),
    ("oa_guided", Ty::Bool),
    ("prompt_follow", Ty::Bool),
    ("core_user", Ty::Bool),
    ("guided_order", Ty::Bool),
    ("guided_converted_7d", Ty::Bool),
];
const COUNTS: sql::Columns = &[
    ("day", Ty::Date),
    ("members", Ty::Int),
    ("mp_users", Ty::Int),
    ("oa_guided_users", Ty::Int),
    ("prompt_follows", Ty::Int),
    ("core_users", Ty::Int),
    ("guided_order_users", Ty::Int),
    ("guided_converted_7d", Ty::Int),
];
const PAIRS: sql::Columns = &[("member_key", Ty::Text), ("day", Ty::Date)];

static EVENTS: Statement = Statement::new(|d| {
    format!(
        "SELECT e.member_key, {}, e.type, {}, e.source_from, e.props ->> 'via'
         FROM {} JOIN events e ON e.member_key = r.member_key AND e.occurred_at >= r.start AND e.occurred_at < r.stop
         WHERE e.type IN ('mp.visit', 'oa.follow', 'order.placed', 'activity.reserved')",
        sql::text(d, "e.event_id"),
        sql::ts_text(d, "e.occurred_at"),
        sql::records(d, 1, "r", Ranges::COLUMNS)
    )
});
static PAID: Statement = Statement::new(|d| {
    format!(
        "SELECT o.member_key, {} FROM {} JOIN member_order o
           ON o.member_key = r.member_key AND o.paid_at >= r.start AND o.paid_at < r.stop",
        sql::ts_text(d, "o.paid_at"),
        sql::records(d, 1, "r", Ranges::COLUMNS)
    )
});
static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT f.member_key, {}, f.mp_visit, f.oa_guided, f.prompt_follow, f.core_user, f.guided_order, f.guided_converted_7d
         FROM {} JOIN fact_member_day f ON f.member_key = p.member_key AND f.day = p.day",
        sql::text(d, "f.day"),
        sql::records(d, 1, "p", PAIRS)
    )
});
static OLD_OF_MEMBERS: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, {}, mp_visit, oa_guided, prompt_follow, core_user, guided_order, guided_converted_7d
         FROM fact_member_day WHERE member_key IN {}",
        sql::text(d, "day"),
        sql::values(d, 1)
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_member_day WHERE (member_key, day) IN (SELECT member_key, day FROM {})",
        sql::records(d, 1, "p", PAIRS)
    )
});
static INSERT: Statement = Statement::new(|d| sql::insert(d, "fact_member_day", FACT));
static ADD: Statement =
    Statement::new(|d| sql::add_counts(d, "metric_linkage_daily", &["day"], COUNTS));
static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM metric_linkage_daily WHERE members = 0 AND day IN (SELECT day FROM {})",
        sql::records(d, 1, "x", &[("day", Ty::Date)])
    )
});

type FactTuple = (String, String, bool, bool, bool, bool, bool, bool);

fn fact_of(t: FactTuple) -> Result<(String, DayFact), StoreError> {
    let day = t
        .1
        .parse()
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("day {:?}: {e}", t.1).into())))?;
    Ok((
        t.0,
        DayFact {
            day,
            mp_visit: t.2,
            oa_guided: t.3,
            prompt_follow: t.4,
            core_user: t.5,
            guided_order: t.6,
            guided_converted_7d: t.7,
        },
    ))
}

/// Recomputes the member-days that the batch's events and order changes can move, and moves
/// the day counts by the difference.
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    tz: Tz,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    orders: &[OrderChange],
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let affected = crate::orders::affected_members(added, orders, tz, affected_days);
    if affected.is_empty() && reset.is_empty() {
        return Ok(());
    }

    let mut event_ranges = Ranges::default();
    let mut paid_ranges = Ranges::default();
    let mut pairs = Vec::new();
    for (key, days) in &affected {
        for d in days {
            let start = day_start(*d, tz);
            let next = day_start(d.succ_opt().unwrap_or(*d), tz);
            event_ranges.add(key, start, next);
            paid_ranges.add(key, start, next + Duration::days(7));
            if !reset.contains(*key) {
                pairs.push(PairRow {
                    member_key: key,
                    day: *d,
                });
            }
        }
    }
    let mut day_events: BTreeMap<(String, NaiveDate), Vec<ProfileEvent>> = BTreeMap::new();
    for (key, id, ty, at, from, via) in db
        .fetch::<(
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        )>(&EVENTS, &[&event_ranges.json()])
        .await?
    {
        let Ok(event_type) = ty.parse::<EventType>() else {
            continue;
        };
        let occurred_at = parse_ts(&at)?;
        day_events
            .entry((key, day_of(occurred_at, tz)))
            .or_default()
            .push(ProfileEvent {
                event_id: id,
                event_type,
                occurred_at,
                source_from: from,
                props: via.map_or(serde_json::Value::Null, |v| serde_json::json!({ "via": v })),
            });
    }
    let mut paid: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (key, at) in db
        .fetch::<(String, String)>(&PAID, &[&paid_ranges.json()])
        .await?
    {
        paid.entry(key).or_default().push(parse_ts(&at)?);
    }
    // The old facts: every one of a reset member, the affected days of the others.
    let mut deltas: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
    let mut old = if reset.is_empty() {
        Vec::new()
    } else {
        db.fetch::<FactTuple>(&OLD_OF_MEMBERS, &[&json(reset)])
            .await?
    };
    if !pairs.is_empty() {
        old.extend(db.fetch::<FactTuple>(&OLD, &[&json(&pairs)]).await?);
    }
    let mut gone: Vec<(String, NaiveDate)> = Vec::new();
    for t in old {
        let (k, f) = fact_of(t)?;
        deltas.entry(f.day).or_default().add(&f, -1);
        gone.push((k, f.day));
    }
    let mut facts: Vec<(&str, DayFact)> = Vec::new();
    for (key, days) in &affected {
        let paid = paid.get(*key).map(Vec::as_slice).unwrap_or(&[]);
        for d in days {
            let events: Vec<&ProfileEvent> = day_events
                .get(&((*key).to_owned(), *d))
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if let Some(f) = day_fact(*d, &events, paid) {
                deltas.entry(*d).or_default().add(&f, 1);
                facts.push((key, f));
            }
        }
    }
    if !gone.is_empty() {
        let rows: Vec<PairRow> = gone
            .iter()
            .map(|(k, d)| PairRow {
                member_key: k,
                day: *d,
            })
            .collect();
        db.exec(&DELETE, &[&json(&rows)]).await?;
    }
    if !facts.is_empty() {
        let rows: Vec<FactRow> = facts
            .iter()
            .map(|(k, f)| FactRow {
                member_key: k,
                fact: f,
            })
            .collect();
        db.exec(&INSERT, &[&json(&rows)]).await?;
    }
    write_counts(db, deltas).await
}

async fn write_counts<C: Db + ?Sized>(
    db: &mut C,
    deltas: BTreeMap<NaiveDate, Counts>,
) -> Result<(), StoreError> {
    let rows: Vec<CountRow> = deltas
        .into_iter()
        .filter(|(_, c)| *c != Counts::default())
        .map(|(day, counts)| CountRow { day, counts })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    db.exec(&ADD, &[&json(&rows)]).await?;
    let days: Vec<_> = rows
        .iter()
        .filter(|r| r.counts.members < 0)
        .map(|r| serde_json::json!({ "day": r.day }))
        .collect();
    if !days.is_empty() {
        db.exec(&DROP_EMPTY, &[&json(&days)]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: &str, t: EventType, at: &str, from: Option<&str>) -> ProfileEvent {
        ProfileEvent {
            event_id: id.into(),
            event_type: t,
            occurred_at: at.parse().unwrap(),
            source_from: from.map(str::to_owned),
            props: json!({}),
        }
    }

    #[test]
    fn given_a_guided_visit_then_an_order_placed_before_it_is_not_a_guided_order() {
        let d: NaiveDate = "2026-11-02".parse().unwrap();
        let placed = ev("a", EventType::OrderPlaced, "2026-11-02T01:00:00Z", None);
        let visit = ev(
            "b",
            EventType::MpVisit,
            "2026-11-02T02:00:00Z",
            Some("menu"),
        );
        let f = day_fact(d, &[&placed, &visit], &[]).unwrap();
        assert!(f.mp_visit && f.oa_guided && f.core_user);
        assert!(
            !f.guided_order,
            "placed before the first guided visit of the day"
        );
    }

    #[test]
    fn given_a_payment_exactly_7_days_after_the_guided_visit_then_not_converted() {
        let d: NaiveDate = "2026-11-02".parse().unwrap();
        let visit = ev(
            "b",
            EventType::MpVisit,
            "2026-11-02T02:00:00Z",
            Some("article"),
        );
        let at7: DateTime<Utc> = "2026-11-09T02:00:00Z".parse().unwrap();
        let f = day_fact(d, &[&visit], &[at7]).unwrap();
        assert!(!f.guided_converted_7d);
        let f = day_fact(d, &[&visit], &[at7 - Duration::microseconds(1)]).unwrap();
        assert!(f.guided_converted_7d);
    }

    #[test]
    fn given_an_order_paid_then_the_eight_days_ending_on_its_day_are_affected() {
        let tz = chrono_tz::Asia::Shanghai;
        let o = OrderChange {
            member_key: "u".into(),
            order_id: "A".into(),
            old: None,
            new: crate::orders::Order {
                paid_at: "2026-11-09T02:00:00Z".parse().unwrap(),
                paid_event: "e".into(),
                amount_fen: 1,
            },
        };
        let days = affected_days(&[], &[&o], tz);
        assert_eq!(days.len(), 8);
        assert_eq!(days.first().unwrap().to_string(), "2026-11-02");
        assert_eq!(days.last().unwrap().to_string(), "2026-11-09");
    }
}
