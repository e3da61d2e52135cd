//! The event envelope (EVENTS.md, "The envelope") in its normalized form: what ingestion writes
//! to the log and what projectors read back. `Event::from_wire` is the strict Rust reading of a
//! sender's JSON; it must agree with the JSON Schemas (see `tests/agreement.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::props::Body;
use crate::source::Source;
use crate::EventType;

/// Who an event is about. At least one of the three is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oa_openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp_openid: Option<String>,
}

impl User {
    /// The openids this user's unionid binds, when the event carries a unionid.
    pub fn bindings(&self) -> Option<(&str, Vec<(OpenidKind, &str)>)> {
        let unionid = self.unionid.as_deref()?;
        let mut openids = Vec::with_capacity(2);
        if let Some(o) = self.oa_openid.as_deref() {
            openids.push((OpenidKind::Oa, o));
        }
        if let Some(o) = self.mp_openid.as_deref() {
            openids.push((OpenidKind::Mp, o));
        }
        (!openids.is_empty()).then_some((unionid, openids))
    }

    /// The identifier whose data key seals this event's personal data: the unionid when the
    /// event carries one, else the OA openid, else the MP openid.
    pub fn data_key_identifier(&self) -> Option<&str> {
        self.unionid
            .as_deref()
            .or(self.oa_openid.as_deref())
            .or(self.mp_openid.as_deref())
    }

    /// The member key when no binding is known beyond what the event itself says
    /// (EVENTS.md, Identity): the unionid, else `oa:<oa_openid>`, else `mp:<mp_openid>`.
    pub fn own_member_key(&self) -> String {
        if let Some(u) = &self.unionid {
            u.clone()
        } else if let Some(o) = &self.oa_openid {
            OpenidKind::Oa.member_key(o)
        } else if let Some(o) = &self.mp_openid {
            OpenidKind::Mp.member_key(o)
        } else {
            // Unreachable for validated events; an empty key keeps this total.
            String::new()
        }
    }
}

/// Which WeChat app an openid belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenidKind {
    Oa,
    Mp,
}

impl OpenidKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpenidKind::Oa => "oa",
            OpenidKind::Mp => "mp",
        }
    }

    /// Position in per-kind tables.
    pub fn index(self) -> usize {
        match self {
            OpenidKind::Oa => 0,
            OpenidKind::Mp => 1,
        }
    }

    /// The member key of an openid never bound to a unionid.
    pub fn member_key(self, openid: &str) -> String {
        format!("{}:{openid}", self.as_str())
    }
}

impl std::fmt::Display for OpenidKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated tracking event, normalized. This is the payload of every record in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The version of the type's schema the event was validated against.
    pub schema_version: u32,
    pub occurred_at: DateTime<FixedOffset>,
    /// Set by ingestion when it accepted the event.
    pub received_at: DateTime<Utc>,
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<i64>,
    #[serde(default)]
    pub props: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// Personal data (EVENTS.md, "Personal data": `phone`, `address` of
    /// `member.profile_updated`) that ingestion took out of `props` and sealed under the
    /// member's data key (`liandong-vault`): prop name → `ld1:…`. Never plaintext; empty on
    /// the wire, where the sender's `props` carry the values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sealed: BTreeMap<String, String>,
}

/// Why a sender's event is not an event (the Rust reading; ingestion reports the schema's
/// messages, which name the field the same way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WireError {
    pub field: String,
    pub message: String,
}

fn wire_err(field: impl Into<String>, message: impl Into<String>) -> WireError {
    WireError {
        field: field.into(),
        message: message.into(),
    }
}

const ENVELOPE_KEYS: &[&str] = &[
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "user",
    "source",
    "scene",
    "props",
    "context",
];

