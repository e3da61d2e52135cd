//! Validation of a sender's event against the versioned JSON Schemas in `schemas/` (JSON Schema
//! 2020-12, checked by the `jsonschema` crate). The schemas are the contract's machine form; the
//! messages name the field (`props.amount_fen`) and what was expected.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Registry, ValidationError, Validator};
use serde_json::Value;

use crate::{Event, EventType};

include!(concat!(env!("OUT_DIR"), "/schemas.rs"));

/// The newest schema version of every type; an event without `schema_version` follows it.
pub const LATEST_VERSION: u32 = 1;

const ENVELOPE_URI: &str = "https://liandong.dev/schemas/envelope.v1.json";

/// How far in the future `occurred_at` may be (EVENTS.md, the envelope).
pub const MAX_FUTURE: Duration = Duration::hours(1);

/// Every schema, compiled once at start-up.
pub struct Schemas {
    envelope: Validator,
    by_type: HashMap<(EventType, u32), Validator>,
    latest: HashMap<EventType, u32>,
}

/// An event that is not valid, with one message per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct Invalid(pub Vec<String>);

/// A schema file that does not compile: a bug in `schemas/`, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("schema {name}: {message}")]
pub struct SchemaError {
    pub name: String,
    pub message: String,
}

impl Schemas {
    /// Compiles the schemas embedded at build time.
    pub fn load() -> Result<Schemas, SchemaError> {
        let err = |name: &str, message: String| SchemaError {
            name: name.to_owned(),
            message,
        };
        let envelope: Value = serde_json::from_str(ENVELOPE_V1)
            .map_err(|e| err("envelope.v1.json", e.to_string()))?;
        let registry = Registry::new()
            .add(ENVELOPE_URI, envelope.clone())
            .and_then(|b| b.prepare())
            .map_err(|e| err("envelope.v1.json", e.to_string()))?;
        let build = |name: &str, schema: &Value| {
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .with_registry(&registry)
                .build(schema)
                .map_err(|e| err(name, e.to_string()))
        };
        let envelope = build("envelope.v1.json", &envelope)?;
        let mut by_type = HashMap::new();
        let mut latest: HashMap<EventType, u32> = HashMap::new();
        for (name, version, text) in EVENT_SCHEMAS {
            let file = format!("events/{name}.v{version}.json");
            let ty: EventType = name
                .parse()
                .map_err(|_| err(&file, "not in the catalogue".into()))?;
            let schema: Value =
                serde_json::from_str(text).map_err(|e| err(&file, e.to_string()))?;
            by_type.insert((ty, *version), build(&file, &schema)?);
            let l = latest.entry(ty).or_insert(*version);
            *l = (*l).max(*version);
        }
        if let Some(missing) = EventType::ALL.iter().find(|t| !latest.contains_key(t)) {
            return Err(err(missing.as_str(), "no schema file".into()));
        }
        Ok(Schemas {
            envelope,
            by_type,
            latest,
        })
    }

    /// The versions known for a type, oldest first.
    pub fn versions(&self, ty: EventType) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .by_type
            .keys()
            .filter(|(t, _)| *t == ty)
            .map(|(_, v)| *v)
            .collect();
        v.sort_unstable();
        v
    }

    /// Validates one sender's event and reads it. `now` is the server's clock (for the
    /// "at most 1 hour in the future" rule) and becomes the event's `received_at`.
    pub fn validate(&self, v: &Value, now: DateTime<Utc>) -> Result<Event, Invalid> {
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .map(|s| s.parse::<EventType>());
        // The version the event follows, once its type is known: it is recorded on the event.
        let mut followed = None;
        let validator = match ty {
            Some(Ok(ty)) => {
                let latest = self.latest.get(&ty).copied().unwrap_or(LATEST_VERSION);
                let version = match v.get("schema_version") {
                    None => latest,
                    Some(sv) => match sv.as_u64().and_then(|n| u32::try_from(n).ok()) {
                        Some(n) if self.by_type.contains_key(&(ty, n)) => n,
                        _ => {
                            return Err(Invalid(vec![format!(
                                "schema_version: expected one of {:?} for type {ty}, got {sv}",
                                self.versions(ty)
                            )]))
                        }
                    },
                };
                followed = Some(version);
                &self.by_type[&(ty, version)]
            }
            _ => &self.envelope,
        };
        let mut errors: Vec<String> = Vec::new();
        if let Some(Err(unknown)) = &ty {
            errors.push(format!(
                "type: expected one of the catalogue's types (docs/events.md), got {:?}",
                unknown.0
            ));
        }
        for e in validator.iter_errors(v) {
            let m = message(&e);
            if !errors.contains(&m) {
                errors.push(m);
            }
        }
        if !errors.is_empty() {
            return Err(Invalid(errors));
        }
        let mut event = Event::from_wire(v, now).map_err(|e| Invalid(vec![e.to_string()]))?;
        // `from_wire` cannot know the newest version of each type; an event without
        // `schema_version` followed the newest one, and says so in the log.
        if let Some(version) = followed {
            event.schema_version = version;
        }
        if event.occurred_utc() > now + MAX_FUTURE {
            return Err(Invalid(vec![format!(
                "occurred_at: expected a time at most 1 hour after the server's clock ({}), got {}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                event.occurred_at.to_rfc3339()
            )]));
        }
        Ok(event)
    }
}

