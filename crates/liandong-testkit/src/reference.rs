//! The read models computed the plain way, from METRICS.md, over the whole sorted set of
//! events: no batches, no SQL, no incremental re-keying. Tests compare the projections with it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use liandong_event::{Event, EventType};
use liandong_projections::member_profile::MemberProfile;
use liandong_projections::read::EventIdentity;
use serde_json::Value;

/// `events` (identity columns) and `member_profile` as METRICS.md defines them.
pub fn compute(events: &[Event], tz: Tz) -> (Vec<EventIdentity>, Vec<MemberProfile>) {
    // Duplicates count once.
    let mut unique: BTreeMap<String, &Event> = BTreeMap::new();
    for e in events {
        unique.entry(e.event_id.to_string()).or_insert(e);
    }
    // Final identity resolution: every binding any event carries.
    let mut bound: HashMap<(&str, &str), &str> = HashMap::new();
    for e in unique.values() {
        if let Some(u) = e.user.unionid.as_deref() {
            if let Some(o) = e.user.oa_openid.as_deref() {
                bound.insert(("oa", o), u);
            }
            if let Some(o) = e.user.mp_openid.as_deref() {
                bound.insert(("mp", o), u);
            }
        }
    }
    let member_of = |e: &Event| -> String {
        let u = &e.user;
        if let Some(x) = &u.unionid {
            return x.clone();
        }
        if let Some(x) = u.oa_openid.as_deref().and_then(|o| bound.get(&("oa", o))) {
            return x.to_string();
        }
        if let Some(x) = u.mp_openid.as_deref().and_then(|o| bound.get(&("mp", o))) {
            return x.to_string();
        }
        match (&u.oa_openid, &u.mp_openid) {
            (Some(o), _) => format!("oa:{o}"),
            (None, Some(m)) => format!("mp:{m}"),
            _ => String::new(),
        }
    };

    let mut rows = Vec::new();
    let mut by_member: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for (id, e) in &unique {
        let key = member_of(e);
        rows.push(EventIdentity {
            event_id: id.clone(),
            event_type: e.event_type.as_str().to_owned(),
            unionid: (!key.contains(':')).then(|| key.clone()),
            member_key: key.clone(),
            oa_openid: e.user.oa_openid.clone(),
            mp_openid: e.user.mp_openid.clone(),
            source_from: e.resolved_from(),
            day: e.occurred_utc().with_timezone(&tz).date_naive().to_string(),
        });
        by_member.entry(key).or_default().push(e);
    }

    let mut profiles = Vec::new();
    for (key, mut evs) in by_member {
        evs.sort_by(|a, b| {
            (a.occurred_utc(), a.event_id.to_string())
                .cmp(&(b.occurred_utc(), b.event_id.to_string()))
        });
        let of = |t: EventType| evs.iter().filter(move |e| e.event_type == t);
        let s = |e: &Event, k: &str| e.props.get(k).and_then(Value::as_str).map(str::to_owned);
        let amount = |e: &Event| {
            e.props
                .get("amount_fen")
                .and_then(Value::as_f64)
                .unwrap_or(0.0) as i64
        };
        let latest_follow_or_unfollow = evs
            .iter()
            .filter(|e| matches!(e.event_type, EventType::OaFollow | EventType::OaUnfollow))
            .last();
        let last_follow = of(EventType::OaFollow).last();
        let mut first_paid: BTreeMap<String, (DateTime<Utc>, i64)> = BTreeMap::new();
        for e in of(EventType::OrderPaid) {
            if let Some(o) = s(e, "order_id") {
                first_paid.entry(o).or_insert((e.occurred_utc(), amount(e)));
            }
        }
        let refunds: i64 = of(EventType::OrderRefunded).map(|e| amount(e)).sum();
        let identity_of = |kind: &str| -> Option<String> {
            match key.split_once(':') {
                Some((k, o)) if k == kind => Some(o.to_owned()),
                Some(_) => None,
                None => bound
                    .iter()
                    .filter(|((k, _), u)| *k == kind && **u == key)
                    .map(|((_, o), _)| o.to_string())
                    .min(),
            }
        };
        profiles.push(MemberProfile {
            unionid: (!key.contains(':')).then(|| key.clone()),
            oa_openid: identity_of("oa"),
            mp_openid: identity_of("mp"),
            first_seen_at: evs
                .iter()
                .map(|e| e.occurred_utc())
                .min()
                .expect("a member has events"),
            last_seen_at: evs
                .iter()
                .map(|e| e.occurred_utc())
                .max()
                .expect("a member has events"),
            first_from: of(EventType::MpVisit)
                .next()
                .and_then(|e| e.resolved_from()),
            following: latest_follow_or_unfollow
                .is_some_and(|e| e.event_type == EventType::OaFollow),
            followed_at: last_follow.map(|e| e.occurred_utc()),
            follow_via: last_follow.and_then(|e| s(e, "via")),
            orders_paid: first_paid.len() as i64,
            revenue_fen: first_paid.values().map(|(_, a)| a).sum::<i64>() - refunds,
            first_paid_at: first_paid.values().map(|(t, _)| *t).min(),
            last_paid_at: first_paid.values().map(|(t, _)| *t).max(),
            coupons_claimed: of(EventType::CouponClaimed).count() as i64,
            coupons_redeemed: of(EventType::CouponRedeemed).count() as i64,
            activity_notifications: of(EventType::MemberPreferencesChanged)
                .filter_map(|e| {
                    e.props
                        .get("activity_notifications")
                        .and_then(Value::as_bool)
                })
                .last()
                .unwrap_or(true),
            last_prompt_at: of(EventType::MpFollowPromptShown)
                .map(|e| e.occurred_utc())
                .max(),
            member_key: key,
        });
    }
    (rows, profiles)
}
