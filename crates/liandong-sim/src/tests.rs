//! The simulator's promises: deterministic, valid, never in the future, and an audience an
//! operator would believe (the rates of the dashboard in plausible ranges, an A/B test with both
//! variants, late bindings, growth, a daily rhythm).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, FixedOffset, Timelike, Utc};
use liandong_event::{Event, Schemas};
use serde_json::Value;

use super::*;

fn now() -> DateTime<Utc> {
    "2026-11-24T09:30:00Z".parse().expect("a time")
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| Schemas::load().expect("the schemas compile"))
}

/// 30 days of the default audience, made once for the tests that read it.
fn month() -> &'static [Value] {
    static M: OnceLock<Vec<Value>> = OnceLock::new();
    M.get_or_init(|| Simulation::new(SimConfig::default(), now()).history())
}

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["occurred_at"].as_str().expect("occurred_at"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn of<'a>(events: &'a [Value], ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |e| e["type"] == ty)
}

/// The person of an event as the simulator knows them: the openid it carries.
fn openid(e: &Value) -> String {
    let u = &e["user"];
    u["oa_openid"]
        .as_str()
        .or(u["mp_openid"].as_str())
        .expect("an openid")
        .to_owned()
}

#[test]
fn the_same_seed_and_now_give_the_same_events() {
    let cfg = SimConfig {
        users: 300,
        days: 10,
        ..SimConfig::default()
    };
    let run = |cfg: SimConfig, now: DateTime<Utc>| {
        let mut s = Simulation::new(cfg, now);
        let mut all = s.history();
        all.extend(s.live(
            now + Duration::minutes(5),
            std::time::Duration::from_secs(300),
        ));
        all
    };
    let a = run(cfg.clone(), now());
    assert!(a.len() > 1000, "{} events", a.len());
    assert_eq!(a, run(cfg.clone(), now()));
    let other_seed = run(
        SimConfig {
            seed: 2,
            ..cfg.clone()
        },
        now(),
    );
    assert_ne!(a, other_seed);
    // Another `now`: other event ids, so a second run never collides with the first.
    let later = run(cfg, now() + Duration::days(1));
    let ids: HashSet<&str> = a.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert!(later
        .iter()
        .all(|e| !ids.contains(e["event_id"].as_str().unwrap())));
}

#[test]
fn every_event_passes_the_schemas_and_no_event_id_repeats() {
    let mut s = Simulation::new(
        SimConfig {
            live_speed: 50.0,
            ..SimConfig::default()
        },
        now(),
    );
    let mut all = s.history();
    let mut t = now();
    for _ in 0..60 {
        t += Duration::seconds(5);
        all.extend(s.live(t, std::time::Duration::from_secs(5)));
    }
    let mut rejects = Vec::new();
    let mut types = HashSet::new();
    for e in &all {
        match schemas().validate(e, t) {
            Ok(ev) => {
                if let Err(m) = ev.body() {
                    rejects.push(format!("{e}: {m}"));
                }
                types.insert(ev.event_type);
            }
            Err(m) => rejects.push(format!("{e}: {m}")),
        }
    }
    assert!(
        rejects.is_empty(),
        "{} rejects, e.g. {:?}",
        rejects.len(),
        &rejects[..rejects.len().min(5)]
    );
    let ids: HashSet<&str> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), all.len(), "event ids are unique");
    // Everything a restaurant's OA + MP sends, except erasure (nobody asks in a month).
    let missing: Vec<_> = liandong_event::EventType::ALL
        .iter()
        .filter(|t| !types.contains(t) && t.as_str() != "member.erased")
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

#[test]
fn occurred_at_is_never_in_the_future_and_live_slices_follow_each_other() {
    let mut s = Simulation::new(
        SimConfig {
            users: 500,
            days: 7,
            live_speed: 100.0,
            ..SimConfig::default()
        },
        now(),
    );
    let history = s.history();
    assert!(history.iter().all(|e| at(e) <= now()));
    assert!(history
        .first()
        .is_some_and(|e| at(e) >= now() - Duration::days(7)));
    assert!(
        history.windows(2).all(|w| at(&w[0]) <= at(&w[1])),
        "in time order"
    );
    assert!(s.history().is_empty(), "the history happens once");
    let mut last = now();
    let mut live = 0;
    for step in 1..=40 {
        let t = now() + Duration::seconds(5 * step);
        let slice = s.live(t, std::time::Duration::from_secs(5));
        for e in &slice {
            assert!(at(e) > last && at(e) <= t, "{e} outside ({last}, {t}]");
        }
        live += slice.len();
        last = t;
    }
    assert!(live > 50, "{live} live events at 100x in 200 s");
    // After a pause, only the last `duration` is simulated: no flood.
    let t = last + Duration::hours(6);
    let slice = s.live(t, std::time::Duration::from_secs(5));
    assert!(slice.iter().all(|e| at(e) <= t));
    assert!(slice.len() < 200, "{} events after a pause", slice.len());
}

