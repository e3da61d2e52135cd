//! `member_profile` (METRICS.md): one row per member. A batch merges the member's new events
//! into its stored row ([`merge`]): earliest and latest by `(occurred_at, event_id)` (kept in the
//! row's decider columns), counts and sums, and the paid orders of `member_order`. So an event
//! costs the member's one row, however long its history, and the arrival order never matters;
//! equal times are broken by event_id, deterministically.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::orders::OrderChange;
use crate::sql::{self, json, Db, Statement, Ty};

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

/// Parses the canonical text form of a time (and any RFC 3339 time).
pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("time {s:?}: {e}").into())))
}

fn text<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

pub(crate) fn amount(props: &Value) -> i64 {
    // Validated as a whole number >= 0 at ingestion; `5.0` is a whole number too.
    match props.get("amount_fen") {
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        None => 0,
    }
}

/// What the merge keeps beside the profile's columns: the `(occurred_at, event_id)` of the
/// events that decided a "first" or "latest" column, so a later-arriving event can be compared
/// with them. Stored in `member_profile` too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deciders {
    /// The member's earliest `mp.visit` (decides `first_from`).
    pub first_visit: Option<(DateTime<Utc>, String)>,
    /// The latest `oa.follow` or `oa.unfollow` (decides `following`).
    pub follow_change: Option<(DateTime<Utc>, String)>,
    /// The event id of the latest `oa.follow` (decides `followed_at`, `follow_via`).
    pub followed_event: Option<String>,
    /// The latest `member.preferences_changed` that set `activity_notifications`.
    pub preferences: Option<(DateTime<Utc>, String)>,
}

/// A stored profile with its deciders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileState {
    pub profile: MemberProfile,
    pub deciders: Deciders,
}

fn later(t: &(DateTime<Utc>, &str), than: &Option<(DateTime<Utc>, String)>) -> bool {
    than.as_ref()
        .is_none_or(|(at, id)| (t.0, t.1) > (*at, id.as_str()))
}

/// Merges `events` (new to the member) and the member's changed `orders` into its stored state
/// (`None` for a member not seen before). Every rule is a merge that ignores order: earliest
/// and latest by `(occurred_at, event_id)`, counts and sums. Returns the new state and whether
/// `last_paid_at` must be re-read from `member_order` (an order paid earlier than known was
/// the latest one).
pub fn merge(
    member_key: &str,
    identity: Identity,
    state: Option<ProfileState>,
    events: &[ProfileEvent],
    orders: &[&OrderChange],
) -> (ProfileState, bool) {
    let first = events.iter().map(|e| e.occurred_at).min();
    let last = events.iter().map(|e| e.occurred_at).max();
    let ProfileState {
        profile: mut p,
        deciders: mut d,
    } = state.unwrap_or_else(|| ProfileState {
        profile: MemberProfile {
            member_key: member_key.to_owned(),
            unionid: None,
            oa_openid: None,
            mp_openid: None,
            first_seen_at: first.unwrap_or_default(),
            last_seen_at: last.unwrap_or_default(),
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
        },
        deciders: Deciders::default(),
    });
    p.unionid = identity.unionid;
    p.oa_openid = identity.oa_openid;
    p.mp_openid = identity.mp_openid;
    if let Some(f) = first {
        p.first_seen_at = p.first_seen_at.min(f);
    }
    if let Some(l) = last {
        p.last_seen_at = p.last_seen_at.max(l);
    }
    for e in events {
        let at = (e.occurred_at, e.event_id.as_str());
        match e.event_type {
            EventType::MpVisit => {
                if d.first_visit
                    .as_ref()
                    .is_none_or(|(t, id)| (at.0, at.1) < (*t, id.as_str()))
                {
                    d.first_visit = Some((at.0, at.1.to_owned()));
                    p.first_from = e.source_from.clone();
                }
            }
            EventType::OaFollow | EventType::OaUnfollow => {
                if later(&at, &d.follow_change) {
                    d.follow_change = Some((at.0, at.1.to_owned()));
                    p.following = e.event_type == EventType::OaFollow;
                }
                let newer_follow = match (&p.followed_at, &d.followed_event) {
                    (Some(t), Some(id)) => (at.0, at.1) > (*t, id.as_str()),
                    _ => true,
                };
                if e.event_type == EventType::OaFollow && newer_follow {
                    p.followed_at = Some(at.0);
                    d.followed_event = Some(at.1.to_owned());
                    p.follow_via = text(&e.props, "via").map(str::to_owned);
                }
            }
            EventType::OrderRefunded => p.revenue_fen -= amount(&e.props),
            EventType::CouponClaimed => p.coupons_claimed += 1,
            EventType::CouponRedeemed => p.coupons_redeemed += 1,
            EventType::MemberPreferencesChanged => {
                if let Some(b) = e
                    .props
                    .get("activity_notifications")
                    .and_then(Value::as_bool)
                {
                    if later(&at, &d.preferences) {
                        d.preferences = Some((at.0, at.1.to_owned()));
                        p.activity_notifications = b;
                    }
                }
            }
            EventType::MpFollowPromptShown => {
                p.last_prompt_at = p.last_prompt_at.max(Some(at.0));
            }
            _ => {}
        }
    }
    let mut reread_last_paid = false;
    for o in orders {
        match &o.old {
            None => {
                p.orders_paid += 1;
                p.revenue_fen += o.new.amount_fen;
            }
            Some(old) => {
                p.revenue_fen += o.new.amount_fen - old.amount_fen;
                reread_last_paid |=
                    p.last_paid_at == Some(old.paid_at) && o.new.paid_at < old.paid_at;
            }
        }
        p.first_paid_at = Some(
            p.first_paid_at
                .map_or(o.new.paid_at, |t| t.min(o.new.paid_at)),
        );
        p.last_paid_at = Some(
            p.last_paid_at
                .map_or(o.new.paid_at, |t| t.max(o.new.paid_at)),
        );
    }
    (
        ProfileState {
            profile: p,
            deciders: d,
        },
        reread_last_paid,
    )
}

