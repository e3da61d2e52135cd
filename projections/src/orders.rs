//! `member_order`: each member's paid orders. METRICS.md: an order is paid at the time of its
//! first `order.paid` event (by `order_id`), for that event's `amount_fen`. The merge keeps the
//! earliest `(occurred_at, event_id)` per order, whatever the arrival order; a member's profile
//! (orders paid, revenue) and its linkage conversion read these rows instead of its events.
//!
//! `guided` marks an order paid within 7 days after one of the member's OA-guided visits
//! (`g ≤ paid_at < g + 7 days`): the orders that can make the member's linkage conversion `t0`.
//! It is kept by [`crate::retention_repurchase`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;
use serde_json::Value;

use crate::member_profile::{amount, parse_ts, ts, ProfileEvent};
use crate::sql::{self, json, Db, Statement, Ty};

/// A member's paid order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub paid_at: DateTime<Utc>,
    pub paid_event: String,
    pub amount_fen: i64,
}

/// What a batch did to one order of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChange {
    pub member_key: String,
    pub order_id: String,
    pub old: Option<Order>,
    pub new: Order,
}

/// The order after `paid` events (`(occurred_at, event_id, amount)`): the earliest one wins.
pub fn merge<'a>(
    old: Option<&Order>,
    paid: impl IntoIterator<Item = (DateTime<Utc>, &'a str, i64)>,
) -> Option<Order> {
    let mut best = old.cloned();
    for (at, id, amount_fen) in paid {
        if best
            .as_ref()
            .is_none_or(|b| (at, id) < (b.paid_at, b.paid_event.as_str()))
        {
            best = Some(Order {
                paid_at: at,
                paid_event: id.to_owned(),
                amount_fen,
            });
        }
    }
    best
}

fn order_id(props: &Value) -> Option<&str> {
    props.get("order_id").and_then(Value::as_str)
}

#[derive(Serialize)]
struct KeyRow<'a> {
    member_key: &'a str,
    order_id: &'a str,
}

#[derive(Serialize)]
struct OrderRow<'a> {
    member_key: &'a str,
    order_id: &'a str,
    paid_at: String,
    paid_event: &'a str,
    amount_fen: i64,
    guided: bool,
}

const KEYS: sql::Columns = &[("member_key", Ty::Text), ("order_id", Ty::Text)];
const ROWS: sql::Columns = &[
    ("member_key", Ty::Text),
    ("order_id", Ty::Text),
    ("paid_at", Ty::Ts),
    ("paid_event", Ty::Text),
    ("amount_fen", Ty::Int),
    ("guided", Ty::Bool),
];

static READ: Statement = Statement::new(|d| {
    format!(
        "SELECT o.member_key, o.order_id, {}, o.paid_event, o.amount_fen, o.guided
         FROM {} JOIN member_order o ON o.member_key = k.member_key AND o.order_id = k.order_id",
        sql::ts_text(d, "o.paid_at"),
        sql::records(d, 1, "k", KEYS)
    )
});
static UPSERT: Statement =
    Statement::new(|d| sql::upsert(d, "member_order", &["member_key", "order_id"], ROWS));
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM member_order WHERE member_key IN {}",
        sql::values(d, 1)
    )
});

type StoredOrder = (String, String, String, String, i64, bool);

