//! Where a visit came from (EVENTS.md, "Where a visit came from"): the sender's `source`, in
//! either of its wire forms, normalized to one object, and the resolution of `from`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The sender's `source`, normalized: `from`, `type` and `id` are interpreted, other keys kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every other key, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Source {
    /// Reads `"from=menu&type=home"` or `{"from": "article", "id": "123"}`.
    pub fn from_wire(v: &Value) -> Result<Source, String> {
        let mut src = Source::default();
        match v {
            Value::String(q) => {
                if q.chars().count() > 2048 {
                    return Err("expected a query string of at most 2048 characters".into());
                }
                for (k, v) in form_urlencoded::parse(q.trim_start_matches('?').as_bytes()) {
                    src.set(&k, Value::String(v.into_owned()));
                }
            }
            Value::Object(m) => {
                for (k, v) in m {
                    let ok = match k.as_str() {
                        "from" | "type" | "id" => v.is_string() || v.is_i64() || v.is_u64(),
                        _ => v.is_string() || v.is_number() || v.is_boolean(),
                    };
                    if !ok {
                        return Err(format!("{k}: expected a string or a number"));
                    }
                    src.set(k, v.clone());
                }
            }
            _ => return Err("expected a query string or an object".into()),
        }
        Ok(src)
    }

    fn set(&mut self, k: &str, v: Value) {
        let text = || match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match k {
            "from" => self.from = Some(text()),
            "type" => self.source_type = Some(text()),
            "id" => self.id = Some(text()),
            _ => {
                self.extra.insert(k.to_owned(), v);
            }
        }
    }
}

/// The `from` a scene value resolves to (EVENTS.md, rule 2).
pub fn from_scene(scene: i64) -> &'static str {
    match scene {
        1035 => "menu",
        1058 | 1067 | 1091 => "article",
        1043 => "template",
        1074 | 1082 => "oa_msg",
        1020 | 1102 => "oa_profile",
        1014 | 1107 => "subscribe_msg",
        1011 | 1012 | 1013 | 1047 | 1048 | 1049 => "qrcode",
        _ => "other",
    }
}

/// `source.from` (lower-cased), else the scene's `from`; `None` when there is neither (an
/// `mp.visit` then resolves to `direct`, see `Event::resolved_from`).
pub fn resolve_from(source: Option<&Source>, scene: Option<i64>) -> Option<String> {
    match source.and_then(|s| s.from.as_deref()) {
        Some(f) => Some(f.to_lowercase()),
        None => scene.map(|s| from_scene(s).to_owned()),
    }
}

/// An OA-guided visit (公众号导流) is an `mp.visit` whose resolved `from` is one of these.
pub fn is_oa_guided(from: &str) -> bool {
    matches!(
        from,
        "menu" | "article" | "template" | "oa_msg" | "oa_profile"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_string_and_object_forms_agree() {
        let a = Source::from_wire(&json!("from=article&id=123&utm=x")).unwrap();
        let b = Source::from_wire(&json!({"from": "article", "id": 123, "utm": "x"})).unwrap();
        assert_eq!(a.from.as_deref(), Some("article"));
        assert_eq!(a.id.as_deref(), Some("123"));
        assert_eq!(b.id.as_deref(), Some("123"));
        assert_eq!(a.extra.get("utm"), Some(&json!("x")));
    }

    #[test]
    fn from_resolution_follows_the_rules() {
        let menu = Source::from_wire(&json!("from=MENU&type=home")).unwrap();
        assert_eq!(
            resolve_from(Some(&menu), Some(1058)).as_deref(),
            Some("menu")
        );
        assert_eq!(resolve_from(None, Some(1058)).as_deref(), Some("article"));
        assert_eq!(
            resolve_from(None, Some(1107)).as_deref(),
            Some("subscribe_msg")
        );
        assert_eq!(resolve_from(None, Some(1001)).as_deref(), Some("other"));
        assert_eq!(resolve_from(None, None), None);
        assert!(is_oa_guided("oa_profile") && !is_oa_guided("qrcode"));
    }
}
