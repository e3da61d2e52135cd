//! `metric_message_daily` (METRICS.md, "Messages"): the template-message (channel
//! `oa_template`) and service-notification (channel `mp_notify`) funnel per day, channel and
//! template — members sent, delivered, clicking within 72 hours of their first send of the day,
//! landing in the MP from the message within 72 hours, and paying an order after their first
//! click and within 7 days of that send.
//!
//! Each member's (day, channel, template) is a row of `fact_message` ([`message_facts`], a pure
//! function of the member's sends of that day, its clicks and visits in the 72 hours after, and
//! the paid times of its orders in the 7 days after). A batch recomputes only the member-days
//! its events can move — the day of a send; for a click or visit at `t`, the days
//! `day(t − 72 h)..=day(t)`; for an order paid at `p` (or paid earlier than known), the days
//! `day(p − 7 days)..=day(p)` — reading those days' events (and the 72 hours after) and the
//! orders paid in their windows through the `(member_key, occurred_at)` and
//! `(member_key, paid_at)` indexes, never the member's whole history. The counts move by the
//! difference of the old and new facts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;
use serde_json::{json as j, Value};

use crate::member_profile::{parse_ts, ts, ProfileEvent};
use crate::orders::OrderChange;
use crate::sql::{self, json, Db, Statement, Ty};
use crate::time::{day_of, day_start, Ranges};

/// How long after the first send of the day a click or a visit counts.
pub const CLICK_WINDOW: Duration = Duration::hours(72);
/// How long after the first send of the day a payment counts.
pub const CONVERSION_WINDOW: Duration = Duration::days(7);

/// A channel: its name, its sent and click types, and the resolved `from` of a visit it led to.
pub const CHANNELS: &[(&str, EventType, EventType, &str)] = &[
    (
        "oa_template",
        EventType::OaTemplateSent,
        EventType::OaTemplateClick,
        "template",
    ),
    (
        "mp_notify",
        EventType::MpNotifySent,
        EventType::MpNotifyClick,
        "subscribe_msg",
    ),
];

/// A member's (day, channel, template) with at least one send (a row of `fact_message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageFact {
    pub day: NaiveDate,
    pub channel: String,
    pub template_id: String,
    /// `s`: the earliest send of the template to the member on the day.
    #[serde(serialize_with = "ser_ts")]
    pub first_sent_at: DateTime<Utc>,
    pub delivered: bool,
    /// `k`: the earliest click in `[s, s + 72 h)`.
    #[serde(serialize_with = "ser_opt_ts")]
    pub first_click_at: Option<DateTime<Utc>>,
    pub visited: bool,
    pub converted: bool,
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

fn template_of(e: &ProfileEvent) -> Option<&str> {
    e.props.get("template_id").and_then(Value::as_str)
}

/// A send that reached the member: every `mp.notify.sent`; an `oa.template.sent` whose `status`
/// is absent or `success`.
fn delivered(e: &ProfileEvent) -> bool {
    e.event_type != EventType::OaTemplateSent
        || e.props
            .get("status")
            .and_then(Value::as_str)
            .is_none_or(|s| s == "success")
}

/// The member's facts of `day`: `events` holds at least its sends, clicks and visits from the
/// start of `day` to 72 hours after its end (any order, others ignored), `paid` the paid times
/// of its orders (at least those up to 7 days after the day's end).
pub fn message_facts(
    day: NaiveDate,
    tz: Tz,
    events: &[&ProfileEvent],
    paid: &[DateTime<Utc>],
) -> Vec<MessageFact> {
    let mut out = Vec::new();
    for (channel, sent_type, click_type, from) in CHANNELS {
        let mut sends: BTreeMap<&str, (DateTime<Utc>, bool)> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e.event_type == *sent_type && day_of(e.occurred_at, tz) == day)
        {
            let Some(t) = template_of(e) else { continue };
            let entry = sends.entry(t).or_insert((e.occurred_at, false));
            entry.0 = entry.0.min(e.occurred_at);
            entry.1 |= delivered(e);
        }
        for (template, (s, delivered)) in sends {
            let within = |t: DateTime<Utc>| s <= t && t < s + CLICK_WINDOW;
            let k = events
                .iter()
                .filter(|e| {
                    e.event_type == *click_type
                        && template_of(e) == Some(template)
                        && within(e.occurred_at)
                })
                .map(|e| e.occurred_at)
                .min();
            let visited = events.iter().any(|e| {
                e.event_type == EventType::MpVisit
                    && e.source_from.as_deref() == Some(*from)
                    && within(e.occurred_at)
            });
            let converted =
                k.is_some_and(|k| paid.iter().any(|p| k <= *p && *p < s + CONVERSION_WINDOW));
            out.push(MessageFact {
                day,
                channel: (*channel).to_owned(),
                template_id: template.to_owned(),
                first_sent_at: s,
                delivered,
                first_click_at: k,
                visited,
                converted,
            });
        }
    }
    out
}