#[test]
fn the_ab_test_has_both_variants_with_a_modest_difference() {
    let events = month();
    // exposed / clicked users per variant, as METRICS.md's ab_readout counts them.
    let mut exposed: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut clicked: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut entry_of: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in events {
        let p = &e["props"];
        if p["experiment"] != EXPERIMENT {
            continue;
        }
        let v = p["variant"].as_str().unwrap();
        entry_of
            .entry(v)
            .or_default()
            .insert(p["entry"].as_str().unwrap());
        let set = if e["type"] == "oa.menu.exposure" {
            &mut exposed
        } else {
            &mut clicked
        };
        set.entry(v).or_default().insert(openid(e));
    }
    assert_eq!(entry_of["control"], HashSet::from([ORDER_ENTRY[0]]));
    assert_eq!(entry_of["treatment"], HashSet::from([ORDER_ENTRY[1]]));
    let ctr = |v: &str| clicked[v].len() as f64 / exposed[v].len() as f64;
    let (c, t) = (ctr("control"), ctr("treatment"));
    eprintln!(
        "A/B: control {}/{} = {c:.3}, treatment {}/{} = {t:.3}",
        clicked["control"].len(),
        exposed["control"].len(),
        clicked["treatment"].len(),
        exposed["treatment"].len()
    );
    for v in VARIANTS {
        assert!(exposed[v].len() > 200, "{v}: {} exposed", exposed[v].len());
    }
    assert!(
        (0.05..0.6).contains(&c) && (0.05..0.6).contains(&t),
        "{c} {t}"
    );
    assert!(t > c && t / c < 1.6, "a real but modest lift: {c} → {t}");
}

#[test]
fn rates_look_like_a_real_audience() {
    let events = month();
    let count = |ty: &str| of(events, ty).count() as f64;
    let entry_rate = |entry: &str| {
        let n = |ty| {
            of(events, ty)
                .filter(|e| e["props"]["entry"] == entry)
                .count() as f64
        };
        n("oa.menu.click") / n("oa.menu.exposure")
    };
    let article_rate = count("oa.article.click") / count("oa.article.read");
    let visits = count("mp.visit");
    let paid = count("order.paid");
    let placed = count("order.placed");
    let prompt_rate = of(events, "oa.follow")
        .filter(|e| e["props"]["via"] == "mp_prompt")
        .count() as f64
        / count("mp.follow_prompt.shown");
    eprintln!(
        "{} events; menu {:.3} {:.3} {:.3} {:.3}; article {article_rate:.3}; visits {visits}, \
         placed/visit {:.3}, paid/placed {:.3}, refunds {}, prompt follows/shown {prompt_rate:.3}",
        events.len(),
        entry_rate(ORDER_ENTRY[0]),
        entry_rate(ORDER_ENTRY[1]),
        entry_rate(ORDERS_ENTRY),
        entry_rate(COUPON_ENTRY),
        placed / visits,
        paid / placed,
        count("order.refunded"),
    );
    for entry in [ORDER_ENTRY[0], ORDER_ENTRY[1], ORDERS_ENTRY, COUPON_ENTRY] {
        let r = entry_rate(entry);
        assert!((0.02..0.3).contains(&r), "{entry}: click rate {r}");
    }
    assert!((0.03..0.3).contains(&article_rate), "{article_rate}");
    assert!((0.1..0.6).contains(&(placed / visits)));
    assert!((0.85..0.99).contains(&(paid / placed)));
    let refunds = count("order.refunded") / paid;
    assert!((0.01..0.08).contains(&refunds), "{refunds}");
    assert!((0.02..0.2).contains(&prompt_rate), "{prompt_rate}");
    assert!(count("oa.unfollow") > 10.0 && count("oa.unfollow") < count("oa.follow") / 2.0);
    assert!(count("coupon.redeemed") > 10.0 && count("coupon.redeemed") < count("coupon.claimed"));
    // Repeat purchases: some people pay again within 30 days of an earlier order.
    let mut paid_at: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for e in of(events, "order.paid") {
        paid_at.entry(openid(e)).or_default().push(at(e));
    }
    let buyers = paid_at.len();
    let repeat = paid_at
        .values()
        .filter(|t| t.windows(2).any(|w| w[1] - w[0] <= Duration::days(30)))
        .count();
    eprintln!("buyers {buyers}, repeat within 30 days {repeat}");
    assert!(
        repeat * 10 > buyers && repeat * 10 < buyers * 8,
        "{repeat} of {buyers}"
    );
}