/// Merges the `order.paid` events of `added` into `member_order`; returns the orders that moved
/// (new, or paid earlier than known), with whether each is guided (`guided` decides, given the
/// changes; an unchanged order keeps its flag).
pub(crate) async fn merge_paid<C: Db + ?Sized>(
    db: &mut C,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
) -> Result<Vec<OrderChange>, StoreError> {
    let mut paid: BTreeMap<(&str, &str), Vec<(DateTime<Utc>, &str, i64)>> = BTreeMap::new();
    for (key, events) in added {
        for e in events
            .iter()
            .filter(|e| e.event_type == EventType::OrderPaid)
        {
            if let Some(o) = order_id(&e.props) {
                paid.entry((key, o)).or_default().push((
                    e.occurred_at,
                    &e.event_id,
                    amount(&e.props),
                ));
            }
        }
    }
    if paid.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<KeyRow> = paid
        .keys()
        .map(|(member_key, order_id)| KeyRow {
            member_key,
            order_id,
        })
        .collect();
    let mut stored: BTreeMap<(String, String), Order> = BTreeMap::new();
    for (k, o, at, event, amount_fen, _) in db.fetch::<StoredOrder>(&READ, &[&json(&keys)]).await? {
        stored.insert(
            (k, o),
            Order {
                paid_at: parse_ts(&at)?,
                paid_event: event,
                amount_fen,
            },
        );
    }
    let mut changes = Vec::new();
    for ((k, o), events) in paid {
        let old = stored.remove(&(k.to_owned(), o.to_owned()));
        let Some(new) = merge(old.as_ref(), events) else {
            continue;
        };
        if old.as_ref() != Some(&new) {
            changes.push(OrderChange {
                member_key: k.to_owned(),
                order_id: o.to_owned(),
                old,
                new,
            });
        }
    }
    Ok(changes)
}

/// Writes the changed orders with their `guided` flags.
pub(crate) async fn write<C: Db + ?Sized>(
    db: &mut C,
    changes: &[OrderChange],
    guided: &BTreeSet<(String, String)>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let rows: Vec<OrderRow> = changes
        .iter()
        .map(|c| OrderRow {
            member_key: &c.member_key,
            order_id: &c.order_id,
            paid_at: ts(&c.new.paid_at),
            paid_event: &c.new.paid_event,
            amount_fen: c.new.amount_fen,
            guided: guided.contains(&(c.member_key.clone(), c.order_id.clone())),
        })
        .collect();
    db.exec(&UPSERT, &[&json(&rows)]).await?;
    Ok(())
}

/// Forgets the orders of `keys` (a JSON array of member keys).
pub(crate) async fn reset<C: Db + ?Sized>(db: &mut C, keys: &str) -> Result<(), StoreError> {
    db.exec(&DELETE, &[keys]).await?;
    Ok(())
}

/// The members whose days a batch can move, and those days: for each member with new events or
/// changed orders, `affected_days` of its events and order changes (a windowed read model's own
/// rule). A member with new events but no affected day is left out.
pub(crate) fn affected_members<'a>(
    added: &'a BTreeMap<String, Vec<ProfileEvent>>,
    orders: &'a [OrderChange],
    tz: chrono_tz::Tz,
    affected_days: fn(
        &[ProfileEvent],
        &[&OrderChange],
        chrono_tz::Tz,
    ) -> BTreeSet<chrono::NaiveDate>,
) -> BTreeMap<&'a str, BTreeSet<chrono::NaiveDate>> {
    let mut by_member: BTreeMap<&str, Vec<&OrderChange>> = BTreeMap::new();
    for o in orders {
        by_member.entry(&o.member_key).or_default().push(o);
    }
    let mut affected: BTreeMap<&str, BTreeSet<chrono::NaiveDate>> = BTreeMap::new();
    for (key, events) in added {
        let orders = by_member.remove(key.as_str()).unwrap_or_default();
        let days = affected_days(events, &orders, tz);
        if !days.is_empty() {
            affected.insert(key, days);
        }
    }
    for (key, orders) in by_member {
        let days = affected_days(&[], &orders, tz);
        affected.entry(key).or_default().extend(days);
    }
    affected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn given_an_order_paid_twice_then_the_first_payment_counts_whatever_arrives_first() {
        let early = (at("2026-11-01T00:00:00Z"), "b", 1000);
        let late = (at("2026-11-02T00:00:00Z"), "a", 999);
        let one = merge(None, [late]);
        let both = merge(one.as_ref(), [early]).unwrap();
        assert_eq!(both, merge(None, [early, late]).unwrap());
        assert_eq!((both.paid_at, both.amount_fen), (early.0, 1000));
        // The same instant: the smaller event_id is first.
        let tie = merge(None, [(early.0, "c", 1), (early.0, "a", 2)]).unwrap();
        assert_eq!(tie.amount_fen, 2);
    }
}
