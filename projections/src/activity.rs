//! `metric_activity` (METRICS.md, "Campaigns"): one row per campaign (`activity_id`) —
//! reservations, joins, joins after a reservation or an OA-guided visit, group-buy groups
//! started and completed, paid orders, buyers and revenue.
//!
//! Kept per member and campaign in `fact_activity` (the earliest reservation and join, whether
//! the earliest join follows an OA-guided visit within 24 hours, the paid orders and their
//! revenue), per member and group in `fact_activity_group` (opened or joined the group,
//! reported it complete) and per member and order in `fact_activity_order` (the campaigns its
//! `order.placed` events name, the refunds of the order). A batch merges its events into the
//! rows of the members and campaigns it touches: earliest times by `min`, groups by `or`; only
//! the 24 hours before a join that appeared or moved earlier are probed for a guided visit, a
//! new guided visit at `g` looks at the member's joins in `[g, g + 24 h)`, and an order's
//! payment is read from `member_order` by its key. The counts (`activity_counts`,
//! `activity_group_counts`) move by the difference; a group that starts, completes or empties
//! moves its campaign's `groups_started` / `groups_completed` (the update returns the group's
//! new counts), so the view `metric_activity` reads one row per campaign.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use liandong_event::source::is_oa_guided;
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;
use serde_json::{json as j, Value};

use crate::member_profile::{amount, parse_ts, ts, ProfileEvent};
use crate::orders::OrderChange;
use crate::sql::{self, json, Db, Statement, Ty};

/// How long before a join an OA-guided visit makes it a guided join.
pub const GUIDED_WINDOW: Duration = Duration::hours(24);

/// A member in one campaign (a row of `fact_activity`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFact {
    pub first_reserved_at: Option<DateTime<Utc>>,
    /// `j`: the earliest join.
    pub first_joined_at: Option<DateTime<Utc>>,
    /// An OA-guided `mp.visit` at `g` with `g ≤ j < g + 24 h`.
    pub guided_joined: bool,
    pub orders_paid: i64,
    pub revenue_fen: i64,
}

impl ActivityFact {
    /// Reserved at or before the earliest join.
    pub fn reserved_joined(&self) -> bool {
        matches!((self.first_reserved_at, self.first_joined_at), (Some(r), Some(j)) if r <= j)
    }
}

/// Per-campaign counts, as added to (or taken from) `activity_counts`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
struct Counts {
    members: i64,
    reserved_users: i64,
    joined_users: i64,
    reserved_joined_users: i64,
    guided_joined_users: i64,
    orders_paid: i64,
    order_users: i64,
    revenue_fen: i64,
    /// Groups that started (`started_members` went from 0 to more) minus those that emptied.
    groups_started: i64,
    /// Groups started and completed, likewise.
    groups_completed: i64,
}

impl Counts {
    fn add(&mut self, f: &ActivityFact, sign: i64) {
        let n = |b: bool| sign * i64::from(b);
        self.members += sign;
        self.reserved_users += n(f.first_reserved_at.is_some());
        self.joined_users += n(f.first_joined_at.is_some());
        self.reserved_joined_users += n(f.reserved_joined());
        self.guided_joined_users += n(f.guided_joined && f.first_joined_at.is_some());
        self.orders_paid += sign * f.orders_paid;
        self.order_users += n(f.orders_paid > 0);
        self.revenue_fen += sign * f.revenue_fen;
    }
}

fn text<'a>(e: &'a ProfileEvent, k: &str) -> Option<&'a str> {
    e.props.get(k).and_then(Value::as_str)
}

/// The campaign an event names: every `activity.*` event, an `order.placed` with `activity_id`.
fn activity_of(e: &ProfileEvent) -> Option<&str> {
    match e.event_type {
        EventType::ActivityReserved
        | EventType::ActivityJoined
        | EventType::ActivityGroupCompleted
        | EventType::OrderPlaced => text(e, "activity_id"),
        _ => None,
    }
}

fn guided_visit(e: &ProfileEvent) -> bool {
    e.event_type == EventType::MpVisit && e.source_from.as_deref().is_some_and(is_oa_guided)
}

