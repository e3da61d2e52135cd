//! From a WeChat push to an event of the catalogue (EVENTS.md). A pure function of the push and
//! the menu configuration; nothing here does IO.
//!
//! | push (`MsgType` event, `Event` …) | event |
//! | --- | --- |
//! | `subscribe` | `oa.follow`: `via` `qrcode` + `qrscene` for `EventKey` `qrscene_<scene>`, `mp_prompt` when that scene starts with `mp_prompt`, else `other` |
//! | `unsubscribe` | `oa.unfollow` |
//! | `CLICK`, `VIEW`, `view_miniprogram` | `oa.menu.click`: `entry` / `experiment` / `variant` from the menu configuration, `target` = the URL or page path, `source` = its query string when that has `from=` |
//! | `TEMPLATESENDJOBFINISH` | `oa.template.sent` (schema v2): `msg_id` = `MsgID`, `status` from `Status`, `template_id` / `purpose` from the configuration (`unknown` by default) |
//! | `SCAN` | nothing: acknowledged, not logged (a follower scanned a QR code again; no event of the catalogue says that) |
//! | any other event, any user message (`text`, `image`…) | the dead-letter stream, with the reason |
//!
//! Invariant: the event id is a function of the push alone (see [`event_id`]), so WeChat's
//! retries of a push are duplicates that the read models count once.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::menu::{Clicked, MenuConfig};
use crate::xml::Push;

/// The name whose UUID v5 (URL namespace) is the namespace of push event ids. Changing it
/// would make a retried push after an upgrade count twice: never change it.
pub const ID_NAMESPACE_NAME: &str = "https://liandong.dev/ns/wechat/oa-push";

/// The scene prefix that marks a QR code shown by the Mini Program's follow prompt
/// (`mp_prompt`, `mp_prompt:home`, …): a follow through it is `via: mp_prompt`.
pub const MP_PROMPT_SCENE_PREFIX: &str = "mp_prompt";

/// The offset of `occurred_at`: WeChat's `CreateTime` is a Unix time, China has one zone.
const CHINA_OFFSET_SECS: i32 = 8 * 3600;

/// What a push becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// An event in wire form, for ingestion.
    Event(Value),
    /// Nothing to log; the push is acknowledged.
    Ignored(&'static str),
    /// Not an event of the catalogue: for the dead-letter stream, with the reason.
    Unmappable(String),
}

/// A push without what every push has (`FromUserName`, `CreateTime`, `MsgType`): it cannot
/// even be identified, so it is refused rather than dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPush(pub String);

/// The deterministic id of a push: UUID v5, under the namespace of [`ID_NAMESPACE_NAME`], of
/// `FromUserName`, `CreateTime`, `Event` (or `MsgType` for a user message), `EventKey` and
/// `MsgID`/`MsgId` (empty when absent), each prefixed by its byte length so no two different
/// pushes share a name. WeChat repeats exactly these on a retry.
pub fn event_id(push: &Push) -> Uuid {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, ID_NAMESPACE_NAME.as_bytes());
    let kind = match push.get("MsgType") {
        Some(t) if t.eq_ignore_ascii_case("event") => push.get("Event").unwrap_or_default(),
        other => other.unwrap_or_default(),
    };
    let parts = [
        push.get("FromUserName").unwrap_or_default(),
        push.get("CreateTime").unwrap_or_default(),
        kind,
        push.get("EventKey").unwrap_or_default(),
        push.get("MsgID").or(push.get("MsgId")).unwrap_or_default(),
    ];
    let mut name = Vec::new();
    for part in parts {
        name.extend_from_slice(format!("{}:", part.len()).as_bytes());
        name.extend_from_slice(part.as_bytes());
    }
    Uuid::new_v5(&namespace, &name)
}

/// `CreateTime` (Unix seconds) as RFC 3339 at +08:00.
fn occurred_at(create_time: &str) -> Result<String, MalformedPush> {
    let bad = || {
        MalformedPush(format!(
            "CreateTime: expected Unix seconds, got {create_time:?}"
        ))
    };
    let secs: i64 = create_time.parse().map_err(|_| bad())?;
    let utc = DateTime::from_timestamp(secs, 0).ok_or_else(bad)?;
    let china = FixedOffset::east_opt(CHINA_OFFSET_SECS).ok_or_else(bad)?;
    Ok(utc
        .with_timezone(&china)
        .to_rfc3339_opts(SecondsFormat::Secs, false))
}

/// The query string of a URL or page path when it carries `from=` (EVENTS.md's `source`).
fn source_of(target: &str) -> Option<String> {
    let (_, query) = target.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .any(|(k, _)| k == "from")
        .then(|| query.to_owned())
}