/// `/props/items/0/qty` → `props.items[0].qty`.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.bytes().all(|b| b.is_ascii_digit()) && !seg.is_empty() && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    if out.is_empty() {
        "(event)".to_owned()
    } else {
        out
    }
}

fn got(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

fn json_type_name(t: &str) -> &str {
    match t {
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "object" => "an object",
        "array" => "an array",
        "boolean" => "a boolean",
        "null" => "null",
        other => other,
    }
}

/// One schema error as `field: expected …, got …`.
fn message(e: &ValidationError<'_>) -> String {
    let path = field_path(e.instance_path().as_str());
    let inst = e.instance();
    let is_int = inst.as_i64().is_some() || inst.as_u64().is_some();
    let expected = match e.kind() {
        ValidationErrorKind::Required { property } => {
            let p = property.as_str().unwrap_or_default();
            let field = if path == "(event)" {
                p.to_owned()
            } else {
                format!("{path}.{p}")
            };
            return format!("{field}: required");
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let fields: Vec<String> = unexpected
                .iter()
                .map(|u| {
                    if path == "(event)" {
                        u.clone()
                    } else {
                        format!("{path}.{u}")
                    }
                })
                .collect();
            return format!("{}: unknown field", fields.join(", "));
        }
        ValidationErrorKind::Type { kind } => match kind {
            TypeKind::Single(t) => json_type_name(&t.to_string()).to_owned(),
            TypeKind::Multiple(ts) => ts
                .iter()
                .map(|t| json_type_name(&t.to_string()).to_owned())
                .collect::<Vec<_>>()
                .join(" or "),
        },
        ValidationErrorKind::Minimum { limit } => {
            format!(
                "{} >= {limit}",
                if is_int { "an integer" } else { "a number" }
            )
        }
        ValidationErrorKind::Maximum { limit } => {
            format!(
                "{} <= {limit}",
                if is_int { "an integer" } else { "a number" }
            )
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("a string of at least {limit} characters")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("a string of at most {limit} characters")
        }
        ValidationErrorKind::MaxItems { limit } => format!("at most {limit} items"),
        ValidationErrorKind::MinProperties { .. } if path == "user" => {
            "at least one of unionid, oa_openid, mp_openid".to_owned()
        }
        ValidationErrorKind::MinProperties { limit } => format!("at least {limit} fields"),
        ValidationErrorKind::Enum { options } => format!("one of {options}"),
        ValidationErrorKind::Constant { expected_value } => format!("{expected_value}"),
        ValidationErrorKind::Format { format } => match format.as_str() {
            "date-time" => {
                "an RFC 3339 date-time with an offset, e.g. 2026-11-24T10:00:05+08:00".to_owned()
            }
            "uuid" => "a UUID".to_owned(),
            other => format!("a {other}"),
        },
        ValidationErrorKind::Pattern { pattern } if pattern == "^[A-Za-z0-9_-]{1,128}$" => {
            "1-128 characters of A-Z a-z 0-9 _ -".to_owned()
        }
        ValidationErrorKind::Pattern { pattern } => format!("a string matching {pattern}"),
        ValidationErrorKind::OneOfNotValid { .. } if path == "source" => {
            "a query string or an object of strings and numbers".to_owned()
        }
        ValidationErrorKind::AnyOf { .. } if path == "user" => {
            "a unionid together with an oa_openid or an mp_openid".to_owned()
        }
        _ => return format!("{path}: {e}"),
    };
    format!("{path}: expected {expected}, got {}", got(inst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> Schemas {
        Schemas::load().expect("schemas compile")
    }

    #[test]
    fn every_type_has_a_schema() {
        let s = schemas();
        for t in EventType::ALL {
            let want = match t {
                EventType::OaTemplateSent
                | EventType::OaArticleRead
                | EventType::OaArticleClick
                | EventType::OaTemplateClick
                | EventType::MpFollowPromptShown
                | EventType::MpFollowPromptClick
                | EventType::MpNotifySent
                | EventType::MpNotifyClick
                | EventType::MpPageView
                | EventType::OrderPlaced => vec![1, 2],
                _ => vec![1],
            };
            assert_eq!(s.versions(*t), want, "{t}");
        }
    }

    #[test]
    fn an_event_without_schema_version_follows_and_records_the_newest() {
        let s = schemas();
        let now = Utc::now();
        let sent = |extra: Value| {
            let mut v = json!({"event_id": "0d9c5b8e-8d1e-4c4e-9a51-0c7f3f1b2a11",
                "type": "oa.template.sent", "occurred_at": "2026-11-24T10:00:05+08:00",
                "user": {"oa_openid": "oA-1"},
                "props": {"template_id": "t1", "status": "user_block"}});
            if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
                m.extend(e);
            }
            v
        };
        assert_eq!(
            s.validate(&sent(json!({})), now).map(|e| e.schema_version),
            Ok(2)
        );
        assert_eq!(
            s.validate(&sent(json!({"schema_version": 1})), now)
                .map(|e| e.schema_version),
            Ok(1)
        );
        let mut bad = sent(json!({}));
        bad["props"]["status"] = json!("failed:user block");
        let err = s.validate(&bad, now).expect_err("not in the enum");
        assert!(
            err.to_string().starts_with("props.status: expected one of"),
            "{err}"
        );
    }

    #[test]
    fn messages_name_the_field_and_the_expectation() {
        let s = schemas();
        let now = Utc::now();
        let ev = json!({
            "event_id": "6f1c1a9e-2f7a-4d38-9a43-1f1f5b7f4f10", "type": "order.paid",
            "occurred_at": "2026-11-24T10:00:05+08:00", "user": {"mp_openid": "o1"},
            "props": {"order_id": "A1", "amount_fen": -5}
        });
        let e = s.validate(&ev, now).unwrap_err();
        assert_eq!(
            e.0,
            vec!["props.amount_fen: expected an integer >= 0, got -5"]
        );

        let ev = json!({"event_id": "x", "type": "oa.menu.click", "occurred_at": "2026-11-24 10:00",
                        "user": {}, "props": {}});
        let e = s.validate(&ev, now).unwrap_err().0;
        assert!(
            e.contains(&"event_id: expected a UUID, got \"x\"".to_owned()),
            "{e:?}"
        );
        assert!(e.contains(&"props.entry: required".to_owned()), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.starts_with("occurred_at: expected an RFC 3339")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("user: expected at least one of")),
            "{e:?}"
        );

        let ev = json!({"event_id": "6f1c1a9e-2f7a-4d38-9a43-1f1f5b7f4f10", "type": "oa.nope",
                        "occurred_at": "2026-11-24T10:00:05+08:00", "user": {"unionid": "u"}});
        let e = s.validate(&ev, now).unwrap_err().0;
        assert!(
            e[0].starts_with("type: expected one of the catalogue"),
            "{e:?}"
        );
    }

    #[test]
    fn the_future_is_limited_to_one_hour() {
        let s = schemas();
        let now: DateTime<Utc> = "2026-11-24T02:00:00Z".parse().unwrap();
        let at = |t: &str| {
            json!({"event_id": "6f1c1a9e-2f7a-4d38-9a43-1f1f5b7f4f10",
            "type": "oa.unfollow", "occurred_at": t, "user": {"oa_openid": "o"}})
        };
        assert!(s.validate(&at("2026-11-24T11:00:00+08:00"), now).is_ok());
        let e = s
            .validate(&at("2026-11-24T11:00:01+08:00"), now)
            .unwrap_err();
        assert!(
            e.0[0].starts_with("occurred_at: expected a time at most 1 hour"),
            "{e}"
        );
    }
}