/// Merges a member's new events of one campaign into its fact (times only; the guided flag and
/// the orders are decided by the store).
pub fn merge_times(old: Option<&ActivityFact>, events: &[&ProfileEvent]) -> ActivityFact {
    let mut f = old.cloned().unwrap_or_default();
    for e in events {
        let slot = match e.event_type {
            EventType::ActivityReserved => &mut f.first_reserved_at,
            EventType::ActivityJoined => &mut f.first_joined_at,
            _ => continue,
        };
        if slot.is_none_or(|t| e.occurred_at < t) {
            *slot = Some(e.occurred_at);
        }
    }
    f
}

const PAIRS: sql::Columns = &[("member_key", Ty::Text), ("activity_id", Ty::Text)];
const ORDER_PAIRS: sql::Columns = &[("member_key", Ty::Text), ("order_id", Ty::Text)];
const GROUPS: sql::Columns = &[
    ("member_key", Ty::Text),
    ("activity_id", Ty::Text),
    ("group_id", Ty::Text),
];

static FACTS_OF_MEMBERS: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, activity_id, {}, {}, guided_joined, orders_paid, revenue_fen
         FROM fact_activity WHERE member_key IN {}",
        sql::ts_text(d, "first_reserved_at"),
        sql::ts_text(d, "first_joined_at"),
        sql::values(d, 1)
    )
});
static DELETE_FACTS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_activity WHERE (member_key, activity_id) IN (SELECT member_key, activity_id FROM {})",
        sql::records(d, 1, "p", PAIRS)
    )
});
static INSERT_FACTS: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "fact_activity",
        &[
            ("member_key", Ty::Text),
            ("activity_id", Ty::Text),
            ("first_reserved_at", Ty::Ts),
            ("first_joined_at", Ty::Ts),
            ("guided_joined", Ty::Bool),
            ("orders_paid", Ty::Int),
            ("revenue_fen", Ty::Int),
        ],
    )
});
static GUIDED: Statement = Statement::new(|d| {
    format!(
        "SELECT q.member_key, q.activity_id FROM {} WHERE EXISTS (SELECT 1 FROM events e
           WHERE e.member_key = q.member_key AND e.type = 'mp.visit'
             AND e.occurred_at > q.start AND e.occurred_at <= q.stop
             AND e.source_from IN ('menu', 'article', 'template', 'oa_msg', 'oa_profile'))",
        sql::records(
            d,
            1,
            "q",
            &[
                ("member_key", Ty::Text),
                ("activity_id", Ty::Text),
                ("start", Ty::Ts),
                ("stop", Ty::Ts),
            ]
        )
    )
});
static ORDER_ROWS: Statement = Statement::new(|d| {
    format!(
        "SELECT f.member_key, f.order_id, f.activity_id FROM {} JOIN fact_activity_order f
           ON f.member_key = p.member_key AND f.order_id = p.order_id",
        sql::records(d, 1, "p", ORDER_PAIRS)
    )
});
static DELETE_ORDERS_OF_MEMBERS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_activity_order WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static REFUNDS: Statement = Statement::new(|d| {
    format!(
        "SELECT p.member_key, p.order_id, {} FROM {} JOIN events e
           ON e.member_key = p.member_key AND e.type = 'order.refunded' AND e.props ->> 'order_id' = p.order_id",
        sql::text(d, "e.props"),
        sql::records(d, 1, "p", ORDER_PAIRS)
    )
});
static DELETE_ORDERS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_activity_order WHERE (member_key, order_id) IN (SELECT member_key, order_id FROM {})",
        sql::records(d, 1, "p", ORDER_PAIRS)
    )
});
static INSERT_ORDERS: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "fact_activity_order",
        &[
            ("member_key", Ty::Text),
            ("order_id", Ty::Text),
            ("activity_id", Ty::Text),
            ("refunded_fen", Ty::Int),
        ],
    )
});
static PAID_OF: Statement = Statement::new(|d| {
    format!(
        "SELECT f.member_key, f.activity_id, o.amount_fen, f.refunded_fen
         FROM {} JOIN fact_activity_order f ON f.member_key = p.member_key AND f.activity_id = p.activity_id
         JOIN member_order o ON o.member_key = f.member_key AND o.order_id = f.order_id",
        sql::records(d, 1, "p", PAIRS)
    )
});
static GROUPS_OF_MEMBERS: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, activity_id, group_id, started, completed FROM fact_activity_group WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static DELETE_GROUPS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_activity_group WHERE (member_key, activity_id, group_id) IN
           (SELECT member_key, activity_id, group_id FROM {})",
        sql::records(d, 1, "p", GROUPS)
    )
});
static INSERT_GROUPS: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "fact_activity_group",
        &[
            ("member_key", Ty::Text),
            ("activity_id", Ty::Text),
            ("group_id", Ty::Text),
            ("started", Ty::Bool),
            ("completed", Ty::Bool),
        ],
    )
});
static ADD: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "activity_counts",
        &["activity_id"],
        &[
            ("activity_id", Ty::Text),
            ("members", Ty::Int),
            ("reserved_users", Ty::Int),
            ("joined_users", Ty::Int),
            ("reserved_joined_users", Ty::Int),
            ("guided_joined_users", Ty::Int),
            ("orders_paid", Ty::Int),
            ("order_users", Ty::Int),
            ("revenue_fen", Ty::Int),
            ("groups_started", Ty::Int),
            ("groups_completed", Ty::Int),
        ],
    )
});
static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM activity_counts WHERE members = 0 AND activity_id IN {}",
        sql::values(d, 1)
    )
});
/// Adds to the groups' member counts and returns their new values: the row lock of the update
/// orders concurrent batches on a group, so new − added is the value this batch moved it from.
static ADD_GROUPS: Statement = Statement::new(|d| {
    format!(
        "{} RETURNING activity_id, group_id, started_members, completed_members",
        sql::add_counts(
            d,
            "activity_group_counts",
            &["activity_id", "group_id"],
            &[
                ("activity_id", Ty::Text),
                ("group_id", Ty::Text),
                ("started_members", Ty::Int),
                ("completed_members", Ty::Int),
            ],
        )
    )
});
static DROP_EMPTY_GROUPS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM activity_group_counts WHERE started_members = 0 AND completed_members = 0
           AND (activity_id, group_id) IN (SELECT activity_id, group_id FROM {})",
        sql::records(
            d,
            1,
            "x",
            &[("activity_id", Ty::Text), ("group_id", Ty::Text)]
        )
    )
});

type FactTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    bool,
    i64,
    i64,
);
type Pair = (String, String);

fn fact_of(t: &FactTuple) -> Result<ActivityFact, StoreError> {
    Ok(ActivityFact {
        first_reserved_at: t.2.as_deref().map(parse_ts).transpose()?,
        first_joined_at: t.3.as_deref().map(parse_ts).transpose()?,
        guided_joined: t.4,
        orders_paid: t.5,
        revenue_fen: t.6,
    })
}

/// Merges the batch's campaign events, guided visits and order changes into the members'
/// campaign facts (members in `reset` start from nothing) and moves the counts.
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    orders: &[OrderChange],
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    // What the batch names: campaigns per member, groups, orders placed for a campaign,
    // refunds, guided visits.
    let mut events_of: BTreeMap<Pair, Vec<&ProfileEvent>> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String, String), (bool, bool)> = BTreeMap::new();
    let mut placed: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut order_pairs: BTreeSet<Pair> = BTreeSet::new();
    let mut guided_at: BTreeMap<&str, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (key, events) in added {
        for e in events {
            if guided_visit(e) {
                guided_at.entry(key).or_default().push(e.occurred_at);
            }
            if e.event_type == EventType::OrderRefunded {
                if let Some(o) = text(e, "order_id") {
                    order_pairs.insert((key.clone(), o.to_owned()));
                }
            }
            let Some(a) = activity_of(e) else { continue };
            events_of
                .entry((key.clone(), a.to_owned()))
                .or_default()
                .push(e);
            match (e.event_type, text(e, "group_id")) {
                (EventType::ActivityJoined, Some(g)) if text(e, "kind") == Some("groupbuy") => {
                    groups
                        .entry((key.clone(), a.to_owned(), g.to_owned()))
                        .or_default()
                        .0 = true;
                }
                (EventType::ActivityGroupCompleted, Some(g)) => {
                    groups
                        .entry((key.clone(), a.to_owned(), g.to_owned()))
                        .or_default()
                        .1 = true;
                }
                (EventType::OrderPlaced, _) => {
                    if let Some(o) = text(e, "order_id") {
                        placed.insert((key.clone(), o.to_owned(), a.to_owned()));
                        order_pairs.insert((key.clone(), o.to_owned()));
                    }
                }
                _ => {}
            }
        }
    }
    for o in orders {
        order_pairs.insert((o.member_key.clone(), o.order_id.clone()));
    }
    if events_of.is_empty()
        && order_pairs.is_empty()
        && guided_at.is_empty()
        && groups.is_empty()
        && reset.is_empty()
    {
        return Ok(());
    }

    let mut deltas: BTreeMap<String, Counts> = BTreeMap::new();

    // Reset members: every row goes, its contributions come off the counts.
    let reset_json = json(reset);
    let mut group_deltas: BTreeMap<Pair, (i64, i64)> = BTreeMap::new();
    if !reset.is_empty() {
        let mut pairs = Vec::new();
        for t in db
            .fetch::<FactTuple>(&FACTS_OF_MEMBERS, &[&reset_json])
            .await?
        {
            deltas
                .entry(t.1.clone())
                .or_default()
                .add(&fact_of(&t)?, -1);
            pairs.push(j!({"member_key": t.0, "activity_id": t.1}));
        }
        if !pairs.is_empty() {
            db.exec(&DELETE_FACTS, &[&json(&pairs)]).await?;
        }
        let old_groups = db
            .fetch::<(String, String, String, bool, bool)>(&GROUPS_OF_MEMBERS, &[&reset_json])
            .await?;
        for (_, a, g, started, completed) in &old_groups {
            let d = group_deltas.entry((a.clone(), g.clone())).or_default();
            d.0 -= i64::from(*started);
            d.1 -= i64::from(*completed);
        }
        let rows: Vec<_> = old_groups
            .iter()
            .map(|(k, a, g, _, _)| j!({"member_key": k, "activity_id": a, "group_id": g}))
            .collect();
        if !rows.is_empty() {
            db.exec(&DELETE_GROUPS, &[&json(&rows)]).await?;
        }
        db.exec(&DELETE_ORDERS_OF_MEMBERS, &[&reset_json]).await?;
    }

    // Orders: the campaigns each touched order belongs to, and its refunds, rewritten.
    let mut affected: BTreeSet<Pair> = events_of.keys().cloned().collect();
    if !order_pairs.is_empty() {
        let pairs: Vec<_> = order_pairs
            .iter()
            .map(|(k, o)| j!({"member_key": k, "order_id": o}))
            .collect();
        let pairs = json(&pairs);
        let mut activities: BTreeMap<Pair, BTreeSet<String>> = BTreeMap::new();
        for (k, o, a) in db
            .fetch::<(String, String, String)>(&ORDER_ROWS, &[&pairs])
            .await?
        {
            activities.entry((k, o)).or_default().insert(a);
        }
        for (k, o, a) in &placed {
            activities
                .entry((k.clone(), o.clone()))
                .or_default()
                .insert(a.clone());
        }
        if !activities.is_empty() {
            let mut refunded: BTreeMap<Pair, i64> = BTreeMap::new();
            for (k, o, props) in db
                .fetch::<(String, String, String)>(&REFUNDS, &[&pairs])
                .await?
            {
                let props: Value = serde_json::from_str(&props).unwrap_or(Value::Null);
                *refunded.entry((k, o)).or_default() += amount(&props);
            }
            db.exec(&DELETE_ORDERS, &[&pairs]).await?;
            let mut rows = Vec::new();
            for ((k, o), set) in &activities {
                let r = refunded.get(&(k.clone(), o.clone())).copied().unwrap_or(0);
                for a in set {
                    rows.push(
                        j!({"member_key": k, "order_id": o, "activity_id": a, "refunded_fen": r}),
                    );
                    affected.insert((k.clone(), a.clone()));
                }
            }
            db.exec(&INSERT_ORDERS, &[&json(&rows)]).await?;
        }
    }

    // The facts before the batch, of every member it touches (a member's campaigns are few).
    let mut members: BTreeSet<&str> = affected.iter().map(|(k, _)| k.as_str()).collect();
    members.extend(guided_at.keys().copied());
    members.retain(|k| !reset.contains(*k));
    let mut old: BTreeMap<Pair, ActivityFact> = BTreeMap::new();
    if !members.is_empty() {
        for t in db
            .fetch::<FactTuple>(&FACTS_OF_MEMBERS, &[&json(&members)])
            .await?
        {
            old.insert((t.0.clone(), t.1.clone()), fact_of(&t)?);
        }
    }
    // A new guided visit at g reaches the joins in [g, g + 24 h).
    for (k, times) in &guided_at {
        for ((m, a), f) in old.range((k.to_string(), String::new())..) {
            if m != k {
                break;
            }
            if f.first_joined_at
                .is_some_and(|j| times.iter().any(|g| *g <= j && j < *g + GUIDED_WINDOW))
            {
                affected.insert((m.clone(), a.clone()));
            }
        }
    }
    if affected.is_empty() {
        return write_counts(db, deltas, group_deltas).await;
    }

    let mut new: BTreeMap<Pair, ActivityFact> = BTreeMap::new();
    let mut probes = Vec::new();
    for key in &affected {
        let events = events_of.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let mut f = merge_times(old.get(key), events);
        f.guided_joined = false;
        f.orders_paid = 0;
        f.revenue_fen = 0;
        if let Some(j) = f.first_joined_at {
            probes.push(j!({"member_key": key.0, "activity_id": key.1,
                "start": ts(&(j - GUIDED_WINDOW)), "stop": ts(&j)}));
        }
        new.insert(key.clone(), f);
    }
    if !probes.is_empty() {
        for (k, a) in db
            .fetch::<(String, String)>(&GUIDED, &[&json(&probes)])
            .await?
        {
            if let Some(f) = new.get_mut(&(k, a)) {
                f.guided_joined = true;
            }
        }
    }
    let pairs: Vec<_> = affected
        .iter()
        .map(|(k, a)| j!({"member_key": k, "activity_id": a}))
        .collect();
    let pairs = json(&pairs);
    for (k, a, paid, refunded) in db
        .fetch::<(String, String, i64, i64)>(&PAID_OF, &[&pairs])
        .await?
    {
        if let Some(f) = new.get_mut(&(k, a)) {
            f.orders_paid += 1;
            f.revenue_fen += paid - refunded;
        }
    }
    let mut rows = Vec::new();
    for (key, f) in &new {
        if let Some(o) = old.get(key) {
            deltas.entry(key.1.clone()).or_default().add(o, -1);
        }
        deltas.entry(key.1.clone()).or_default().add(f, 1);
        rows.push(j!({
            "member_key": key.0, "activity_id": key.1,
            "first_reserved_at": f.first_reserved_at.as_ref().map(ts),
            "first_joined_at": f.first_joined_at.as_ref().map(ts),
            "guided_joined": f.guided_joined, "orders_paid": f.orders_paid, "revenue_fen": f.revenue_fen,
        }));
    }
    db.exec(&DELETE_FACTS, &[&pairs]).await?;
    db.exec(&INSERT_FACTS, &[&json(&rows)]).await?;

    // Groups: a member's row says it opened or joined the group, and whether it reported it
    // complete; merged by `or`.
    if !groups.is_empty() {
        let members: BTreeSet<&str> = groups
            .keys()
            .map(|(k, _, _)| k.as_str())
            .filter(|k| !reset.contains(*k))
            .collect();
        let mut old_groups: BTreeMap<(String, String, String), (bool, bool)> = BTreeMap::new();
        if !members.is_empty() {
            for (k, a, g, s, c) in db
                .fetch::<(String, String, String, bool, bool)>(
                    &GROUPS_OF_MEMBERS,
                    &[&json(&members)],
                )
                .await?
            {
                old_groups.insert((k, a, g), (s, c));
            }
        }
        let mut changed = Vec::new();
        for (key, (s, c)) in &groups {
            let before = old_groups.get(key).copied();
            let (s0, c0) = before.unwrap_or_default();
            let after = (s0 || *s, c0 || *c);
            if before == Some(after) {
                continue;
            }
            let d = group_deltas
                .entry((key.1.clone(), key.2.clone()))
                .or_default();
            d.0 += i64::from(after.0) - i64::from(s0);
            d.1 += i64::from(after.1) - i64::from(c0);
            changed.push((key, after));
        }
        if !changed.is_empty() {
            let keys: Vec<_> = changed
                .iter()
                .map(|((k, a, g), _)| j!({"member_key": k, "activity_id": a, "group_id": g}))
                .collect();
            db.exec(&DELETE_GROUPS, &[&json(&keys)]).await?;
            let rows: Vec<_> = changed
                .iter()
                .map(|((k, a, g), (s, c))| {
                    j!({"member_key": k, "activity_id": a, "group_id": g, "started": s, "completed": c})
                })
                .collect();
            db.exec(&INSERT_GROUPS, &[&json(&rows)]).await?;
        }
    }
    write_counts(db, deltas, group_deltas).await
}