/// Folds all of a member's events at once (the merge into nothing). `seen` is the (earliest,
/// latest) `occurred_at` over all of the member's events, including types the fold does not
/// otherwise read.
pub fn fold(
    member_key: &str,
    identity: Identity,
    seen: (DateTime<Utc>, DateTime<Utc>),
    events: &[ProfileEvent],
) -> MemberProfile {
    let mut paid: BTreeMap<&str, Vec<(DateTime<Utc>, &str, i64)>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.event_type == EventType::OrderPaid)
    {
        if let Some(order) = text(&e.props, "order_id") {
            paid.entry(order)
                .or_default()
                .push((e.occurred_at, &e.event_id, amount(&e.props)));
        }
    }
    let orders: Vec<OrderChange> = paid
        .into_iter()
        .filter_map(|(order_id, p)| {
            Some(OrderChange {
                member_key: member_key.to_owned(),
                order_id: order_id.to_owned(),
                old: None,
                new: crate::orders::merge(None, p)?,
            })
        })
        .collect();
    let orders: Vec<&OrderChange> = orders.iter().collect();
    let (mut state, _) = merge(member_key, identity, None, events, &orders);
    state.profile.first_seen_at = seen.0;
    state.profile.last_seen_at = seen.1;
    state.profile
}

#[derive(sqlx::FromRow)]
struct StoredProfile {
    member_key: String,
    first_seen_at: String,
    last_seen_at: String,
    first_from: Option<String>,
    following: bool,
    followed_at: Option<String>,
    follow_via: Option<String>,
    orders_paid: i64,
    revenue_fen: i64,
    first_paid_at: Option<String>,
    last_paid_at: Option<String>,
    coupons_claimed: i64,
    coupons_redeemed: i64,
    activity_notifications: bool,
    last_prompt_at: Option<String>,
    first_visit_at: Option<String>,
    first_visit_event: Option<String>,
    follow_changed_at: Option<String>,
    follow_changed_event: Option<String>,
    followed_event: Option<String>,
    preferences_at: Option<String>,
    preferences_event: Option<String>,
}

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| parse_ts(&s)).transpose()
}

fn pair(
    at: Option<String>,
    id: Option<String>,
) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
    Ok(match (opt_ts(at)?, id) {
        (Some(t), Some(id)) => Some((t, id)),
        _ => None,
    })
}

