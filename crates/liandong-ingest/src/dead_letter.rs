//! The dead-letter copy of a rejected event: `{index, event_id?, reason, error, status?,
//! received_at, event}` (`status` 403: refused because of the key that sent it; `reason`, one of
//! [`RejectReason`], absent from records written before it existed).
//! Invariant: personal data (`props.phone`, `props.address` of `member.profile_updated`) never
//! reaches the dead-letter stream in plaintext, neither in `event` nor echoed in `error`.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use liandong_event::{is_wechat_id, EventType};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// What stands in a dead letter for a value that was personal data.
pub const REDACTED: &str = "[redacted]";

/// Why an event was rejected, in a few words fit for a metric label and a filter: bounded,
/// never the event's own content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not JSON the server could read as a value (e.g. a number beyond f64).
    Json,
    /// Fails the envelope or its type's schema (unknown type, missing or malformed field,
    /// `occurred_at` more than an hour ahead…).
    Schema,
    /// Refused because of the key that sent it: a `client` key sending a server-only type or a
    /// `unionid` (`status` 403). Never replayed: that would lift the key's limits.
    ClientScope,
    /// Binds an openid already bound for life to another unionid.
    IdentityConflict,
    /// Something an adapter (WeChat push, Sensors intake) received that no catalogue event
    /// expresses.
    Unmappable,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::Json,
        RejectReason::Schema,
        RejectReason::ClientScope,
        RejectReason::IdentityConflict,
        RejectReason::Unmappable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Json => "json",
            RejectReason::Schema => "schema",
            RejectReason::ClientScope => "client_scope",
            RejectReason::IdentityConflict => "identity_conflict",
            RejectReason::Unmappable => "unmappable",
        }
    }

    /// The reason of a dead letter written before `reason` was recorded, from what it holds.
    pub fn of_legacy(status: Option<u64>, error: &str) -> RejectReason {
        if status == Some(403) {
            RejectReason::ClientScope
        } else if error.starts_with("(event): not valid JSON") {
            RejectReason::Json
        } else if error.starts_with("identity conflict:") {
            RejectReason::IdentityConflict
        } else {
            RejectReason::Schema
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RejectReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RejectReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
                format!("expected one of {}, got {s:?}", all.join(", "))
            })
    }
}

/// The catalogue type of a (rejected) event for a metric label: `unknown` unless it names a
/// type of the catalogue, so a sender's typos cannot grow the label set.
pub fn type_label(event: &Value) -> &'static str {
    event
        .get("type")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<EventType>().ok())
        .map_or("unknown", |t| t.as_str())
}
const PERSONAL_PROPS: [&str; 2] = ["phone", "address"];

/// True unless the event's type is known to be one without personal data. A missing or
/// misspelled type counts as possibly personal: "member.profile_update" with a phone number is
/// still a phone number.
fn may_carry_personal_data(event_type: Option<&str>) -> bool {
    match event_type.map(str::parse::<EventType>) {
        Some(Ok(t)) => t == EventType::MemberProfileUpdated,
        _ => true,
    }
}

/// The event as its sender wrote it, minus personal data.
pub(crate) fn redact_event(event: &Value) -> Value {
    let mut event = event.clone();
    let Some(obj) = event.as_object_mut() else {
        return event;
    };
    if !may_carry_personal_data(obj.get("type").and_then(Value::as_str)) {
        return event;
    }
    match obj.get_mut("props") {
        Some(Value::Object(props)) => {
            for key in PERSONAL_PROPS {
                if let Some(v) = props.get_mut(key) {
                    *v = Value::String(REDACTED.to_owned());
                }
            }
        }
        // Props that are not an object cannot be sorted into personal or not.
        Some(other) => *other = Value::String(REDACTED.to_owned()),
        None => {}
    }
    event
}

/// An event whose text is JSON but not a `serde_json::Value` (e.g. a number out of range):
/// kept verbatim unless its type says it may carry personal data, then redacted as a whole,
/// since a structural redaction needs the structure that failed to parse.
pub(crate) fn redact_raw(raw: &RawValue) -> Value {
    let event_type = serde_json::from_str::<HashMap<String, &RawValue>>(raw.get())
        .ok()
        .and_then(|fields| fields.get("type").copied())
        .and_then(|t| serde_json::from_str::<String>(t.get()).ok());
    if may_carry_personal_data(event_type.as_deref()) {
        Value::String(REDACTED.to_owned())
    } else {
        Value::String(raw.get().to_owned())
    }
}