/// Whether a group with these member counts is started, and started and completed.
fn group_state(started_members: i64, completed_members: i64) -> (i64, i64) {
    let started = started_members > 0;
    (
        i64::from(started),
        i64::from(started && completed_members > 0),
    )
}

async fn write_counts<C: Db + ?Sized>(
    db: &mut C,
    mut deltas: BTreeMap<String, Counts>,
    groups: BTreeMap<Pair, (i64, i64)>,
) -> Result<(), StoreError> {
    // The groups first: a group that starts, completes or empties moves its campaign's counts.
    let rows: Vec<_> = groups
        .iter()
        .filter(|(_, d)| **d != (0, 0))
        .map(|((a, g), (s, c))| {
            j!({"activity_id": a, "group_id": g, "started_members": s, "completed_members": c})
        })
        .collect();
    if !rows.is_empty() {
        let moved: Vec<(String, String, i64, i64)> = db.fetch(&ADD_GROUPS, &[&json(&rows)]).await?;
        for (activity, group, started, completed) in moved {
            let (ds, dc) = groups
                .get(&(activity.clone(), group))
                .copied()
                .unwrap_or_default();
            let (s1, c1) = group_state(started, completed);
            let (s0, c0) = group_state(started - ds, completed - dc);
            let counts = deltas.entry(activity).or_default();
            counts.groups_started += s1 - s0;
            counts.groups_completed += c1 - c0;
        }
        let shrunk: Vec<_> = groups
            .iter()
            .filter(|(_, d)| d.0 < 0 || d.1 < 0)
            .map(|((a, g), _)| j!({"activity_id": a, "group_id": g}))
            .collect();
        if !shrunk.is_empty() {
            db.exec(&DROP_EMPTY_GROUPS, &[&json(&shrunk)]).await?;
        }
    }
    let rows: Vec<_> = deltas
        .iter()
        .filter(|(_, c)| **c != Counts::default())
        .map(|(a, c)| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["activity_id"] = j!(a);
            v
        })
        .collect();
    if !rows.is_empty() {
        db.exec(&ADD, &[&json(&rows)]).await?;
        let shrunk: Vec<&str> = deltas
            .iter()
            .filter(|(_, c)| c.members < 0)
            .map(|(a, _)| a.as_str())
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

    fn ev(t: EventType, at: &str) -> ProfileEvent {
        ProfileEvent {
            event_id: at.into(),
            event_type: t,
            occurred_at: at.parse().unwrap(),
            source_from: None,
            props: j!({"activity_id": "a"}),
        }
    }

    #[test]
    fn given_a_reservation_after_the_earliest_join_then_the_join_is_not_reserved() {
        let join = ev(EventType::ActivityJoined, "2026-04-03T04:00:00Z");
        let late = ev(EventType::ActivityReserved, "2026-04-03T05:00:00Z");
        let f = merge_times(None, &[&late, &join]);
        assert!(!f.reserved_joined());
        let early = ev(EventType::ActivityReserved, "2026-04-03T04:00:00Z");
        let f = merge_times(Some(&f), &[&early]);
        assert!(f.reserved_joined(), "at the same instant counts");
        // An earlier join moves j before the reservation.
        let earlier = ev(EventType::ActivityJoined, "2026-04-02T04:00:00Z");
        assert!(!merge_times(Some(&f), &[&earlier]).reserved_joined());
    }
}