/// An event a message fact reads: a send, a click, or a landing from a message.
fn is_read(e: &ProfileEvent) -> bool {
    if e.event_type == EventType::MpVisit {
        return CHANNELS
            .iter()
            .any(|c| e.source_from.as_deref() == Some(c.3));
    }
    CHANNELS
        .iter()
        .any(|(_, sent, click, _)| e.event_type == *sent || e.event_type == *click)
}

fn days_between(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

/// The days of a member's facts that `events` and `orders` can move.
pub fn affected_days(
    events: &[ProfileEvent],
    orders: &[&OrderChange],
    tz: Tz,
) -> BTreeSet<NaiveDate> {
    let mut days = BTreeSet::new();
    for e in events.iter().filter(|e| is_read(e)) {
        let t = e.occurred_at;
        let sent = CHANNELS.iter().any(|c| c.1 == e.event_type);
        if sent {
            days.insert(day_of(t, tz));
        } else {
            days.extend(days_between(day_of(t - CLICK_WINDOW, tz), day_of(t, tz)));
        }
    }
    for o in orders {
        for p in std::iter::once(o.new.paid_at).chain(o.old.as_ref().map(|x| x.paid_at)) {
            days.extend(days_between(
                day_of(p - CONVERSION_WINDOW, tz),
                day_of(p, tz),
            ));
        }
    }
    days
}

/// Counts of one (day, channel, template), as added to (or taken from) `metric_message_daily`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
struct Counts {
    sent_users: i64,
    delivered_users: i64,
    clicked_users: i64,
    visit_users: i64,
    converted_users: i64,
}

impl Counts {
    fn add(&mut self, f: &MessageFact, sign: i64) {
        let n = |b: bool| sign * i64::from(b);
        self.sent_users += sign;
        self.delivered_users += n(f.delivered);
        self.clicked_users += n(f.first_click_at.is_some());
        self.visit_users += n(f.visited);
        self.converted_users += n(f.converted);
    }
}

const FACT: sql::Columns = &[
    ("member_key", Ty::Text),
    ("day", Ty::Date),
    ("channel", Ty::Text),
    ("template_id", Ty::Text),
    ("first_sent_at", Ty::Ts),
    ("delivered", Ty::Bool),
    ("first_click_at", Ty::Ts),
    ("visited", Ty::Bool),
    ("converted", Ty::Bool),
];
const COUNTS: sql::Columns = &[
    ("day", Ty::Date),
    ("channel", Ty::Text),
    ("template_id", Ty::Text),
    ("sent_users", Ty::Int),
    ("delivered_users", Ty::Int),
    ("clicked_users", Ty::Int),
    ("visit_users", Ty::Int),
    ("converted_users", Ty::Int),
];
const PAIRS: sql::Columns = &[("member_key", Ty::Text), ("day", Ty::Date)];

static EVENTS: Statement = Statement::new(|d| {
    format!(
        "SELECT e.member_key, {}, e.type, {}, e.source_from, e.props ->> 'template_id', e.props ->> 'status'
         FROM {} JOIN events e ON e.member_key = r.member_key AND e.occurred_at >= r.start AND e.occurred_at < r.stop
         WHERE e.type IN ('oa.template.sent', 'oa.template.click', 'mp.notify.sent', 'mp.notify.click')
            OR (e.type = 'mp.visit' AND e.source_from IN ('template', 'subscribe_msg'))",
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
const SELECT_FACT: &str = "f.member_key, {day}, f.channel, f.template_id, {sent}, f.delivered, {click}, f.visited, f.converted";

fn select_fact(d: liandong_store::Dialect) -> String {
    SELECT_FACT
        .replace("{day}", &sql::text(d, "f.day"))
        .replace("{sent}", &sql::ts_text(d, "f.first_sent_at"))
        .replace("{click}", &sql::ts_text(d, "f.first_click_at"))
}

static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT {} FROM {} JOIN fact_message f ON f.member_key = p.member_key AND f.day = p.day",
        select_fact(d),
        sql::records(d, 1, "p", PAIRS)
    )
});
static OLD_OF_MEMBERS: Statement = Statement::new(|d| {
    format!(
        "SELECT {} FROM fact_message f WHERE f.member_key IN {}",
        select_fact(d),
        sql::values(d, 1)
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_message WHERE (member_key, day) IN (SELECT member_key, day FROM {})",
        sql::records(d, 1, "p", PAIRS)
    )
});
static INSERT: Statement = Statement::new(|d| sql::insert(d, "fact_message", FACT));
static ADD: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "metric_message_daily",
        &["day", "channel", "template_id"],
        COUNTS,
    )
});
static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM metric_message_daily WHERE sent_users = 0
           AND (day, channel, template_id) IN (SELECT day, channel, template_id FROM {})",
        sql::records(
            d,
            1,
            "x",
            &[
                ("day", Ty::Date),
                ("channel", Ty::Text),
                ("template_id", Ty::Text)
            ]
        )
    )
});

