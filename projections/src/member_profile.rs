//! `member_profile` (METRICS.md): one row per member, a pure fold of the member's events.
//! The fold sees the member's events as a set: it sorts them by (occurred_at, event_id) itself,
//! so the arrival order never matters, and equal times are broken by event_id, deterministically.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use liandong_event::EventType;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The fields of one event the fold reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEvent {
    pub event_id: String,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub source_from: Option<String>,
    pub props: Value,
}

/// The event types the fold reads beyond first/last seen.
pub const PROFILE_TYPES: &[EventType] = &[
    EventType::MpVisit,
    EventType::OaFollow,
    EventType::OaUnfollow,
    EventType::OrderPaid,
    EventType::OrderRefunded,
    EventType::CouponClaimed,
    EventType::CouponRedeemed,
    EventType::MemberPreferencesChanged,
    EventType::MpFollowPromptShown,
];

/// Who a member is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub unionid: Option<String>,
    pub oa_openid: Option<String>,
    pub mp_openid: Option<String>,
}

/// Canonical text form of a time: RFC 3339, UTC, microseconds. Text order is time order, which
/// the SQLite store relies on; PostgreSQL reads it as `timestamptz`.
pub fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn ser_ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts(t))
}

fn ser_opt_ts<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&ts(t)),
        None => s.serialize_none(),
    }
}

/// A row of `member_profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberProfile {
    pub member_key: String,
    pub unionid: Option<String>,
    pub oa_openid: Option<String>,
    pub mp_openid: Option<String>,
    #[serde(serialize_with = "ser_ts")]
    pub first_seen_at: DateTime<Utc>,
    #[serde(serialize_with = "ser_ts")]
    pub last_seen_at: DateTime<Utc>,
    pub first_from: Option<String>,
    pub following: bool,
    #[serde(serialize_with = "ser_opt_ts")]
    pub followed_at: Option<DateTime<Utc>>,
    pub follow_via: Option<String>,
    pub orders_paid: i64,
    pub revenue_fen: i64,
    #[serde(serialize_with = "ser_opt_ts")]
    pub first_paid_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub last_paid_at: Option<DateTime<Utc>>,
    pub coupons_claimed: i64,
    pub coupons_redeemed: i64,
    pub activity_notifications: bool,
    #[serde(serialize_with = "ser_opt_ts")]
    pub last_prompt_at: Option<DateTime<Utc>>,
}

fn text<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

fn amount(props: &Value) -> i64 {
    // Validated as a whole number >= 0 at ingestion; `5.0` is a whole number too.
    match props.get("amount_fen") {
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        None => 0,
    }
}