/// 1-128 characters of `A-Z a-z 0-9 _ -` (EVENTS.md, the envelope's `user`).
pub fn is_wechat_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Event {
    /// Strictly reads a sender's event. `received_at` is the time ingestion accepts it.
    pub fn from_wire(v: &Value, received_at: DateTime<Utc>) -> Result<Event, WireError> {
        let obj = v
            .as_object()
            .ok_or_else(|| wire_err("(event)", "expected an object"))?;
        if let Some(k) = obj.keys().find(|k| !ENVELOPE_KEYS.contains(&k.as_str())) {
            return Err(wire_err(k.as_str(), "unknown field"));
        }
        let str_field = |k: &str| -> Result<&str, WireError> {
            match obj.get(k) {
                None => Err(wire_err(k, "required")),
                Some(Value::String(s)) => Ok(s),
                Some(_) => Err(wire_err(k, "expected a string")),
            }
        };
        let event_id = Uuid::parse_str(str_field("event_id")?)
            .map_err(|_| wire_err("event_id", "expected a UUID"))?;
        let event_type: EventType = str_field("type")?
            .parse()
            .map_err(|e: crate::UnknownEventType| wire_err("type", e.to_string()))?;
        let schema_version = match obj.get("schema_version") {
            None => crate::schema::LATEST_VERSION,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 && n <= u32::MAX as u64 => n as u32,
                _ => return Err(wire_err("schema_version", "expected an integer >= 1")),
            },
        };
        let occurred_at = DateTime::parse_from_rfc3339(str_field("occurred_at")?)
            .map_err(|_| wire_err("occurred_at", "expected an RFC 3339 date-time"))?;
        let user = parse_user(obj.get("user"))?;
        let source = match obj.get("source") {
            None => None,
            Some(v) => Some(Source::from_wire(v).map_err(|m| wire_err("source", m))?),
        };
        let scene = match obj.get("scene") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Some(n),
                _ => return Err(wire_err("scene", "expected an integer >= 0")),
            },
        };
        let props = match obj.get("props") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(wire_err("props", "expected an object")),
        };
        let context = match obj.get("context") {
            None => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => return Err(wire_err("context", "expected an object")),
        };
        if event_type == EventType::MemberIdentified
            && (user.unionid.is_none() || (user.oa_openid.is_none() && user.mp_openid.is_none()))
        {
            return Err(wire_err(
                "user",
                "expected a unionid and at least one openid",
            ));
        }
        let event = Event {
            event_id,
            event_type,
            schema_version,
            occurred_at,
            received_at,
            user,
            source,
            scene,
            props,
            context,
            sealed: BTreeMap::new(),
        };
        event.body().map_err(|m| wire_err("props", m))?;
        Ok(event)
    }

    /// Takes the personal data out of `props`: what [`sealed`](Self::sealed) must hold
    /// instead, as (prop name, plaintext). Only `member.profile_updated` carries any.
    pub fn take_personal_data(&mut self) -> Vec<(&'static str, String)> {
        if self.event_type != EventType::MemberProfileUpdated {
            return Vec::new();
        }
        crate::props::PERSONAL_DATA_KEYS
            .iter()
            .filter_map(|k| match self.props.remove(*k)? {
                Value::String(s) => Some((*k, s)),
                // A validated event holds strings here; anything else is dropped, not kept.
                _ => None,
            })
            .collect()
    }

    /// The typed props.
    pub fn body(&self) -> Result<Body, String> {
        Body::parse(self.event_type, &self.props)
    }

    /// The resolved `from` (EVENTS.md, "Where a visit came from"). An `mp.visit` always has one
    /// (`direct` at the least); other events have one only when they carry `source` or `scene`.
    pub fn resolved_from(&self) -> Option<String> {
        crate::source::resolve_from(self.source.as_ref(), self.scene)
            .or_else(|| (self.event_type == EventType::MpVisit).then(|| "direct".to_owned()))
    }

    /// When the event happened, in UTC.
    pub fn occurred_utc(&self) -> DateTime<Utc> {
        self.occurred_at.with_timezone(&Utc)
    }
}

fn parse_user(v: Option<&Value>) -> Result<User, WireError> {
    let obj = match v {
        None => return Err(wire_err("user", "required")),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(wire_err("user", "expected an object")),
    };
    let mut user = User::default();
    for (k, v) in obj {
        let slot = match k.as_str() {
            "unionid" => &mut user.unionid,
            "oa_openid" => &mut user.oa_openid,
            "mp_openid" => &mut user.mp_openid,
            _ => return Err(wire_err(format!("user.{k}"), "unknown field")),
        };
        match v.as_str() {
            Some(s) if is_wechat_id(s) => *slot = Some(s.to_owned()),
            _ => {
                return Err(wire_err(
                    format!("user.{k}"),
                    "expected 1-128 characters of A-Z a-z 0-9 _ -",
                ))
            }
        }
    }
    if obj.is_empty() {
        return Err(wire_err(
            "user",
            "expected at least one of unionid, oa_openid, mp_openid",
        ));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(props: Value) -> Value {
        json!({"event_id": "6f1c1a9e-2f7a-4d38-9a43-1f1f5b7f4f10", "type": "member.profile_updated",
               "occurred_at": "2026-11-24T10:00:05+08:00", "user": {"mp_openid": "o_mp"},
               "props": props})
    }

    #[test]
    fn personal_data_leaves_props() {
        let wire = profile(json!({"phone": "13812345678", "address": "北京", "level": "gold"}));
        let mut e = Event::from_wire(&wire, Utc::now()).unwrap();
        assert!(e.sealed.is_empty());
        let taken = e.take_personal_data();
        assert_eq!(
            taken,
            vec![
                ("phone", "13812345678".to_owned()),
                ("address", "北京".to_owned())
            ]
        );
        assert_eq!(Value::Object(e.props.clone()), json!({"level": "gold"}));
        assert!(e.take_personal_data().is_empty());
        // Other types keep their props: a `phone` there is not the catalogue's personal data.
        let mut other = e.clone();
        other.event_type = EventType::OrderPaid;
        other.props.insert("phone".into(), json!("x"));
        assert!(other.take_personal_data().is_empty());
        assert!(other.props.contains_key("phone"));
    }

    #[test]
    fn sealed_values_cannot_come_from_a_sender() {
        let mut wire = profile(json!({}));
        wire["sealed"] = json!({"phone": "ld1:x"});
        let err = Event::from_wire(&wire, Utc::now()).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("sealed", "unknown field")
        );
    }

    #[test]
    fn sealed_round_trips_through_the_log_form() {
        let mut e = Event::from_wire(&profile(json!({"phone": "1"})), Utc::now()).unwrap();
        let plain = serde_json::to_value(&e).unwrap();
        assert!(plain.get("sealed").is_none(), "empty: not written");
        e.take_personal_data();
        e.sealed.insert("phone".into(), "ld1:…".into());
        let back: Event = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.user.data_key_identifier(), Some("o_mp"));
    }
}