/// WeChat's `Status` of a template delivery (`success`, `failed:user block`,
/// `failed: system failed`) as schema v2's enum; spacing and case are not significant.
fn template_status(raw: &str) -> Option<&'static str> {
    let norm: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match norm.as_str() {
        "success" => Some("success"),
        "failed:userblock" => Some("user_block"),
        "failed:systemfailed" => Some("system_failed"),
        _ => None,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Maps one push. See the module's table.
pub fn map(push: &Push, menu: &MenuConfig) -> Result<Mapped, MalformedPush> {
    let required = |name: &str| {
        push.non_empty(name)
            .ok_or_else(|| MalformedPush(format!("{name}: required in every push")))
    };
    let openid = required("FromUserName")?;
    let time = occurred_at(required("CreateTime")?)?;
    let msg_type = required("MsgType")?;
    if !msg_type.eq_ignore_ascii_case("event") {
        return Ok(Mapped::Unmappable(format!(
            "MsgType {msg_type}: a user message, not an event push; liandong maps event pushes only"
        )));
    }
    let Some(event) = push.non_empty("Event") else {
        return Ok(Mapped::Unmappable(
            "MsgType event without an Event element".to_owned(),
        ));
    };
    let event_key = push.non_empty("EventKey");
    let menu_id = push.non_empty("MenuId").or(push.non_empty("MenuID"));

    // What the catalogue has no field for, kept where EVENTS.md keeps free-form detail.
    let mut wechat = Map::new();
    wechat.insert("event".into(), Value::from(event));
    if let Some(to) = push.non_empty("ToUserName") {
        wechat.insert("to".into(), Value::from(to));
    }
    if let Some(k) = event_key {
        wechat.insert("event_key".into(), Value::from(k));
    }
    if let Some(m) = menu_id {
        wechat.insert("menu_id".into(), Value::from(m));
    }

    let mut source = None;
    let (event_type, props) = match event.to_ascii_lowercase().as_str() {
        "subscribe" => {
            let scene = event_key.and_then(|k| k.strip_prefix("qrscene_"));
            let props = match scene {
                Some(scene) if scene.starts_with(MP_PROMPT_SCENE_PREFIX) => {
                    json!({"via": "mp_prompt", "qrscene": scene})
                }
                Some(scene) => json!({"via": "qrcode", "qrscene": scene}),
                None => json!({"via": "other"}),
            };
            ("oa.follow", props)
        }
        "unsubscribe" => ("oa.unfollow", json!({})),
        "scan" => return Ok(Mapped::Ignored(
            "SCAN: a follower scanned a parametric QR code; no event of the catalogue records it",
        )),
        kind @ ("click" | "view" | "view_miniprogram") => {
            let Some(key) = event_key else {
                return Ok(Mapped::Unmappable(format!(
                    "Event {event} without an EventKey: the menu entry is unknown"
                )));
            };
            let clicked = if kind == "click" {
                Clicked::Key(key)
            } else {
                Clicked::Target(key)
            };
            let mut props = Map::new();
            match menu.lookup(clicked, menu_id) {
                Some(entry) => {
                    props.insert("entry".into(), Value::from(entry.label.as_str()));
                    if let Some(x) = &entry.experiment {
                        props.insert("experiment".into(), Value::from(x.as_str()));
                    }
                    if let Some(v) = &entry.variant {
                        props.insert("variant".into(), Value::from(v.as_str()));
                    }
                }
                // Unconfigured buttons still count, labelled by what the push names.
                None => {
                    props.insert("entry".into(), Value::from(truncate(key, 256)));
                }
            }
            if let Clicked::Target(target) = clicked {
                props.insert("target".into(), Value::from(target));
                source = source_of(target);
            }
            ("oa.menu.click", Value::Object(props))
        }
        "templatesendjobfinish" => {
            let mut props = Map::new();
            props.insert("template_id".into(), Value::from(menu.template_id()));
            if let Some(p) = menu.template_purpose() {
                props.insert("purpose".into(), Value::from(p));
            }
            if let Some(id) = push.non_empty("MsgID").or(push.non_empty("MsgId")) {
                props.insert("msg_id".into(), Value::from(id));
            }
            if let Some(raw) = push.non_empty("Status") {
                match template_status(raw) {
                    Some(status) => {
                        props.insert("status".into(), Value::from(status));
                    }
                    None => {
                        wechat.insert("status".into(), Value::from(raw));
                    }
                }
            }
            ("oa.template.sent", Value::Object(props))
        }
        _ => {
            return Ok(Mapped::Unmappable(format!(
                "Event {event}: no event of the catalogue maps it"
            )))
        }
    };

    let mut out = Map::new();
    out.insert("event_id".into(), Value::from(event_id(push).to_string()));
    out.insert("type".into(), Value::from(event_type));
    out.insert("occurred_at".into(), Value::from(time));
    out.insert("user".into(), json!({ "oa_openid": openid }));
    if let Some(s) = source {
        out.insert("source".into(), Value::from(s));
    }
    out.insert("props".into(), props);
    out.insert("context".into(), json!({ "wechat": wechat }));
    Ok(Mapped::Event(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(event: &str, key: Option<&str>, extra: &[(&'static str, &'static str)]) -> Push {
        let mut pairs = vec![
            ("ToUserName", "gh_1"),
            ("FromUserName", "oA-1"),
            ("CreateTime", "1764000005"),
            ("MsgType", "event"),
            ("Event", event),
        ];
        if let Some(k) = key {
            pairs.push(("EventKey", k));
        }
        pairs.extend_from_slice(extra);
        Push::from_pairs(pairs)
    }

    fn event(p: &Push, menu: &MenuConfig) -> Value {
        match map(p, menu).expect("not malformed") {
            Mapped::Event(v) => v,
            other => panic!("not an event: {other:?}"),
        }
    }

    fn menu() -> MenuConfig {
        MenuConfig::parse(
            r#"{"menus": [
                {"key": "ORDER_NOW", "label": "立即点餐"},
                {"key": "ORDER_NOW", "menu_id": "415", "label": "马上下单", "experiment": "entry_name", "variant": "b"},
                {"target": "pages/menu/index?from=menu&type=home", "label": "点单小程序"}
            ], "templates": {"template_id": "TPL_1"}}"#,
        )
        .expect("valid")
    }

    #[test]
    fn follows_say_how() {
        let m = MenuConfig::default();
        let e = event(&push("subscribe", None, &[]), &m);
        assert_eq!(e["type"], "oa.follow");
        assert_eq!(e["props"], json!({"via": "other"}));
        assert_eq!(e["user"], json!({"oa_openid": "oA-1"}));
        assert_eq!(e["occurred_at"], "2025-11-25T00:00:05+08:00");
        assert_eq!(e["context"]["wechat"]["to"], "gh_1");
        let e = event(&push("subscribe", Some("qrscene_store_12"), &[]), &m);
        assert_eq!(e["props"], json!({"via": "qrcode", "qrscene": "store_12"}));
        let e = event(&push("subscribe", Some("qrscene_mp_prompt:home"), &[]), &m);
        assert_eq!(
            e["props"],
            json!({"via": "mp_prompt", "qrscene": "mp_prompt:home"})
        );
        // A key that is not a scene is kept as detail, not read as one.
        let e = event(&push("subscribe", Some("last_trade_no_1"), &[]), &m);
        assert_eq!(e["props"], json!({"via": "other"}));
        assert_eq!(e["context"]["wechat"]["event_key"], "last_trade_no_1");
        let e = event(&push("unsubscribe", None, &[]), &m);
        assert_eq!(
            (e["type"].as_str(), &e["props"]),
            (Some("oa.unfollow"), &json!({}))
        );
    }

    #[test]
    fn menu_clicks_take_label_experiment_and_target_from_the_configuration() {
        let m = menu();
        let e = event(&push("CLICK", Some("ORDER_NOW"), &[]), &m);
        assert_eq!(e["type"], "oa.menu.click");
        assert_eq!(e["props"], json!({"entry": "立即点餐"}));
        assert!(e.get("source").is_none());
        let e = event(&push("CLICK", Some("ORDER_NOW"), &[("MenuId", "415")]), &m);
        assert_eq!(
            e["props"],
            json!({"entry": "马上下单", "experiment": "entry_name", "variant": "b"})
        );
        assert_eq!(e["context"]["wechat"]["menu_id"], "415");
        let page = "pages/menu/index?from=menu&type=home";
        let e = event(
            &push("view_miniprogram", Some(page), &[("MenuId", "415")]),
            &m,
        );
        assert_eq!(e["props"], json!({"entry": "点单小程序", "target": page}));
        assert_eq!(e["source"], "from=menu&type=home");
        // Unconfigured: labelled by what the push names; a URL without from= has no source.
        let url = "https://shop.example.com/p?id=9#top";
        let e = event(&push("VIEW", Some(url), &[]), &m);
        assert_eq!(e["props"], json!({"entry": url, "target": url}));
        assert!(e.get("source").is_none());
        let e = event(
            &push("VIEW", Some("https://x.cn/?a=1&from=oa_menu#f"), &[]),
            &m,
        );
        assert_eq!(e["source"], "a=1&from=oa_menu");
        let long = "长".repeat(300);
        let e = event(&push("CLICK", Some(&long), &[]), &MenuConfig::default());
        assert_eq!(
            e["props"]["entry"].as_str().map(|s| s.chars().count()),
            Some(256)
        );
        assert!(
            matches!(map(&push("CLICK", None, &[]), &m), Ok(Mapped::Unmappable(r)) if r.contains("without an EventKey"))
        );
    }

    #[test]
    fn template_results_carry_the_status() {
        let m = menu();
        for (raw, want) in [
            ("success", Some("success")),
            ("failed:user block", Some("user_block")),
            ("failed: system failed", Some("system_failed")),
            ("Failed: System Failed", Some("system_failed")),
            ("failed: something new", None),
        ] {
            let p = push(
                "TEMPLATESENDJOBFINISH",
                None,
                &[("MsgID", "200163836"), ("Status", raw)],
            );
            let e = event(&p, &m);
            assert_eq!(e["type"], "oa.template.sent");
            assert_eq!(e["props"]["template_id"], "TPL_1");
            assert_eq!(e["props"]["msg_id"], "200163836");
            assert_eq!(
                e["props"].get("status").and_then(Value::as_str),
                want,
                "{raw}"
            );
            if want.is_none() {
                assert_eq!(e["context"]["wechat"]["status"], raw);
            }
        }
        let e = event(
            &push("TEMPLATESENDJOBFINISH", None, &[("MsgID", "1")]),
            &MenuConfig::default(),
        );
        assert_eq!(e["props"]["template_id"], "unknown");
    }

    #[test]
    fn scan_is_acknowledged_and_the_rest_is_dead_lettered_with_a_reason() {
        let m = MenuConfig::default();
        assert!(matches!(
            map(&push("SCAN", Some("store_12"), &[]), &m),
            Ok(Mapped::Ignored(_))
        ));
        assert!(
            matches!(map(&push("LOCATION", None, &[]), &m), Ok(Mapped::Unmappable(r)) if r == "Event LOCATION: no event of the catalogue maps it")
        );
        let text = Push::from_pairs([
            ("FromUserName", "oA-1"),
            ("CreateTime", "1"),
            ("MsgType", "text"),
            ("Content", "你好"),
            ("MsgId", "9"),
        ]);
        assert!(
            matches!(map(&text, &m), Ok(Mapped::Unmappable(r)) if r.starts_with("MsgType text: a user message"))
        );
    }

    #[test]
    fn pushes_that_cannot_be_identified_are_malformed() {
        let m = MenuConfig::default();
        let e = map(
            &Push::from_pairs([("CreateTime", "1"), ("MsgType", "event")]),
            &m,
        )
        .expect_err("no user");
        assert_eq!(e.0, "FromUserName: required in every push");
        let e = map(
            &Push::from_pairs([
                ("FromUserName", "o"),
                ("CreateTime", "soon"),
                ("MsgType", "event"),
            ]),
            &m,
        )
        .expect_err("bad time");
        assert!(e.0.starts_with("CreateTime: expected Unix seconds"), "{e}");
        let huge = Push::from_pairs([
            ("FromUserName", "o"),
            ("CreateTime", "99999999999999999"),
            ("MsgType", "event"),
        ]);
        assert!(map(&huge, &m).is_err());
    }

    #[test]
    fn ids_are_a_function_of_the_push() {
        let a = push("CLICK", Some("ORDER_NOW"), &[]);
        assert_eq!(event_id(&a), event_id(&a.clone()));
        assert_eq!(event(&a, &menu())["event_id"], event_id(&a).to_string());
        assert_eq!(event_id(&a).get_version_num(), 5);
        // Another key, time, user or message id is another event.
        assert_ne!(
            event_id(&a),
            event_id(&push("CLICK", Some("ORDER_LATER"), &[]))
        );
        assert_ne!(
            event_id(&push("TEMPLATESENDJOBFINISH", None, &[("MsgID", "1")])),
            event_id(&push("TEMPLATESENDJOBFINISH", None, &[("MsgID", "2")]))
        );
        // Lengths keep the parts apart: ("ab", "c") is not ("a", "bc").
        let p = |from, time| {
            Push::from_pairs([
                ("FromUserName", from),
                ("CreateTime", time),
                ("MsgType", "event"),
            ])
        };
        assert_ne!(event_id(&p("o1", "23")), event_id(&p("o12", "3")));
        // Pinned: a change here would make retries across an upgrade count twice.
        assert_eq!(event_id(&a).to_string(), PINNED_CLICK_ID);
    }

    const PINNED_CLICK_ID: &str = "bb9237f3-321b-5476-a765-adf0c89968bc";
}