/// Schema messages echo the offending value (`props.phone: expected …, got "138…"`): for events
/// that may carry personal data, values under `props` are cut from the message.
pub(crate) fn redact_error(event_type: Option<&str>, messages: &[String]) -> String {
    if !may_carry_personal_data(event_type) {
        return messages.join("; ");
    }
    let redact = |m: &String| -> String {
        let Some((field, rest)) = m.split_once(": ") else {
            return m.clone();
        };
        let under_props =
            field == "props" || field.starts_with("props.") || field.starts_with("props[");
        if !under_props || rest == "required" || rest == "unknown field" {
            m.clone()
        } else if let Some(at) = rest.find(", got ") {
            format!("{field}: {}, got {REDACTED}", &rest[..at])
        } else {
            format!("{field}: {REDACTED}")
        }
    };
    messages.iter().map(redact).collect::<Vec<_>>().join("; ")
}

/// The dead-letter record's key: the person's id when the event names one validly (so a
/// person's rejects stay in order with each other), else the event id, else none (spread).
pub(crate) fn key_of(event: Option<&Value>) -> String {
    let field = |path: [&str; 2]| {
        event
            .and_then(|e| e.get(path[0]))
            .and_then(|v| v.get(path[1]))
            .and_then(Value::as_str)
            .filter(|s| is_wechat_id(s))
    };
    field(["user", "unionid"])
        .or_else(|| field(["user", "oa_openid"]))
        .or_else(|| field(["user", "mp_openid"]))
        .or_else(|| {
            event
                .and_then(|e| e.get("event_id"))
                .and_then(Value::as_str)
                .filter(|s| s.len() <= 128)
        })
        .unwrap_or_default()
        .to_owned()
}

/// The dead-letter payload. `event` and `error` must already be redacted.
pub(crate) fn payload(
    index: usize,
    event_id: Option<&str>,
    reason: RejectReason,
    error: &str,
    status: Option<u16>,
    received_at: DateTime<Utc>,
    event: Value,
) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), Value::from(index));
    if let Some(id) = event_id {
        m.insert("event_id".into(), Value::from(id));
    }
    m.insert("reason".into(), Value::from(reason.as_str()));
    m.insert("error".into(), Value::from(error));
    if let Some(status) = status {
        m.insert("status".into(), Value::from(status));
    }
    m.insert(
        "received_at".into(),
        Value::from(received_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    m.insert("event".into(), event);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_updates_lose_phone_and_address() {
        let e = json!({"type": "member.profile_updated",
                       "props": {"phone": "13800138000", "address": "北京", "level": "gold"}});
        let r = redact_event(&e);
        assert_eq!(
            r["props"],
            json!({"phone": REDACTED, "address": REDACTED, "level": "gold"})
        );
        let typo = json!({"type": "member.profile_update", "props": {"phone": "13800138000"}});
        assert_eq!(redact_event(&typo)["props"]["phone"], REDACTED);
        let odd = json!({"type": "member.profile_updated", "props": ["13800138000"]});
        assert_eq!(redact_event(&odd)["props"], REDACTED);
        let order = json!({"type": "order.paid", "props": {"phone": "kept, not personal here"}});
        assert_eq!(redact_event(&order), order);
    }

    #[test]
    fn errors_lose_echoed_values() {
        let msgs = vec![
            "props.phone: expected a string of at most 32 characters, got \"1380013800013800138000138001380013800\"".to_owned(),
            "props.address: expected a string, got 5".to_owned(),
            "props.x, props.y: unknown field".to_owned(),
            "event_id: expected a UUID, got \"x\"".to_owned(),
        ];
        assert_eq!(
            redact_error(Some("member.profile_updated"), &msgs),
            "props.phone: expected a string of at most 32 characters, got [redacted]; \
             props.address: expected a string, got [redacted]; props.x, props.y: unknown field; \
             event_id: expected a UUID, got \"x\""
        );
        assert_eq!(redact_error(Some("order.paid"), &msgs[1..2]), msgs[1]);
    }

    #[test]
    fn unparseable_events_are_kept_only_without_personal_data() {
        let raw: &RawValue =
            serde_json::from_str(r#"{"type": "order.paid", "props": {"amount_fen": 1e999}}"#)
                .expect("raw JSON");
        assert_eq!(redact_raw(raw), Value::String(raw.get().to_owned()));
        let raw: &RawValue =
            serde_json::from_str(r#"{"type": "member.profile_updated", "x": 1e999}"#)
                .expect("raw JSON");
        assert_eq!(redact_raw(raw), REDACTED);
    }
}
