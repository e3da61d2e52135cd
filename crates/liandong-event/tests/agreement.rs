//! The JSON Schemas (what ingestion enforces) and the Rust types (what projectors read) must
//! agree on every event: valid and invalid samples of every type go through both, and each
//! verdict must also be the one the contract (EVENTS.md) expects.

use chrono::{DateTime, Utc};
use liandong_event::{Event, EventType, Schemas};
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    "2026-11-24T02:00:00Z".parse().unwrap()
}

/// A valid value for each known prop name, and an invalid one.
fn prop_samples(name: &str) -> (Value, Vec<Value>) {
    match name {
        "amount_fen" | "price_fen" => (
            json!(1990),
            vec![json!(-5), json!("1990"), json!(1.5), Value::Null],
        ),
        "qty" => (json!(2), vec![json!(0), json!("2")]),
        "link" => (json!("card"), vec![json!("button"), json!(1)]),
        "via" => (json!("mp_prompt"), vec![json!("prompt"), json!(null)]),
        "kind" => (json!("groupbuy"), vec![json!("auction")]),
        "status" => (
            json!("user_block"),
            vec![
                json!("failed:user block"),
                json!("failed"),
                json!(""),
                json!(1),
                Value::Null,
            ],
        ),
        "activity_notifications" => (json!(false), vec![json!("false"), json!(0)]),
        "level" => (json!("gold"), vec![json!(true), json!([1])]),
        "items" => (
            json!([{"sku": "latte", "qty": 1, "price_fen": 1800}]),
            vec![
                json!([{"sku": "latte", "qty": 1}]),
                json!({"sku": "x"}),
                json!([{"sku": "", "qty": 1, "price_fen": 1}]),
            ],
        ),
        "entry" => (
            json!("立即点餐"),
            vec![json!(""), json!(5), json!("长".repeat(257))],
        ),
        "page" => (json!("pages/index/index"), vec![json!(""), json!(null)]),
        "phone" => (json!("13800005678"), vec![json!(13800005678u64), json!("")]),
        "target" | "title" | "qrscene" => (
            json!("pages/menu/index?from=menu&type=home"),
            vec![json!(7), json!(null)],
        ),
        _ => (json!("x-1"), vec![json!(7), json!(""), json!(null)]),
    }
}

/// (required, optional) props of each type, as EVENTS.md lists them.
fn catalogue(t: EventType) -> (&'static [&'static str], &'static [&'static str]) {
    use EventType as T;
    match t {
        T::OaMenuExposure => (&["entry"], &["experiment", "variant"]),
        T::OaMenuClick => (&["entry"], &["experiment", "variant", "target"]),
        T::OaArticleRead => (
            &["article_id"],
            &["title", "category", "experiment", "variant"],
        ),
        T::OaArticleClick => (
            &["article_id", "link"],
            &["target", "experiment", "variant"],
        ),
        T::OaFollow => (&[], &["via", "qrscene"]),
        T::OaUnfollow => (&[], &[]),
        T::OaTemplateSent => (
            &["template_id"],
            &["msg_id", "purpose", "status", "experiment", "variant"],
        ),
        T::OaTemplateClick => (
            &["template_id"],
            &["msg_id", "target", "experiment", "variant"],
        ),
        T::MpVisit => (&["page"], &[]),
        T::MpPageView => (&["page"], &["category"]),
        T::MpFollowPromptShown | T::MpFollowPromptClick => {
            (&[], &["placement", "experiment", "variant"])
        }
        T::MpNotifySent => (&["template_id"], &["purpose", "experiment", "variant"]),
        T::MpNotifyClick => (&["template_id"], &["target", "experiment", "variant"]),
        T::OrderPlaced => (&["order_id", "amount_fen"], &["items", "activity_id"]),
        T::OrderPaid | T::OrderRefunded => (&["order_id", "amount_fen"], &[]),
        T::CouponClaimed => (&["coupon_id"], &[]),
        T::CouponRedeemed => (&["coupon_id"], &["order_id"]),
        T::ActivityReserved => (&["activity_id"], &[]),
        T::ActivityJoined => (&["activity_id", "kind"], &["group_id"]),
        T::ActivityGroupCompleted => (&["activity_id", "group_id"], &[]),
        T::MemberIdentified | T::MemberErased => (&[], &[]),
        T::MemberProfileUpdated => (&[], &["phone", "address", "level"]),
        T::MemberPreferencesChanged => (&[], &["activity_notifications"]),
    }
}

fn base(t: EventType) -> Value {
    let (required, _) = catalogue(t);
    let props: serde_json::Map<String, Value> = required
        .iter()
        .map(|p| (p.to_string(), prop_samples(p).0))
        .collect();
    json!({
        "event_id": "0d9c5b8e-8d1e-4c4e-9a51-0c7f3f1b2a11",
        "type": t.as_str(),
        "occurred_at": "2026-11-24T10:00:05+08:00",
        "user": {"unionid": "u_1", "oa_openid": "oA-1"},
        "props": props,
    })
}

fn with(mut v: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(v.as_object_mut().unwrap());
    v
}