impl StoredProfile {
    fn state(self) -> Result<ProfileState, StoreError> {
        Ok(ProfileState {
            profile: MemberProfile {
                member_key: self.member_key,
                unionid: None,
                oa_openid: None,
                mp_openid: None,
                first_seen_at: parse_ts(&self.first_seen_at)?,
                last_seen_at: parse_ts(&self.last_seen_at)?,
                first_from: self.first_from,
                following: self.following,
                followed_at: opt_ts(self.followed_at)?,
                follow_via: self.follow_via,
                orders_paid: self.orders_paid,
                revenue_fen: self.revenue_fen,
                first_paid_at: opt_ts(self.first_paid_at)?,
                last_paid_at: opt_ts(self.last_paid_at)?,
                coupons_claimed: self.coupons_claimed,
                coupons_redeemed: self.coupons_redeemed,
                activity_notifications: self.activity_notifications,
                last_prompt_at: opt_ts(self.last_prompt_at)?,
            },
            deciders: Deciders {
                first_visit: pair(self.first_visit_at, self.first_visit_event)?,
                follow_change: pair(self.follow_changed_at, self.follow_changed_event)?,
                followed_event: self.followed_event,
                preferences: pair(self.preferences_at, self.preferences_event)?,
            },
        })
    }
}

#[derive(Serialize)]
struct StateRow<'a> {
    #[serde(flatten)]
    profile: &'a MemberProfile,
    #[serde(serialize_with = "ser_opt_ts")]
    first_visit_at: Option<DateTime<Utc>>,
    first_visit_event: Option<&'a str>,
    #[serde(serialize_with = "ser_opt_ts")]
    follow_changed_at: Option<DateTime<Utc>>,
    follow_changed_event: Option<&'a str>,
    followed_event: Option<&'a str>,
    #[serde(serialize_with = "ser_opt_ts")]
    preferences_at: Option<DateTime<Utc>>,
    preferences_event: Option<&'a str>,
}

impl<'a> StateRow<'a> {
    fn of(s: &'a ProfileState) -> Self {
        let split = |p: &'a Option<(DateTime<Utc>, String)>| match p {
            Some((t, id)) => (Some(*t), Some(id.as_str())),
            None => (None, None),
        };
        let (first_visit_at, first_visit_event) = split(&s.deciders.first_visit);
        let (follow_changed_at, follow_changed_event) = split(&s.deciders.follow_change);
        let (preferences_at, preferences_event) = split(&s.deciders.preferences);
        StateRow {
            profile: &s.profile,
            first_visit_at,
            first_visit_event,
            follow_changed_at,
            follow_changed_event,
            followed_event: s.deciders.followed_event.as_deref(),
            preferences_at,
            preferences_event,
        }
    }
}

const COLUMNS: sql::Columns = &[
    ("member_key", Ty::Text),
    ("unionid", Ty::Text),
    ("oa_openid", Ty::Text),
    ("mp_openid", Ty::Text),
    ("first_seen_at", Ty::Ts),
    ("last_seen_at", Ty::Ts),
    ("first_from", Ty::Text),
    ("following", Ty::Bool),
    ("followed_at", Ty::Ts),
    ("follow_via", Ty::Text),
    ("orders_paid", Ty::Int),
    ("revenue_fen", Ty::Int),
    ("first_paid_at", Ty::Ts),
    ("last_paid_at", Ty::Ts),
    ("coupons_claimed", Ty::Int),
    ("coupons_redeemed", Ty::Int),
    ("activity_notifications", Ty::Bool),
    ("last_prompt_at", Ty::Ts),
    ("first_visit_at", Ty::Ts),
    ("first_visit_event", Ty::Text),
    ("follow_changed_at", Ty::Ts),
    ("follow_changed_event", Ty::Text),
    ("followed_event", Ty::Text),
    ("preferences_at", Ty::Ts),
    ("preferences_event", Ty::Text),
];