/// Folds a member's events. `seen` is the (earliest, latest) `occurred_at` over all of the
/// member's events, including types the fold does not otherwise read.
pub fn fold(
    member_key: &str,
    identity: Identity,
    seen: (DateTime<Utc>, DateTime<Utc>),
    events: &[ProfileEvent],
) -> MemberProfile {
    let mut sorted: Vec<&ProfileEvent> = events.iter().collect();
    sorted.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));

    let mut p = MemberProfile {
        member_key: member_key.to_owned(),
        unionid: identity.unionid,
        oa_openid: identity.oa_openid,
        mp_openid: identity.mp_openid,
        first_seen_at: seen.0,
        last_seen_at: seen.1,
        first_from: None,
        following: false,
        followed_at: None,
        follow_via: None,
        orders_paid: 0,
        revenue_fen: 0,
        first_paid_at: None,
        last_paid_at: None,
        coupons_claimed: 0,
        coupons_redeemed: 0,
        activity_notifications: true,
        last_prompt_at: None,
    };
    // order_id -> (paid time, amount) of its first order.paid.
    let mut paid: BTreeMap<&str, (DateTime<Utc>, i64)> = BTreeMap::new();
    let mut refunded = 0i64;
    let mut seen_visit = false;
    // Later events overwrite: the loop runs in (occurred_at, event_id) order.
    for e in sorted {
        match e.event_type {
            EventType::MpVisit if !seen_visit => {
                seen_visit = true;
                p.first_from = e.source_from.clone();
            }
            EventType::OaFollow => {
                p.following = true;
                p.followed_at = Some(e.occurred_at);
                p.follow_via = text(&e.props, "via").map(str::to_owned);
            }
            EventType::OaUnfollow => p.following = false,
            EventType::OrderPaid => {
                if let Some(order) = text(&e.props, "order_id") {
                    paid.entry(order)
                        .or_insert((e.occurred_at, amount(&e.props)));
                }
            }
            EventType::OrderRefunded => refunded += amount(&e.props),
            EventType::CouponClaimed => p.coupons_claimed += 1,
            EventType::CouponRedeemed => p.coupons_redeemed += 1,
            EventType::MemberPreferencesChanged => {
                if let Some(b) = e
                    .props
                    .get("activity_notifications")
                    .and_then(Value::as_bool)
                {
                    p.activity_notifications = b;
                }
            }
            EventType::MpFollowPromptShown => p.last_prompt_at = Some(e.occurred_at),
            _ => {}
        }
    }
    p.orders_paid = paid.len() as i64;
    p.revenue_fen = paid.values().map(|(_, a)| a).sum::<i64>() - refunded;
    p.first_paid_at = paid.values().map(|(t, _)| *t).min();
    p.last_paid_at = paid.values().map(|(t, _)| *t).max();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: &str, t: EventType, at: &str, props: Value) -> ProfileEvent {
        ProfileEvent {
            event_id: id.into(),
            event_type: t,
            occurred_at: at.parse().unwrap(),
            source_from: (t == EventType::MpVisit).then(|| format!("from-{id}")),
            props,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn given_follows_orders_and_refunds_then_the_profile_follows_the_definitions() {
        use EventType as T;
        let events = vec![
            ev(
                "e1",
                T::OaFollow,
                "2026-11-01T00:00:00Z",
                json!({"via": "mp_prompt"}),
            ),
            ev("e2", T::OaUnfollow, "2026-11-02T00:00:00Z", json!({})),
            ev(
                "e3",
                T::OaFollow,
                "2026-11-03T00:00:00Z",
                json!({"via": "qrcode"}),
            ),
            ev(
                "e4",
                T::OrderPaid,
                "2026-11-04T00:00:00Z",
                json!({"order_id": "A", "amount_fen": 1000}),
            ),
            // Paid twice: the first paid event counts, once.
            ev(
                "e5",
                T::OrderPaid,
                "2026-11-05T00:00:00Z",
                json!({"order_id": "A", "amount_fen": 999}),
            ),
            ev(
                "e6",
                T::OrderPaid,
                "2026-11-06T00:00:00Z",
                json!({"order_id": "B", "amount_fen": 500}),
            ),
            ev(
                "e7",
                T::OrderRefunded,
                "2026-11-07T00:00:00Z",
                json!({"order_id": "B", "amount_fen": 200}),
            ),
            ev("e8", T::MpVisit, "2026-11-08T00:00:00Z", json!({})),
            ev("e9", T::MpVisit, "2026-10-08T00:00:00Z", json!({})),
            ev(
                "ea",
                T::MemberPreferencesChanged,
                "2026-11-09T00:00:00Z",
                json!({"activity_notifications": false}),
            ),
            ev(
                "eb",
                T::MemberPreferencesChanged,
                "2026-11-10T00:00:00Z",
                json!({}),
            ),
            ev(
                "ec",
                T::MpFollowPromptShown,
                "2026-11-11T00:00:00Z",
                json!({}),
            ),
        ];
        let seen = (at("2026-10-08T00:00:00Z"), at("2026-11-11T00:00:00Z"));
        let mut reversed = events.clone();
        reversed.reverse();
        let p = fold("u1", Identity::default(), seen, &events);
        assert_eq!(p, fold("u1", Identity::default(), seen, &reversed));
        assert!(p.following);
        assert_eq!(p.followed_at, Some(at("2026-11-03T00:00:00Z")));
        assert_eq!(p.follow_via.as_deref(), Some("qrcode"));
        assert_eq!((p.orders_paid, p.revenue_fen), (2, 1300));
        assert_eq!(p.first_paid_at, Some(at("2026-11-04T00:00:00Z")));
        assert_eq!(p.last_paid_at, Some(at("2026-11-06T00:00:00Z")));
        assert_eq!(p.first_from.as_deref(), Some("from-e9"));
        assert!(
            !p.activity_notifications,
            "an event without the key changes nothing"
        );
        assert_eq!(p.last_prompt_at, Some(at("2026-11-11T00:00:00Z")));
    }

    #[test]
    fn given_nothing_but_a_page_view_then_defaults_hold() {
        let seen = (at("2026-11-01T00:00:00Z"), at("2026-11-01T00:00:00Z"));
        let p = fold("mp:o1", Identity::default(), seen, &[]);
        assert!(!p.following && p.activity_notifications);
        assert_eq!((p.orders_paid, p.revenue_fen, p.first_from), (0, 0, None));
    }

    #[test]
    fn given_a_follow_and_unfollow_at_the_same_instant_then_event_id_decides() {
        use EventType as T;
        let t = "2026-11-01T00:00:00Z";
        let events = [
            ev("b", T::OaUnfollow, t, json!({})),
            ev("a", T::OaFollow, t, json!({})),
        ];
        let p = fold("u", Identity::default(), (at(t), at(t)), &events);
        assert!(
            !p.following,
            "b sorts after a, so the unfollow is the latest"
        );
    }
}