fn samples(t: EventType) -> Vec<(String, Value, bool)> {
    let (required, optional) = catalogue(t);
    let mut out = vec![("minimal".to_owned(), base(t), true)];
    let full = with(base(t), |m| {
        let props = m["props"].as_object_mut().unwrap();
        for p in optional {
            props.insert(p.to_string(), prop_samples(p).0);
        }
        props.insert("unknown_key_is_kept".into(), json!({"any": [1, null]}));
        m.insert("source".into(), json!("from=article&id=123&x=1"));
        m.insert("scene".into(), json!(1058));
        m.insert("context".into(), json!({"app": "1.2.3"}));
        m.insert("schema_version".into(), json!(1));
    });
    out.push(("full".into(), full, true));
    for p in required {
        out.push((
            format!("missing {p}"),
            with(base(t), |m| {
                m["props"].as_object_mut().unwrap().remove(*p);
            }),
            false,
        ));
    }
    for p in required.iter().chain(optional.iter()) {
        for (i, bad) in prop_samples(p).1.into_iter().enumerate() {
            out.push((
                format!("bad {p} #{i}"),
                with(base(t), |m| {
                    m["props"][*p] = bad;
                }),
                false,
            ));
        }
    }
    if t == EventType::OrderPaid {
        out.push((
            "whole float amount".into(),
            with(base(t), |m| {
                m["props"]["amount_fen"] = json!(1990.0);
            }),
            true,
        ));
    }
    let identified = t == EventType::MemberIdentified;
    let envelope: Vec<(&str, Box<dyn Fn(&mut serde_json::Map<String, Value>)>, bool)> = vec![
        (
            "no event_id",
            Box::new(|m| {
                m.remove("event_id");
            }),
            false,
        ),
        (
            "bad uuid",
            Box::new(|m| {
                m["event_id"] = json!("not-a-uuid");
            }),
            false,
        ),
        (
            "no offset",
            Box::new(|m| {
                m["occurred_at"] = json!("2026-11-24T10:00:05");
            }),
            false,
        ),
        (
            "numeric time",
            Box::new(|m| {
                m["occurred_at"] = json!(1764000000);
            }),
            false,
        ),
        (
            "empty user",
            Box::new(|m| {
                m["user"] = json!({});
            }),
            false,
        ),
        (
            "user bad chars",
            Box::new(|m| {
                m["user"] = json!({"unionid": "u 1"});
            }),
            false,
        ),
        (
            "user too long",
            Box::new(|m| {
                m["user"] = json!({"mp_openid": "o".repeat(129)});
            }),
            false,
        ),
        (
            "user unknown key",
            Box::new(|m| {
                m["user"]["phone"] = json!("1");
            }),
            false,
        ),
        (
            "only mp openid",
            Box::new(|m| {
                m["user"] = json!({"mp_openid": "o_9"});
            }),
            !identified,
        ),
        (
            "only unionid",
            Box::new(|m| {
                m["user"] = json!({"unionid": "u_9"});
            }),
            !identified,
        ),
        (
            "unknown envelope key",
            Box::new(|m| {
                m.insert("prop".into(), json!({}));
            }),
            false,
        ),
        (
            "props not object",
            Box::new(|m| {
                m["props"] = json!([1]);
            }),
            false,
        ),
        (
            "source number",
            Box::new(|m| {
                m.insert("source".into(), json!(5));
            }),
            false,
        ),
        (
            "source object",
            Box::new(|m| {
                m.insert(
                    "source".into(),
                    json!({"from": "menu", "type": "home", "n": 1.5}),
                );
            }),
            true,
        ),
        (
            "source nested",
            Box::new(|m| {
                m.insert("source".into(), json!({"from": {"x": 1}}));
            }),
            false,
        ),
        (
            "negative scene",
            Box::new(|m| {
                m.insert("scene".into(), json!(-1));
            }),
            false,
        ),
        (
            "scene string",
            Box::new(|m| {
                m.insert("scene".into(), json!("1035"));
            }),
            false,
        ),
        (
            "context string",
            Box::new(|m| {
                m.insert("context".into(), json!("x"));
            }),
            false,
        ),
        (
            "unknown version",
            Box::new(|m| {
                m.insert("schema_version".into(), json!(9));
            }),
            false,
        ),
        (
            "1h in the future",
            Box::new(|m| {
                m["occurred_at"] = json!("2026-11-24T11:00:00+08:00");
            }),
            true,
        ),
        (
            "past 1h in the future",
            Box::new(|m| {
                m["occurred_at"] = json!("2026-11-24T03:00:01Z");
            }),
            false,
        ),
        (
            "long ago",
            Box::new(|m| {
                m["occurred_at"] = json!("2019-01-01T00:00:00.123+08:00");
            }),
            true,
        ),
    ];
    for (name, f, ok) in envelope {
        out.push((name.to_owned(), with(base(t), f), ok));
    }
    out
}

/// The Rust reading plus the one rule no schema can state (the clock).
fn rust_verdict(v: &Value) -> bool {
    match Event::from_wire(v, now()) {
        Ok(e) => {
            e.occurred_utc() <= now() + liandong_event::schema::MAX_FUTURE
                && matches!(v.get("schema_version"), None | Some(Value::Number(_)))
                && v.get("schema_version")
                    .and_then(Value::as_u64)
                    .is_none_or(|n| n == 1)
        }
        Err(_) => false,
    }
}

#[test]
fn schemas_and_rust_types_agree_on_every_sample() {
    let schemas = Schemas::load().unwrap();
    let mut checked = 0;
    for t in EventType::ALL {
        for (name, sample, expected) in samples(*t) {
            let by_schema = schemas.validate(&sample, now());
            let by_rust = rust_verdict(&sample);
            assert_eq!(
                by_schema.is_ok(),
                expected,
                "{t} / {name}: schema said {by_schema:?}\n{sample:#}"
            );
            assert_eq!(
                by_rust, expected,
                "{t} / {name}: Rust types disagree\n{sample:#}"
            );
            if let Ok(event) = by_schema {
                // What the log carries reads back as the same event.
                let text = serde_json::to_string(&event).unwrap();
                assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
                assert!(event.body().is_ok());
            }
            checked += 1;
        }
    }
    assert!(checked > 26 * 20, "only {checked} samples");
}
