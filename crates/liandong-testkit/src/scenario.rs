//! A deterministic generator of realistic tracking traffic for tests and benchmarks: members
//! seen on the OA, the MP or both, openids whose unionid binding arrives late, visits from
//! menus, articles, templates and other scenes, follows and unfollows, orders paid (some twice)
//! and refunded; template messages and service notifications with their clicks, visits and
//! orders, campaigns with reservations, joins, group-buy groups and campaign orders, and A/B
//! tests on every surface — with events placed exactly on the windows' edges (a click or a
//! visit 72 hours after the send, a payment 7 days after it, a guided visit 24 hours before a
//! join) and just inside them. Every event it makes is valid; `invalid_events` makes ones that
//! are not.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

/// What a scenario looks like.
#[derive(Debug, Clone)]
pub struct Shape {
    pub seed: u64,
    pub members: usize,
    pub events_per_member: usize,
    /// The first day of the traffic (UTC midnight).
    pub start: DateTime<Utc>,
    pub days: i64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            seed: 7,
            members: 40,
            events_per_member: 12,
            start: "2026-10-01T00:00:00Z".parse().expect("a valid time"),
            days: 30,
        }
    }
}

const VIAS: [&str; 3] = ["mp_prompt", "qrcode", "search"];
const SCENES: [i64; 5] = [1035, 1058, 1043, 1001, 1011];

struct Member {
    unionid: Option<String>,
    oa: Option<String>,
    mp: Option<String>,
}

fn id(rng: &mut StdRng, seed: u64) -> String {
    // Deterministic UUIDs: the same shape makes the same event ids.
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    b[0] ^= seed as u8;
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// Valid events, in `occurred_at` order, each carrying only what a real sender would know.
pub fn events(shape: &Shape) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(shape.seed);
    let mut out = Vec::new();
    let span = (shape.days * 86_400).max(1);
    let mut members = Vec::new();
    for m in 0..shape.members {
        let kind = rng.gen_range(0..10);
        let member = Member {
            unionid: (kind < 7).then(|| format!("u{}_{m}", shape.seed)),
            oa: (kind < 7 || kind == 7).then(|| format!("oa{}_{m}", shape.seed)),
            mp: (kind < 7 || kind >= 8).then(|| format!("mp{}_{m}", shape.seed)),
        };
        let mut times: Vec<i64> = (0..shape.events_per_member)
            .map(|_| rng.gen_range(0..span))
            .collect();
        times.sort_unstable();
        let mut orders = 0;
        for (i, t) in times.iter().enumerate() {
            let at = shape.start
                + Duration::seconds(*t)
                + Duration::milliseconds(rng.gen_range(0..1000));
            let at = at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"));
            let on_oa = member.oa.is_some() && (member.mp.is_none() || rng.gen_bool(0.4));
            let mut user = serde_json::Map::new();
            // Carry the unionid now and then (the MP login), else just the openid.
            if let Some(u) = &member.unionid {
                if rng.gen_bool(0.15) {
                    user.insert("unionid".into(), json!(u));
                }
            }
            if on_oa {
                user.insert("oa_openid".into(), json!(member.oa));
            } else {
                user.insert("mp_openid".into(), json!(member.mp));
            }
            let (ty, props, extra): (&str, Value, Option<(&str, Value)>) = if on_oa {
                match rng.gen_range(0..6) {
                    0 => {
                        // Now and then a member sees the other variant too: excluded from the test.
                        let variant = if (m % 2 == 0) != rng.gen_bool(0.05) {
                            "control"
                        } else {
                            "b"
                        };
                        let entry = if variant == "control" {
                            "立即点餐"
                        } else {
                            "进入小程序点餐"
                        };
                        (
                            "oa.menu.exposure",
                            json!({"entry": entry, "experiment": "entry_name", "variant": variant}),
                            None,
                        )
                    }
                    1 => {
                        let variant = if m % 2 == 0 { "control" } else { "b" };
                        let entry = if variant == "control" {
                            "立即点餐"
                        } else {
                            "进入小程序点餐"
                        };
                        let props = json!({"entry": entry, "experiment": "entry_name", "variant": variant,
                            "target": "pages/menu/index?from=menu&type=home"});
                        ("oa.menu.click", props, None)
                    }
                    2 => {
                        // An article's category; some articles have none.
                        let a = rng.gen_range(1..5);
                        let props = match ["烘焙", "玩具", "", "咖啡"][a % 4] {
                            "" => json!({"article_id": format!("a{a}")}),
                            c => json!({"article_id": format!("a{a}"), "category": c}),
                        };
                        ("oa.article.read", props, None)
                    }
                    3 => (
                        "oa.follow",
                        json!({"via": VIAS[rng.gen_range(0..VIAS.len())]}),
                        None,
                    ),
                    4 => ("oa.unfollow", json!({}), None),
                    _ => ("oa.template.click", json!({"template_id": "t1"}), None),
                }
            } else {
                match rng.gen_range(0..10) {
                    0..=2 => {
                        let extra = match rng.gen_range(0..4) {
                            0 => ("source", json!("from=menu&type=home")),
                            1 => ("source", json!({"from": "article", "id": "123"})),
                            2 => ("scene", json!(SCENES[rng.gen_range(0..SCENES.len())])),
                            _ => ("scene", json!(1089)),
                        };
                        (
                            "mp.visit",
                            json!({"page": "pages/index/index"}),
                            Some(extra),
                        )
                    }
                    3 => {
                        orders += 1;
                        (
                            "order.placed",
                            json!({"order_id": format!("o{}_{m}_{orders}", shape.seed), "amount_fen": 1800}),
                            None,
                        )
                    }
                    4 => (
                        "order.paid",
                        json!({"order_id": format!("o{}_{m}_{}", shape.seed, orders.max(1)), "amount_fen": 100 * rng.gen_range(1..50)}),
                        None,
                    ),
                    5 => (
                        "order.refunded",
                        json!({"order_id": format!("o{}_{m}_{}", shape.seed, orders.max(1)), "amount_fen": 50}),
                        None,
                    ),
                    6 => ("coupon.claimed", json!({"coupon_id": "c1"}), None),
                    7 => (
                        "mp.follow_prompt.shown",
                        json!({"placement": "order_done"}),
                        None,
                    ),
                    8 => (
                        "member.preferences_changed",
                        json!({"activity_notifications": rng.gen_bool(0.5)}),
                        None,
                    ),
                    _ => {
                        // What the page shows, by member; some pages show no category.
                        let props = match m % 4 {
                            0 => json!({"page": "pages/menu/index"}),
                            1 => json!({"page": "pages/goods/index", "category": "烘焙"}),
                            2 => json!({"page": "pages/goods/index", "category": "烘焙工具"}),
                            _ => json!({"page": "pages/toys/index", "category": "玩具"}),
                        };
                        ("mp.page_view", props, None)
                    }
                }
            };
            let mut ev = json!({
                "event_id": id(&mut rng, shape.seed),
                "type": ty,
                "occurred_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                "user": user,
                "props": props,
            });
            if let Some((k, v)) = extra {
                ev[k] = v;
            }
            out.push(ev);
            // The binding, once, at a random point in the member's life.
            if i == shape.events_per_member / 2 {
                if let Some(u) = &member.unionid {
                    let mut user = json!({"unionid": u});
                    if let Some(o) = &member.oa {
                        user["oa_openid"] = json!(o);
                    }
                    if let Some(o) = &member.mp {
                        user["mp_openid"] = json!(o);
                    }
                    out.push(json!({
                        "event_id": id(&mut rng, shape.seed), "type": "member.identified",
                        "occurred_at": at.to_rfc3339(), "user": user,
                    }));
                }
            }
        }
        members.push(member);
    }
    // Messages and campaigns come from a generator of their own, so the traffic above stays
    // what it was for a given seed.
    messages_and_campaigns(shape, &members, &mut out);
    out.sort_by(|a, b| a["occurred_at"].as_str().cmp(&b["occurred_at"].as_str()));
    out
}