static READ: Statement = Statement::new(|d| {
    let cols: Vec<String> = COLUMNS
        .iter()
        .filter(|(c, _)| !matches!(*c, "unionid" | "oa_openid" | "mp_openid"))
        .map(|(c, t)| match t {
            Ty::Ts => format!("{} AS {c}", sql::ts_text(d, c)),
            _ => c.to_string(),
        })
        .collect();
    format!(
        "SELECT {} FROM member_profile WHERE member_key IN {}",
        cols.join(", "),
        sql::values(d, 1)
    )
});
static UPSERT: Statement =
    Statement::new(|d| sql::upsert(d, "member_profile", &["member_key"], COLUMNS));
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM member_profile WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static LAST_PAID: Statement = Statement::new(|d| {
    format!(
        "SELECT k.member_key, {} FROM (SELECT DISTINCT member_key FROM {}) AS k",
        sql::ts_text(
            d,
            "(SELECT max(o.paid_at) FROM member_order o WHERE o.member_key = k.member_key)"
        ),
        sql::records(d, 1, "x", &[("member_key", Ty::Text)])
    )
});
static BINDINGS: Statement = Statement::new(|d| {
    format!(
        "SELECT kind, openid, unionid FROM member_identity WHERE unionid IN {}",
        sql::values(d, 1)
    )
});

/// The identity columns of each member of `keys`: the key itself, and for a unionid the
/// openids bound to it.
async fn identities<C: Db + ?Sized>(
    db: &mut C,
    keys: &BTreeSet<&str>,
) -> Result<BTreeMap<String, Identity>, StoreError> {
    let mut out: BTreeMap<String, Identity> = BTreeMap::new();
    let unionids: Vec<&str> = keys.iter().copied().filter(|k| !k.contains(':')).collect();
    if !unionids.is_empty() {
        for (kind, openid, unionid) in db
            .fetch::<(String, String, String)>(&BINDINGS, &[&json(&unionids)])
            .await?
        {
            let id = out.entry(unionid).or_default();
            let slot = if kind == "oa" {
                &mut id.oa_openid
            } else {
                &mut id.mp_openid
            };
            // Deterministic when (against the invariant) two openids of a kind share a unionid.
            if slot.as_ref().is_none_or(|s| openid < *s) {
                *slot = Some(openid);
            }
        }
    }
    for key in keys {
        let id = out.entry((*key).to_owned()).or_default();
        match key.split_once(':') {
            Some(("oa", o)) => id.oa_openid = Some(o.to_owned()),
            Some(("mp", m)) => id.mp_openid = Some(m.to_owned()),
            _ => id.unionid = Some((*key).to_owned()),
        }
    }
    Ok(out)
}

/// Merges each member's new events and changed orders into its stored profile. Returns the
/// members that had no profile before.
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    orders: &[OrderChange],
) -> Result<Vec<String>, StoreError> {
    if added.is_empty() {
        return Ok(Vec::new());
    }
    let keys: BTreeSet<&str> = added.keys().map(String::as_str).collect();
    let mut stored: BTreeMap<String, ProfileState> = BTreeMap::new();
    for row in db.fetch::<StoredProfile>(&READ, &[&json(&keys)]).await? {
        stored.insert(row.member_key.clone(), row.state()?);
    }
    let mut identities = identities(db, &keys).await?;
    let mut by_member: BTreeMap<&str, Vec<&OrderChange>> = BTreeMap::new();
    for o in orders {
        by_member.entry(&o.member_key).or_default().push(o);
    }
    let mut states = Vec::with_capacity(added.len());
    let mut reread = Vec::new();
    let mut new_members = Vec::new();
    for (key, events) in added {
        let old = stored.remove(key);
        if old.is_none() {
            new_members.push(key.clone());
        }
        let identity = identities.remove(key).unwrap_or_default();
        let orders = by_member.remove(key.as_str()).unwrap_or_default();
        let (state, again) = merge(key, identity, old, events, &orders);
        if again {
            reread.push(serde_json::json!({ "member_key": key }));
        }
        states.push(state);
    }
    if !reread.is_empty() {
        let latest: BTreeMap<String, Option<String>> = db
            .fetch::<(String, Option<String>)>(&LAST_PAID, &[&json(&reread)])
            .await?
            .into_iter()
            .collect();
        for s in &mut states {
            if let Some(t) = latest.get(&s.profile.member_key) {
                s.profile.last_paid_at = opt_ts(t.clone())?;
            }
        }
    }
    let rows: Vec<StateRow> = states.iter().map(StateRow::of).collect();
    db.exec(&UPSERT, &[&json(&rows)]).await?;
    Ok(new_members)
}

/// Forgets the profiles of `keys` (a JSON array of member keys).
pub(crate) async fn reset<C: Db + ?Sized>(db: &mut C, keys: &str) -> Result<(), StoreError> {
    db.exec(&DELETE, &[keys]).await?;
    Ok(())
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