type FactTuple = (
    String,
    String,
    String,
    String,
    String,
    bool,
    Option<String>,
    bool,
    bool,
);

fn fact_of(t: FactTuple) -> Result<(String, MessageFact), StoreError> {
    let day = t
        .1
        .parse()
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("day {:?}: {e}", t.1).into())))?;
    Ok((
        t.0,
        MessageFact {
            day,
            channel: t.2,
            template_id: t.3,
            first_sent_at: parse_ts(&t.4)?,
            delivered: t.5,
            first_click_at: t.6.as_deref().map(parse_ts).transpose()?,
            visited: t.7,
            converted: t.8,
        },
    ))
}

#[derive(Serialize)]
struct FactRow<'a> {
    member_key: &'a str,
    #[serde(flatten)]
    fact: &'a MessageFact,
}

type EventTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Recomputes the member-days that the batch's events and order changes can move, and moves
/// the counts by the difference.
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
            event_ranges.add(key, start, next + CLICK_WINDOW);
            paid_ranges.add(key, start, next + CONVERSION_WINDOW);
            if !reset.contains(*key) {
                pairs.push(j!({"member_key": key, "day": d}));
            }
        }
    }
    let mut member_events: BTreeMap<String, Vec<ProfileEvent>> = BTreeMap::new();
    if !event_ranges.is_empty() {
        for (key, id, ty, at, from, template, status) in db
            .fetch::<EventTuple>(&EVENTS, &[&event_ranges.json()])
            .await?
        {
            let Ok(event_type) = ty.parse::<EventType>() else {
                continue;
            };
            let mut props = serde_json::Map::new();
            if let Some(t) = template {
                props.insert("template_id".into(), Value::String(t));
            }
            if let Some(s) = status {
                props.insert("status".into(), Value::String(s));
            }
            member_events.entry(key).or_default().push(ProfileEvent {
                event_id: id,
                event_type,
                occurred_at: parse_ts(&at)?,
                source_from: from,
                props: Value::Object(props),
            });
        }
    }
    let mut paid: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    if !paid_ranges.is_empty() {
        for (key, at) in db
            .fetch::<(String, String)>(&PAID, &[&paid_ranges.json()])
            .await?
        {
            paid.entry(key).or_default().push(parse_ts(&at)?);
        }
    }
    // The old facts: every one of a reset member, the affected days of the others.
    let mut deltas: BTreeMap<(NaiveDate, String, String), Counts> = BTreeMap::new();
    let mut old = if reset.is_empty() {
        Vec::new()
    } else {
        db.fetch::<FactTuple>(&OLD_OF_MEMBERS, &[&json(reset)])
            .await?
    };
    if !pairs.is_empty() {
        old.extend(db.fetch::<FactTuple>(&OLD, &[&json(&pairs)]).await?);
    }
    let mut gone: BTreeSet<(String, NaiveDate)> = BTreeSet::new();
    for t in old {
        let (k, f) = fact_of(t)?;
        deltas
            .entry((f.day, f.channel.clone(), f.template_id.clone()))
            .or_default()
            .add(&f, -1);
        gone.insert((k, f.day));
    }
    let mut facts: Vec<(&str, MessageFact)> = Vec::new();
    for (key, days) in &affected {
        let paid = paid.get(*key).map(Vec::as_slice).unwrap_or(&[]);
        let events: Vec<&ProfileEvent> = member_events
            .get(*key)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        for d in days {
            for f in message_facts(*d, tz, &events, paid) {
                deltas
                    .entry((f.day, f.channel.clone(), f.template_id.clone()))
                    .or_default()
                    .add(&f, 1);
                facts.push((key, f));
            }
        }
    }
    if !gone.is_empty() {
        let rows: Vec<_> = gone
            .iter()
            .map(|(k, d)| j!({"member_key": k, "day": d}))
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
    let rows: Vec<_> = deltas
        .iter()
        .filter(|(_, c)| **c != Counts::default())
        .map(|((day, channel, template), c)| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["day"] = j!(day);
            v["channel"] = j!(channel);
            v["template_id"] = j!(template);
            v
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    db.exec(&ADD, &[&json(&rows)]).await?;
    let shrunk: Vec<_> = deltas
        .iter()
        .filter(|(_, c)| c.sent_users < 0)
        .map(|((day, channel, template), _)| {
            j!({"day": day, "channel": channel, "template_id": template})
        })
        .collect();
    if !shrunk.is_empty() {
        db.exec(&DROP_EMPTY, &[&json(&shrunk)]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn ev(t: EventType, at: &str, props: Value, from: Option<&str>) -> ProfileEvent {
        ProfileEvent {
            event_id: at.into(),
            event_type: t,
            occurred_at: at.parse().unwrap(),
            source_from: from.map(str::to_owned),
            props,
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn given_a_click_exactly_72_hours_after_the_send_then_it_does_not_count() {
        let sent = ev(
            EventType::OaTemplateSent,
            "2026-04-01T02:00:00Z",
            j!({"template_id": "t", "status": "user_block"}),
            None,
        );
        let late = ev(
            EventType::OaTemplateClick,
            "2026-04-04T02:00:00Z",
            j!({"template_id": "t"}),
            None,
        );
        let f = message_facts(day("2026-04-01"), TZ, &[&sent, &late], &[]);
        assert_eq!(f.len(), 1);
        assert!(!f[0].delivered, "user_block is not delivered");
        assert_eq!(f[0].first_click_at, None);
        let in_time = ev(
            EventType::OaTemplateClick,
            "2026-04-04T01:59:59.999Z",
            j!({"template_id": "t"}),
            None,
        );
        let paid: DateTime<Utc> = "2026-04-08T02:00:00Z".parse().unwrap();
        let f = message_facts(day("2026-04-01"), TZ, &[&sent, &late, &in_time], &[paid]);
        assert!(f[0].first_click_at.is_some());
        assert!(!f[0].converted, "paid exactly 7 days after the send");
    }

    #[test]
    fn given_a_visit_from_elsewhere_then_no_message_day_is_affected() {
        let v = ev(
            EventType::MpVisit,
            "2026-04-04T01:00:00Z",
            j!({}),
            Some("menu"),
        );
        assert!(affected_days(&[v], &[], TZ).is_empty());
    }

    #[test]
    fn given_a_visit_then_only_the_days_it_can_reach_are_affected() {
        let v = ev(
            EventType::MpVisit,
            "2026-04-04T01:00:00Z",
            j!({}),
            Some("template"),
        );
        let days = affected_days(&[v], &[], TZ);
        assert_eq!(
            days.into_iter().collect::<Vec<_>>(),
            [
                day("2026-04-01"),
                day("2026-04-02"),
                day("2026-04-03"),
                day("2026-04-04")
            ]
        );
    }
}
