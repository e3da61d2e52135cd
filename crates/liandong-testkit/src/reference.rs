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

/// Every metric relation of METRICS.md, computed the plain way.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub menu: Vec<liandong_projections::read::MenuEntryDay>,
    pub article: Vec<liandong_projections::read::ArticleDay>,
    pub linkage: Vec<liandong_projections::read::LinkageDay>,
    pub repurchase: Vec<liandong_projections::read::Cohort30d>,
    pub follower: Vec<liandong_projections::read::Cohort30d>,
    pub weekly: Vec<liandong_projections::read::WeeklyRetention>,
    pub ab: Vec<liandong_projections::read::AbRow>,
    pub messages: Vec<liandong_projections::read::MessageDay>,
    pub activities: Vec<liandong_projections::read::ActivityRow>,
    /// `member_interest`, ordered by member and category.
    pub interest: Vec<liandong_projections::member_interest::InterestRow>,
}

/// The metric relations over `events` (duplicates allowed), with "today" = `today`.
pub fn metrics(events: &[Event], tz: Tz, today: chrono::NaiveDate) -> Metrics {
    use chrono::{Datelike, Duration, NaiveDate};
    use liandong_projections::read::*;
    use std::collections::BTreeSet;

    let (rows, _) = compute(events, tz);
    let key_of: HashMap<String, String> = rows
        .iter()
        .map(|r| (r.event_id.clone(), r.member_key.clone()))
        .collect();
    let mut unique: BTreeMap<String, &Event> = BTreeMap::new();
    for e in events {
        unique.entry(e.event_id.to_string()).or_insert(e);
    }
    let day = |e: &Event| e.occurred_utc().with_timezone(&tz).date_naive();
    let s = |e: &Event, k: &str| {
        e.props
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };

    // Traffic: plain event counts.
    let mut menu: BTreeMap<(NaiveDate, String, String), (i64, i64)> = BTreeMap::new();
    let mut article: BTreeMap<(NaiveDate, String), (i64, i64)> = BTreeMap::new();
    for e in unique.values() {
        match e.event_type {
            EventType::OaMenuExposure => {
                menu.entry((day(e), s(e, "entry"), s(e, "variant")))
                    .or_default()
                    .0 += 1
            }
            EventType::OaMenuClick => {
                menu.entry((day(e), s(e, "entry"), s(e, "variant")))
                    .or_default()
                    .1 += 1
            }
            EventType::OaArticleRead => {
                article.entry((day(e), s(e, "article_id"))).or_default().0 += 1
            }
            EventType::OaArticleClick => {
                article.entry((day(e), s(e, "article_id"))).or_default().1 += 1
            }
            _ => {}
        }
    }

    // Members, each with its events in (occurred_at, event_id) order.
    let mut members: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for (id, e) in &unique {
        members.entry(key_of[id].clone()).or_default().push(e);
    }
    for evs in members.values_mut() {
        evs.sort_by_key(|e| (e.occurred_utc(), e.event_id.to_string()));
    }
    let guided = |e: &Event| {
        e.event_type == EventType::MpVisit
            && matches!(
                e.resolved_from().as_deref(),
                Some("menu" | "article" | "template" | "oa_msg" | "oa_profile")
            )
    };

    let mut linkage: BTreeMap<NaiveDate, [BTreeSet<&str>; 6]> = BTreeMap::new();
    let mut repurchase: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    let mut follower: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    let mut cohorts: BTreeMap<NaiveDate, Vec<BTreeSet<NaiveDate>>> = BTreeMap::new();
    let mut exposures: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    let mut messages: BTreeMap<(NaiveDate, String, String), [i64; 5]> = BTreeMap::new();
    let mut activity: BTreeMap<String, [i64; 7]> = BTreeMap::new();
    let mut groups_started: BTreeSet<(String, String)> = BTreeSet::new();
    let mut groups_completed: BTreeSet<(String, String)> = BTreeSet::new();
    let amount = |e: &Event| {
        e.props
            .get("amount_fen")
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as i64
    };
    for (m, evs) in &members {
        let mut paid: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        for e in evs.iter().filter(|e| e.event_type == EventType::OrderPaid) {
            paid.entry(s(e, "order_id")).or_insert(e.occurred_utc());
        }
        let days: BTreeSet<NaiveDate> = evs.iter().map(|e| day(e)).collect();
        for d in days {
            let on = |t: EventType| evs.iter().filter(move |e| e.event_type == t && day(e) == d);
            let visits = on(EventType::MpVisit).count() > 0;
            let follows = on(EventType::OaFollow).count() > 0;
            if !visits && !follows {
                continue;
            }
            let sets = linkage.entry(d).or_default();
            let g = evs
                .iter()
                .filter(|e| guided(e) && day(e) == d)
                .map(|e| e.occurred_utc())
                .min();
            if visits {
                sets[0].insert(m);
            }
            if g.is_some() {
                sets[1].insert(m);
            }
            if on(EventType::OaFollow).any(|e| s(e, "via") == "mp_prompt") {
                sets[2].insert(m);
            }
            if visits
                && (on(EventType::OrderPlaced).count() + on(EventType::ActivityReserved).count())
                    > 0
            {
                sets[3].insert(m);
            }
            if let Some(g) = g {
                if on(EventType::OrderPlaced).any(|e| e.occurred_utc() >= g) {
                    sets[4].insert(m);
                }
                if paid.values().any(|t| g <= *t && *t < g + Duration::days(7)) {
                    sets[5].insert(m);
                }
            }
        }
        // Linkage conversion time t0 and the repurchase within 30 days.
        let guided_times: Vec<DateTime<Utc>> = evs
            .iter()
            .filter(|e| guided(e))
            .map(|e| e.occurred_utc())
            .collect();
        let converting = paid.iter().filter(|(_, t)| {
            guided_times
                .iter()
                .any(|g| *g <= **t && **t < *g + Duration::days(7))
        });
        if let Some((order, t0)) = converting.min_by_key(|(o, t)| (**t, (*o).clone())) {
            let c = repurchase
                .entry(t0.with_timezone(&tz).date_naive())
                .or_default();
            c.0 += 1;
            if paid
                .iter()
                .any(|(o, t)| o != order && *t0 < *t && *t <= *t0 + Duration::days(30))
            {
                c.1 += 1;
            }
        }
        // Followers through the MP prompt, retained 30 days later.
        if let Some(first) = evs
            .iter()
            .find(|e| e.event_type == EventType::OaFollow && s(e, "via") == "mp_prompt")
        {
            let t0 = first.occurred_utc();
            let last = evs
                .iter()
                .filter(|e| {
                    matches!(e.event_type, EventType::OaFollow | EventType::OaUnfollow)
                        && e.occurred_utc() <= t0 + Duration::days(30)
                })
                .last();
            let c = follower
                .entry(t0.with_timezone(&tz).date_naive())
                .or_default();
            c.0 += 1;
            if last.is_some_and(|e| e.event_type == EventType::OaFollow) {
                c.1 += 1;
            }
        }
        // Weekly cohorts.
        let monday = |d: NaiveDate| d - Duration::days(d.weekday().num_days_from_monday() as i64);
        let weeks: BTreeSet<NaiveDate> = evs
            .iter()
            .filter(|e| !e.event_type.as_str().starts_with("member."))
            .map(|e| monday(day(e)))
            .collect();
        if let Some(first) = weeks.first() {
            cohorts.entry(*first).or_default().push(weeks.clone());
        }
        // Messages: per channel, template and day with a send, the earliest send s of the day.
        for (channel, sent, click, from) in [
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
        ] {
            let mut sends: BTreeMap<(String, NaiveDate), (DateTime<Utc>, bool)> = BTreeMap::new();
            for e in evs.iter().filter(|e| e.event_type == sent) {
                let ok = s(e, "status").is_empty() || s(e, "status") == "success";
                let x = sends
                    .entry((s(e, "template_id"), day(e)))
                    .or_insert((e.occurred_utc(), false));
                x.0 = x.0.min(e.occurred_utc());
                x.1 |= ok;
            }
            for ((template, d), (first, delivered)) in sends {
                let window = |e: &&&Event| {
                    e.occurred_utc() >= first && e.occurred_utc() < first + Duration::hours(72)
                };
                let k = evs
                    .iter()
                    .filter(|e| e.event_type == click && s(e, "template_id") == template)
                    .filter(window)
                    .map(|e| e.occurred_utc())
                    .min();
                let visited = evs
                    .iter()
                    .filter(|e| {
                        e.event_type == EventType::MpVisit
                            && e.resolved_from().as_deref() == Some(from)
                    })
                    .any(|e| window(&e));
                let converted = k.is_some_and(|k| {
                    paid.values()
                        .any(|p| k <= *p && *p < first + Duration::days(7))
                });
                let c = messages
                    .entry((d, channel.to_owned(), template))
                    .or_default();
                c[0] += 1;
                c[1] += delivered as i64;
                c[2] += k.is_some() as i64;
                c[3] += visited as i64;
                c[4] += converted as i64;
            }
        }
        // Campaigns: the member's reservations, joins, groups and campaign orders.
        let mut named: BTreeMap<String, (Option<DateTime<Utc>>, Option<DateTime<Utc>>)> =
            BTreeMap::new();
        let mut order_activities: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in evs.iter() {
            let a = s(e, "activity_id");
            match e.event_type {
                EventType::ActivityReserved => {
                    let x = named.entry(a).or_default();
                    x.0 = Some(x.0.map_or(e.occurred_utc(), |t| t.min(e.occurred_utc())));
                }
                EventType::ActivityJoined => {
                    if s(e, "kind") == "groupbuy" && !s(e, "group_id").is_empty() {
                        groups_started.insert((a.clone(), s(e, "group_id")));
                    }
                    let x = named.entry(a).or_default();
                    x.1 = Some(x.1.map_or(e.occurred_utc(), |t| t.min(e.occurred_utc())));
                }
                EventType::ActivityGroupCompleted => {
                    groups_completed.insert((a.clone(), s(e, "group_id")));
                    named.entry(a).or_default();
                }
                EventType::OrderPlaced if !a.is_empty() => {
                    order_activities
                        .entry(s(e, "order_id"))
                        .or_default()
                        .insert(a.clone());
                    named.entry(a).or_default();
                }
                _ => {}
            }
        }
        let mut first_paid: BTreeMap<String, i64> = BTreeMap::new();
        for e in evs.iter().filter(|e| e.event_type == EventType::OrderPaid) {
            first_paid.entry(s(e, "order_id")).or_insert(amount(e));
        }
        let mut campaign_orders: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (o, activities) in &order_activities {
            let Some(paid_fen) = first_paid.get(o) else {
                continue;
            };
            let refunded: i64 = evs
                .iter()
                .filter(|e| e.event_type == EventType::OrderRefunded && s(e, "order_id") == *o)
                .map(|e| amount(e))
                .sum();
            for a in activities {
                let x = campaign_orders.entry(a.clone()).or_default();
                x.0 += 1;
                x.1 += paid_fen - refunded;
            }
        }
        for (a, (reserved, joined)) in named {
            let c = activity.entry(a.clone()).or_default();
            c[0] += reserved.is_some() as i64;
            c[1] += joined.is_some() as i64;
            c[2] += matches!((reserved, joined), (Some(r), Some(j)) if r <= j) as i64;
            c[3] += joined.is_some_and(|j| {
                guided_times
                    .iter()
                    .any(|g| *g <= j && j < *g + Duration::hours(24))
            }) as i64;
            let (orders, revenue) = campaign_orders.get(&a).copied().unwrap_or_default();
            c[4] += orders;
            c[5] += (orders > 0) as i64;
            c[6] += revenue;
        }
        // Experiments, on the surface of their exposure type; the click type of that surface.
        const SURFACES: [(&str, EventType, EventType); 5] = [
            ("menu", EventType::OaMenuExposure, EventType::OaMenuClick),
            (
                "article",
                EventType::OaArticleRead,
                EventType::OaArticleClick,
            ),
            (
                "template",
                EventType::OaTemplateSent,
                EventType::OaTemplateClick,
            ),
            (
                "follow_prompt",
                EventType::MpFollowPromptShown,
                EventType::MpFollowPromptClick,
            ),
            ("notify", EventType::MpNotifySent, EventType::MpNotifyClick),
        ];
        for (surface, exposure, click) in SURFACES {
            let mut seen: BTreeMap<String, (BTreeSet<String>, DateTime<Utc>)> = BTreeMap::new();
            for e in evs
                .iter()
                .filter(|e| e.event_type == exposure && !s(e, "experiment").is_empty())
            {
                seen.entry(s(e, "experiment"))
                    .or_insert_with(|| (BTreeSet::new(), e.occurred_utc()))
                    .0
                    .insert(s(e, "variant"));
            }
            for (x, (variants, first)) in seen {
                if variants.len() != 1 {
                    continue;
                }
                let v = variants.into_iter().next().unwrap_or_default();
                let clicked = evs.iter().any(|e| {
                    e.event_type == click
                        && s(e, "experiment") == x
                        && s(e, "variant") == v
                        && e.occurred_utc() >= first
                });
                let c = exposures.entry((surface.to_owned(), x, v)).or_default();
                c.0 += 1;
                c.1 += clicked as i64;
            }
        }
    }

    let mut weekly = Vec::new();
    for (cohort, members) in &cohorts {
        for offset in 0..=12 {
            let week = *cohort + Duration::days(7 * offset);
            if week > today {
                break;
            }
            weekly.push(WeeklyRetention {
                cohort_week: cohort.to_string(),
                week_offset: offset as i32,
                cohort_size: members.len() as i64,
                active: members.iter().filter(|w| w.contains(&week)).count() as i64,
            });
        }
    }
    let mut by_experiment: BTreeMap<
        (String, String),
        Vec<liandong_projections::ab::VariantCounts>,
    > = BTreeMap::new();
    for ((surface, x, v), (exposed, clicked)) in exposures {
        by_experiment.entry((surface, x)).or_default().push(
            liandong_projections::ab::VariantCounts {
                variant: v,
                exposed,
                clicked,
            },
        );
    }
    let cohort = |m: BTreeMap<NaiveDate, (i64, i64)>| -> Vec<Cohort30d> {
        m.into_iter()
            .map(|(d, (size, kept))| Cohort30d {
                cohort_day: d.to_string(),
                size,
                kept,
                mature: today >= d + Duration::days(31),
            })
            .collect()
    };
    // Interests: per final member and non-empty category, reads and page views, latest time.
    let mut interest: BTreeMap<(String, String), (i64, i64, DateTime<Utc>)> = BTreeMap::new();
    for e in unique.values() {
        let read = match e.event_type {
            EventType::OaArticleRead => true,
            EventType::MpPageView => false,
            _ => continue,
        };
        let category = s(e, "category");
        let Some(member) = key_of.get(&e.event_id.to_string()) else {
            continue;
        };
        if category.is_empty() {
            continue;
        }
        let at = e.occurred_utc();
        let row = interest
            .entry((member.clone(), category))
            .or_insert((0, 0, at));
        if read {
            row.0 += 1;
        } else {
            row.1 += 1;
        }
        row.2 = row.2.max(at);
    }

    Metrics {
        menu: menu
            .into_iter()
            .map(|((d, entry, variant), (exposures, clicks))| MenuEntryDay {
                day: d.to_string(),
                entry,
                variant,
                exposures,
                clicks,
            })
            .collect(),
        article: article
            .into_iter()
            .map(|((d, article_id), (reads, clicks))| ArticleDay {
                day: d.to_string(),
                article_id,
                reads,
                clicks,
            })
            .collect(),
        linkage: linkage
            .into_iter()
            .map(|(d, s)| LinkageDay {
                day: d.to_string(),
                mp_users: s[0].len() as i64,
                oa_guided_users: s[1].len() as i64,
                prompt_follows: s[2].len() as i64,
                core_users: s[3].len() as i64,
                guided_order_users: s[4].len() as i64,
                guided_converted_7d: s[5].len() as i64,
            })
            .collect(),
        repurchase: cohort(repurchase),
        follower: cohort(follower),
        weekly,
        ab: by_experiment
            .iter()
            .flat_map(|((surface, x), v)| liandong_projections::ab::readout(surface, x, v))
            .collect(),
        messages: messages
            .into_iter()
            .map(|((d, channel, template_id), c)| MessageDay {
                day: d.to_string(),
                channel,
                template_id,
                sent_users: c[0],
                delivered_users: c[1],
                clicked_users: c[2],
                visit_users: c[3],
                converted_users: c[4],
            })
            .collect(),
        activities: activity
            .into_iter()
            .map(|(a, c)| ActivityRow {
                groups_started: groups_started.iter().filter(|(x, _)| *x == a).count() as i64,
                groups_completed: groups_started
                    .iter()
                    .filter(|g| g.0 == a && groups_completed.contains(*g))
                    .count() as i64,
                activity_id: a,
                reserved_users: c[0],
                joined_users: c[1],
                reserved_joined_users: c[2],
                guided_joined_users: c[3],
                orders_paid: c[4],
                order_users: c[5],
                revenue_fen: c[6],
            })
            .collect(),
        interest: interest
            .into_iter()
            .map(
                |((member_key, category), (article_reads, page_views, last_at))| {
                    liandong_projections::member_interest::InterestRow {
                        member_key,
                        category,
                        article_reads,
                        page_views,
                        last_at: last_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    }
                },
            )
            .collect(),
    }
}

/// The same relations as the store holds them.
pub async fn stored_metrics(store: &liandong_store::ReadStore) -> Metrics {
    use liandong_projections::read::*;
    let all = Range::default();
    Metrics {
        menu: menu_entry_daily(store, all, None)
            .await
            .expect("metric_menu_entry_daily"),
        article: article_daily(store, all, None)
            .await
            .expect("metric_article_daily"),
        linkage: linkage_daily(store, all)
            .await
            .expect("metric_linkage_daily"),
        repurchase: repurchase_30d(store, all)
            .await
            .expect("retention_repurchase_30d"),
        follower: follower_30d(store, all)
            .await
            .expect("retention_follower_30d"),
        weekly: weekly_retention(store, all)
            .await
            .expect("retention_weekly"),
        ab: ab_readout(store, None, None).await.expect("ab_readout"),
        messages: message_daily(store, all, None, None)
            .await
            .expect("metric_message_daily"),
        activities: activities(store, None).await.expect("metric_activity"),
        interest: {
            let mut rows = liandong_projections::member_interest::read(store, None)
                .await
                .expect("member_interest");
            rows.sort();
            rows
        },
    }
}