#[test]
fn visits_come_from_the_oa_and_from_other_scenes() {
    let now = now();
    let mut from: HashMap<String, usize> = HashMap::new();
    let mut article_ids = 0;
    for e in of(month(), "mp.visit") {
        let ev: Event = schemas().validate(e, now).expect("valid");
        *from
            .entry(ev.resolved_from().unwrap_or_default())
            .or_default() += 1;
        if ev.source.is_some()
            && e["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("from=article&id=art"))
        {
            article_ids += 1;
        }
    }
    eprintln!("visits by from: {from:?}");
    for f in [
        "menu",
        "article",
        "template",
        "oa_profile",
        "qrcode",
        "other",
        "subscribe_msg",
    ] {
        assert!(from.get(f).copied().unwrap_or(0) > 5, "{f}: {from:?}");
    }
    assert_eq!(
        article_ids, from["article"],
        "every article visit names its article"
    );
    for e in of(month(), "oa.article.click") {
        let id = e["props"]["article_id"].as_str().unwrap();
        assert!(e["props"]["target"]
            .as_str()
            .unwrap()
            .ends_with(&format!("from=article&id={id}")));
    }
}

#[test]
fn some_bindings_come_days_late_and_some_openids_are_never_bound() {
    let events = month();
    let mut first_seen: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut binds: HashMap<String, (String, DateTime<Utc>)> = HashMap::new();
    let mut bound_openids: HashSet<String> = HashSet::new();
    for e in events {
        let u = &e["user"];
        for k in ["oa_openid", "mp_openid"] {
            if let Some(o) = u[k].as_str() {
                first_seen.entry(o.to_owned()).or_insert_with(|| at(e));
                if u["unionid"].is_string() {
                    bound_openids.insert(o.to_owned());
                    binds
                        .entry(o.to_owned())
                        .or_insert_with(|| (e["type"].as_str().unwrap().to_owned(), at(e)));
                }
            }
        }
    }
    let late: Vec<_> = binds
        .iter()
        .filter(|(o, (_, t))| *t - first_seen[*o] >= Duration::days(1))
        .collect();
    eprintln!(
        "{} openids bound, {} of them a day or more after first seen",
        binds.len(),
        late.len()
    );
    assert!(late.len() > 20, "{}", late.len());
    assert!(
        late.iter().all(|(_, (ty, _))| ty == "member.identified"),
        "late bindings come as member.identified"
    );
    let never = first_seen
        .keys()
        .filter(|o| !bound_openids.contains(*o))
        .count();
    assert!(
        never * 20 > first_seen.len(),
        "{never} of {} never bound",
        first_seen.len()
    );
    assert!(
        never * 3 < first_seen.len(),
        "most are bound: {never} of {}",
        first_seen.len()
    );
}

#[test]
fn the_audience_grows_and_follows_the_daily_rhythm() {
    let events = month();
    // People who arrive by following the OA from a poster, search or an article: more of them
    // in the second half of the month than in the first.
    let mid = now() - Duration::days(15);
    let arrivals = |late: bool| {
        of(events, "oa.follow")
            .filter(|e| e["props"]["via"] != "mp_prompt" && (at(e) >= mid) == late)
            .count()
    };
    let (early, late) = (arrivals(false), arrivals(true));
    assert!(
        late as f64 > 1.3 * early as f64,
        "new followers: {early} then {late}"
    );
    // And more people are active in the last week than in the first.
    let active = |from: DateTime<Utc>| {
        events
            .iter()
            .filter(|e| at(e) >= from && at(e) < from + Duration::days(7))
            .map(openid)
            .collect::<HashSet<_>>()
            .len()
    };
    let (first_week, last_week) = (
        active(now() - Duration::days(30)),
        active(now() - Duration::days(7)),
    );
    eprintln!("new followers {early} then {late}; active {first_week} then {last_week}");
    assert!(
        last_week > first_week,
        "active: {first_week} then {last_week}"
    );
    let china = FixedOffset::east_opt(8 * 3600).unwrap();
    let mut hours = [0usize; 24];
    for e in events {
        hours[at(e).with_timezone(&china).hour() as usize] += 1;
    }
    eprintln!("events by hour: {hours:?}");
    assert!(hours[12] > 8 * hours[3], "{hours:?}");
    assert!(hours[18] > 2 * hours[15], "{hours:?}");
}