/// Template messages, service notifications and campaigns of some members, with A/B tests on
/// the article, template, follow-prompt and notify surfaces, and events on the windows' edges.
fn messages_and_campaigns(shape: &Shape, members: &[Member], out: &mut Vec<Value>) {
    let mut rng = StdRng::seed_from_u64(shape.seed ^ 0x5eed_0014);
    let span = (shape.days * 86_400).max(1);
    let ms = Duration::milliseconds;
    let hours = Duration::hours;
    let push = |rng: &mut StdRng,
                out: &mut Vec<Value>,
                m: &Member,
                mp: bool,
                at: DateTime<Utc>,
                ty: &str,
                props: Value| {
        let mut user = serde_json::Map::new();
        if let Some(u) = &m.unionid {
            if rng.gen_bool(0.15) {
                user.insert("unionid".into(), json!(u));
            }
        }
        match (&m.oa, &m.mp) {
            (Some(o), _) if !mp || m.mp.is_none() => user.insert("oa_openid".into(), json!(o)),
            (_, Some(o)) => user.insert("mp_openid".into(), json!(o)),
            (Some(o), None) => user.insert("oa_openid".into(), json!(o)),
            (None, None) => None,
        };
        let at = at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"));
        let mut ev = json!({
            "event_id": id(rng, shape.seed),
            "type": ty,
            "occurred_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            "user": user,
        });
        if props.as_object().is_some_and(|p| !p.is_empty()) {
            ev["props"] = props;
        }
        out.push(ev);
    };
    for (i, m) in members.iter().enumerate() {
        let base = shape.start + Duration::seconds(rng.gen_range(0..span));
        let variant = if i % 2 == 0 { "control" } else { "b" };
        // A message: a template message to a member on the OA, else a service notification.
        if i % 3 != 2 {
            let oa = m.oa.is_some() && (m.mp.is_none() || rng.gen_bool(0.5));
            let (sent, click, from) = if oa {
                ("oa.template.sent", "oa.template.click", "template")
            } else {
                ("mp.notify.sent", "mp.notify.click", "subscribe_msg")
            };
            let template = ["t_order", "t_promo"][rng.gen_range(0..2)];
            let experiment = if oa { "tpl_copy" } else { "notify_time" };
            let props = |extra: Value| {
                let mut p =
                    json!({"template_id": template, "experiment": experiment, "variant": variant});
                if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
                    p.extend(e);
                }
                p
            };
            let s = base;
            let status = match rng.gen_range(0..6) {
                0 => json!({"status": "user_block"}),
                1 => json!({"status": "system_failed"}),
                2 => json!({}),
                _ => json!({"status": "success"}),
            };
            push(
                &mut rng,
                out,
                m,
                !oa,
                s,
                sent,
                props(if oa { status } else { json!({}) }),
            );
            if rng.gen_bool(0.3) {
                // A second send later the same day (or the next): the earliest decides.
                let later = s + hours(rng.gen_range(1..30));
                push(
                    &mut rng,
                    out,
                    m,
                    !oa,
                    later,
                    sent,
                    props(json!({"status": "success"})),
                );
            }
            // The click: well inside, just inside, or exactly on the 72-hour edge.
            let k = match rng.gen_range(0..5) {
                0 => None,
                1 => Some(s + hours(72)),
                2 => Some(s + hours(72) - ms(1)),
                _ => Some(s + Duration::minutes(rng.gen_range(1..600))),
            };
            if let Some(k) = k {
                push(&mut rng, out, m, !oa, k, click, props(json!({})));
                if m.mp.is_some() && rng.gen_bool(0.7) {
                    let visit_at = if rng.gen_bool(0.2) {
                        s + hours(72)
                    } else {
                        k + ms(1500)
                    };
                    let by_scene = rng.gen_bool(0.5);
                    push(
                        &mut rng,
                        out,
                        m,
                        true,
                        visit_at,
                        "mp.visit",
                        json!({"page": "pages/order/detail"}),
                    );
                    if let Some(last) = out.last_mut() {
                        // The landing names its message by source or by scene (1043, 1014).
                        match (by_scene, from) {
                            (true, "template") => last["scene"] = json!(1043),
                            (true, _) => last["scene"] = json!(1014),
                            (false, _) => last["source"] = json!(format!("from={from}")),
                        }
                    }
                }
                // The payment: inside the 7 days, just inside, or exactly on the edge.
                if rng.gen_bool(0.6) {
                    let p = match rng.gen_range(0..4) {
                        0 => s + Duration::days(7),
                        1 => s + Duration::days(7) - ms(1),
                        _ => k + hours(rng.gen_range(1..48)),
                    };
                    let order = format!("mo{}_{i}", shape.seed);
                    push(
                        &mut rng,
                        out,
                        m,
                        true,
                        p - Duration::minutes(2),
                        "order.placed",
                        json!({"order_id": order, "amount_fen": 2600}),
                    );
                    push(
                        &mut rng,
                        out,
                        m,
                        true,
                        p,
                        "order.paid",
                        json!({"order_id": order, "amount_fen": 2600}),
                    );
                }
            }
            // Articles and the follow prompt: A/B tests of their own surfaces.
            let (exposure, click, props) = if oa {
                (
                    "oa.article.read",
                    "oa.article.click",
                    json!({"article_id": "a_ab", "link": "card", "experiment": "card_style", "variant": variant}),
                )
            } else {
                (
                    "mp.follow_prompt.shown",
                    "mp.follow_prompt.click",
                    json!({"placement": "home", "experiment": "prompt_copy", "variant": variant}),
                )
            };
            push(&mut rng, out, m, !oa, s + hours(2), exposure, props.clone());
            if rng.gen_bool(if variant == "b" { 0.6 } else { 0.3 }) {
                let at = s + hours(2) + ms(rng.gen_range(0..60_000));
                push(&mut rng, out, m, !oa, at, click, props);
            }
        }
        // A campaign: reservations, joins (group-buys in shared groups), campaign orders.
        if i % 4 != 3 {
            let activity = format!("act{}_{}", shape.seed, i % 3);
            let j = base + hours(rng.gen_range(0..48));
            match rng.gen_range(0..4) {
                0 => push(
                    &mut rng,
                    out,
                    m,
                    true,
                    j - hours(24),
                    "mp.visit",
                    json!({"page": "pages/index/index"}),
                ),
                1 => push(
                    &mut rng,
                    out,
                    m,
                    true,
                    j - hours(24) + ms(1),
                    "mp.visit",
                    json!({"page": "pages/index/index"}),
                ),
                2 => push(
                    &mut rng,
                    out,
                    m,
                    true,
                    j,
                    "mp.visit",
                    json!({"page": "pages/index/index"}),
                ),
                _ => {}
            }
            if let Some(last) = out.last_mut().filter(|e| e["type"] == "mp.visit") {
                last["source"] = json!("from=menu&type=home");
            }
            match rng.gen_range(0..4) {
                0 => push(
                    &mut rng,
                    out,
                    m,
                    true,
                    j - hours(30),
                    "activity.reserved",
                    json!({"activity_id": activity}),
                ),
                1 => push(
                    &mut rng,
                    out,
                    m,
                    true,
                    j,
                    "activity.reserved",
                    json!({"activity_id": activity}),
                ),
                2 => push(
                    &mut rng,
                    out,
                    m,
                    true,
                    j + ms(1),
                    "activity.reserved",
                    json!({"activity_id": activity}),
                ),
                _ => {}
            }
            if rng.gen_bool(0.8) {
                let group = format!("g{}_{}", shape.seed, i / 2);
                let kind = if rng.gen_bool(0.7) {
                    "groupbuy"
                } else {
                    "seckill"
                };
                let mut props = json!({"activity_id": activity, "kind": kind});
                if kind == "groupbuy" {
                    props["group_id"] = json!(group);
                }
                push(&mut rng, out, m, true, j, "activity.joined", props.clone());
                if rng.gen_bool(0.2) {
                    // A second join later: the earliest decides.
                    push(
                        &mut rng,
                        out,
                        m,
                        true,
                        j + hours(5),
                        "activity.joined",
                        props,
                    );
                }
                if kind == "groupbuy" && i % 2 == 0 && rng.gen_bool(0.6) {
                    push(
                        &mut rng,
                        out,
                        m,
                        true,
                        j + hours(1),
                        "activity.group_completed",
                        json!({"activity_id": activity, "group_id": group}),
                    );
                }
                if rng.gen_bool(0.6) {
                    let order = format!("ao{}_{i}", shape.seed);
                    let amount = 100 * rng.gen_range(10..90);
                    push(
                        &mut rng,
                        out,
                        m,
                        true,
                        j + Duration::minutes(3),
                        "order.placed",
                        json!({"order_id": order, "amount_fen": amount, "activity_id": activity}),
                    );
                    if rng.gen_bool(0.85) {
                        push(
                            &mut rng,
                            out,
                            m,
                            true,
                            j + Duration::minutes(5),
                            "order.paid",
                            json!({"order_id": order, "amount_fen": amount}),
                        );
                        if rng.gen_bool(0.2) {
                            push(
                                &mut rng,
                                out,
                                m,
                                true,
                                j + hours(3),
                                "order.refunded",
                                json!({"order_id": order, "amount_fen": 300}),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The same events in a shuffled order, with some sent twice: what a real stream of retries,
/// late mobile batches and imports looks like. Bindings (`member.identified`) go last, so
/// every one of them is retroactive.
pub fn shuffled_with_duplicates(events: &[Value], seed: u64, late_bindings: bool) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<Value> = events.to_vec();
    let dups: Vec<Value> = events
        .iter()
        .filter(|_| rng.gen_bool(0.1))
        .cloned()
        .collect();
    out.extend(dups);
    out.shuffle(&mut rng);
    if late_bindings {
        out.sort_by_key(|e| e["type"] == "member.identified");
    }
    out
}

/// Events that must be rejected, each with a fragment of the error it must get.
pub fn invalid_events() -> Vec<(Value, &'static str)> {
    let ok = || {
        json!({"event_id": Uuid::new_v4().to_string(), "type": "order.paid",
        "occurred_at": "2026-10-02T10:00:00+08:00", "user": {"mp_openid": "bad_1"},
        "props": {"order_id": "x", "amount_fen": 100}})
    };
    let mut v = Vec::new();
    let mut e = ok();
    e["props"]["amount_fen"] = json!(-5);
    v.push((e, "props.amount_fen: expected an integer >= 0, got -5"));
    let mut e = ok();
    e["type"] = json!("order.teleported");
    v.push((e, "type: expected one of the catalogue"));
    let mut e = ok();
    e["user"] = json!({});
    v.push((e, "user: expected at least one of"));
    let mut e = ok();
    e["occurred_at"] = json!("2099-01-01T00:00:00Z");
    v.push((e, "occurred_at: expected a time at most 1 hour"));
    let mut e = ok();
    e["props"]
        .as_object_mut()
        .expect("an object")
        .remove("order_id");
    v.push((e, "props.order_id: required"));
    v
}
