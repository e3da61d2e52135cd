//! The Sensors Data–compatible intake: what `sa-sdk-miniprogram` and the Sensors web SDK send,
//! mapped onto the catalogue and ingested through the same validation, identity binding,
//! sealing, dead-letter and durability path as `POST /v1/events`.
//!
//! The wire: `GET` or `POST` on `/sa` or `/sa.gif`; the parameters come from the query string
//! and, for a `POST`, from the body in form syntax (the SDKs send `text/plain` or
//! `application/x-www-form-urlencoded`): `data` (one record) or `data_list` (an array), each
//! base64 of the SDK's JSON, gzipped first when `gzip=1`; `project` (the Sensors project, kept
//! in `context.sensors.project`); `token`, the liandong API key (`ingest` or `client`: the SDK
//! cannot set headers, so the key sits in its `server_url`). Other parameters (`ext`, `crc`)
//! are ignored.
//!
//! | Sensors | liandong |
//! | --- | --- |
//! | `$MPLaunch` | `mp.visit` |
//! | `$MPShow` | `mp.visit`; the show that comes with a launch (same person, scene and page, within 10 s, same request) gets the launch's event id, so a cold start counts once |
//! | `$MPViewScreen` | `mp.page_view` |
//! | `$MPShare`, `$MPHide`, other `$` events, profiles | dead-letter stream, with the reason |
//! | a custom event named after a catalogue type (`mp.follow_prompt.click`, or `mp_follow_prompt_click` since Sensors names cannot hold dots) | that type, its own (non-`$`) properties as `props` |
//! | any other custom event | dead-letter stream, with the reason |
//! | `$scene: "wx-1001"` | `scene: 1001` |
//! | `$url_query` | `source` (the query string) |
//! | `$url_path` | `props.page` (`mp.visit`, `mp.page_view`) |
//! | `identities.$identity_mp_openid` (or `$identity_mp_<appid>_openid`) | `user.mp_openid` |
//! | `identities.$identity_mp_unionid` | `user.unionid` (refused from a `client` key) |
//! | `time` (ms) | `occurred_at` |
//! | `distinct_id`, `event`, `time`, `_track_id`, `type`, `project` | `event_id`: a UUID v5 of these, so the SDK's own resends count once |
//!
//! The SDKs drop their copy as soon as they get any HTTP answer, so this answers only once the
//! accepted records and the dead letters are durable (the `200` of `POST /v1/events`).

use std::collections::HashMap;
use std::io::Read;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use liandong_auth::authorize_url_key;
use liandong_event::EventType;
use serde_json::{json, Map, Value};
use tracing::{field, instrument, Span};
use uuid::Uuid;

use crate::batch::read_body;
use crate::error::IngestError;
use crate::handler::{IngestResponse, Submission, SENDERS};
use crate::{IngestState, MAX_BODY_BYTES, MAX_EVENTS, MAX_EVENT_BYTES};

/// The Sensors SDKs' default path.
pub const PATH: &str = "/sa";
/// The web SDK's image path.
pub const GIF_PATH: &str = "/sa.gif";

/// The namespace of the event ids derived from Sensors records (a UUID v5 of "liandong
/// sensors" in the URL namespace, fixed forever: changing it would change every id).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_4c0a_7f2d_5a31_9c4e_8d2f_1a3b_5c7d);

/// How close a `$MPShow` must follow its `$MPLaunch` to be the same landing.
const LAUNCH_SHOW_WINDOW_MS: i64 = 10_000;

/// The Sensors project when the request names none.
pub const DEFAULT_PROJECT: &str = "default";

/// The request's parameters: the body's first (form syntax), then the query string's; the
/// first occurrence of a name wins.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    pub data: Option<String>,
    pub data_list: Option<String>,
    pub gzip: Option<String>,
    pub project: Option<String>,
    pub token: Option<String>,
}

impl Params {
    pub fn parse(query: &str, body: &[u8]) -> Params {
        let mut p = Params::default();
        let pairs = form_urlencoded::parse(body).chain(form_urlencoded::parse(query.as_bytes()));
        for (k, v) in pairs {
            let slot = match k.as_ref() {
                "data" => &mut p.data,
                "data_list" => &mut p.data_list,
                "gzip" => &mut p.gzip,
                "project" => &mut p.project,
                "token" => &mut p.token,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        p
    }
}

fn bad(name: &'static str, message: impl Into<String>) -> IngestError {
    IngestError::BadParameter {
        name,
        message: message.into(),
    }
}

/// Base64 as the SDKs write it (standard alphabet, padded), and as sloppier senders do (no
/// padding, the URL-safe alphabet, a `+` that form decoding turned into a space, line breaks).
fn decode_base64(name: &'static str, text: &str) -> Result<Vec<u8>, IngestError> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let url_safe = cleaned.contains(['-', '_']);
    let engine = GeneralPurpose::new(
        if url_safe {
            &alphabet::URL_SAFE
        } else {
            &alphabet::STANDARD
        },
        config,
    );
    engine
        .decode(cleaned.trim())
        .map_err(|e| bad(name, format!("expected base64 of the SDK's JSON: {e}")))
}

/// Gunzips at most [`MAX_BODY_BYTES`]: a body that expands beyond that is refused (`413`)
/// after reading one byte more than the limit, whatever it claims or would expand to.
pub fn gunzip_bounded(name: &'static str, compressed: &[u8]) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(name, format!("gzip=1, but the data is not valid gzip: {e}")))?;
    if out.len() > MAX_BODY_BYTES {
        return Err(IngestError::DecompressedTooLarge { name });
    }
    Ok(out)
}

/// The records of a request: `data_list` (or `data`), base64, gunzipped when `gzip=1`, JSON
/// of one record or an array of them.
pub fn decode_records(params: &Params) -> Result<Vec<Value>, IngestError> {
    let (name, text) = match (&params.data_list, &params.data) {
        (Some(list), _) => ("data_list", list),
        (None, Some(one)) => ("data", one),
        (None, None) => return Err(bad(
            "data",
            "missing: expected a data or data_list parameter (base64 of the Sensors SDK's JSON)",
        )),
    };
    let gzipped = match params.gzip.as_deref().map(str::trim) {
        None | Some("") | Some("0") => false,
        Some("1") => true,
        Some(other) => {
            let shown: String = other.chars().take(20).collect();
            return Err(bad(
                "gzip",
                format!("expected 0 or 1 (the data is gzipped), got {shown:?}"),
            ));
        }
    };
    let bytes = decode_base64(name, text)?;
    let json = if gzipped {
        gunzip_bounded(name, &bytes)?
    } else {
        bytes
    };
    let value: Value = serde_json::from_slice(&json).map_err(|e| {
        bad(
            name,
            format!("expected base64 of JSON records, but it is not JSON: {e}"),
        )
    })?;
    let records = match value {
        Value::Array(records) => records,
        record @ Value::Object(_) => vec![record],
        _ => {
            return Err(bad(
                name,
                "expected a JSON record (an object) or an array of records",
            ))
        }
    };
    if records.is_empty() {
        return Err(bad(name, format!("no records: expected 1 to {MAX_EVENTS}")));
    }
    if records.len() > MAX_EVENTS {
        return Err(IngestError::TooManyEvents {
            count: records.len(),
        });
    }
    Ok(records)
}

/// `project`: the Sensors project name (letters, digits, `_`), [`DEFAULT_PROJECT`] when absent.
pub fn project_of(params: &Params) -> Result<String, IngestError> {
    match params.project.as_deref().map(str::trim) {
        None | Some("") => Ok(DEFAULT_PROJECT.to_owned()),
        Some(p) if p.len() <= 100 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Ok(p.to_owned())
        }
        Some(p) => {
            let shown: String = p.chars().take(40).collect();
            Err(bad(
                "project",
                format!("expected a Sensors project name (at most 100 letters, digits or _), got {shown:?}"),
            ))
        }
    }
}

/// Everything after authentication: the parameters of a request (its query string and body)
/// turned into what ingestion takes. Pure; the fuzz target's entry point.
pub fn decode(query: &str, body: &[u8]) -> Result<Vec<Submission>, IngestError> {
    let params = Params::parse(query, body);
    let project = project_of(&params)?;
    let records = decode_records(&params)?;
    Ok(map_records(&records, &project))
}

/// Maps a request's records, in order. A `$MPShow` right after its `$MPLaunch` gets the
/// launch's id (see the table above).
pub fn map_records(records: &[Value], project: &str) -> Vec<Submission> {
    // The last launch of each distinct_id: (scene, page, time, event id).
    let mut launches: HashMap<String, (Option<i64>, Option<String>, i64, String)> = HashMap::new();
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let mut item = map_record(index, record, project);
            if let Submission::Event(event) = &mut item {
                pair_launch_and_show(record, event, &mut launches);
            }
            item
        })
        .collect()
}

fn pair_launch_and_show(
    record: &Value,
    event: &mut Value,
    launches: &mut HashMap<String, (Option<i64>, Option<String>, i64, String)>,
) {
    let (Some(name), Some(distinct_id), Some(time)) = (
        record.get("event").and_then(Value::as_str),
        distinct_id_of(record),
        record.get("time").and_then(Value::as_i64),
    ) else {
        return;
    };
    let scene = event.get("scene").and_then(Value::as_i64);
    let page = event
        .pointer("/props/page")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match name {
        "$MPLaunch" => {
            let id = event["event_id"].as_str().unwrap_or_default().to_owned();
            launches.insert(distinct_id, (scene, page, time, id));
        }
        "$MPShow" => {
            if let Some((s, p, t, id)) = launches.remove(&distinct_id) {
                let after = time - t;
                if s == scene && p == page && (0..=LAUNCH_SHOW_WINDOW_MS).contains(&after) {
                    event["event_id"] = Value::String(id);
                }
            }
        }
        _ => {}
    }
}

fn distinct_id_of(record: &Value) -> Option<String> {
    match record.get("distinct_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The deterministic id of a record: the same record sent again (the SDK's resend after a
/// timeout) gets the same id; `_flush_time`, which the SDK sets anew on each send, is left out.
pub fn event_id_of(record: &Value, project: &str) -> Uuid {
    let part = |k: &str| record.get(k).cloned().unwrap_or(Value::Null);
    let name = json!([
        project,
        part("distinct_id"),
        part("type"),
        part("event"),
        part("time"),
        part("_track_id"),
    ]);
    Uuid::new_v5(&ID_NAMESPACE, name.to_string().as_bytes())
}

/// The catalogue type a custom event name stands for: the type itself, or the type with `_`
/// for `.` (Sensors event names are identifiers: no dots).
pub fn catalogue_type(name: &str) -> Option<EventType> {
    EventType::ALL
        .iter()
        .copied()
        .find(|t| t.as_str() == name || t.as_str().replace('.', "_") == name)
}

/// `wx-1001` (or 1001) → 1001; the SDK's "未取到值" (not obtained) → none.
fn scene_of(properties: &Map<String, Value>) -> Option<i64> {
    match properties.get("$scene")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.strip_prefix("wx-").unwrap_or(s).trim().parse().ok(),
        _ => None,
    }
}

fn text<'a>(properties: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    properties
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One record → one event of the catalogue, or the reason it has none.
pub fn map_record(index: usize, record: &Value, project: &str) -> Submission {
    let event_id = event_id_of(record, project).to_string();
    let name = record.get("event").and_then(Value::as_str);
    let unmappable = |reason: String| Submission::Unmappable {
        event_id: Some(event_id.clone()),
        key: distinct_id_of(record).unwrap_or_default(),
        reason: format!("sensors record {index}: {reason}"),
        original: record.clone(),
    };
    let Some(obj) = record.as_object() else {
        return unmappable("expected a JSON object".to_owned());
    };
    if let Ok(text) = serde_json::to_string(record) {
        if text.len() > MAX_EVENT_BYTES {
            return unmappable(format!(
                "too large: {} bytes, the limit is {MAX_EVENT_BYTES} bytes (32 KiB) per record",
                text.len()
            ));
        }
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("track") => {}
        Some(other) => {
            return unmappable(format!(
                "type {other:?}: only \"track\" records (events) have a counterpart in the catalogue; profiles and id bindings do not"
            ))
        }
        None => return unmappable("type: required (\"track\")".to_owned()),
    }
    let Some(name) = name else {
        return unmappable("event: required (the event's name)".to_owned());
    };
    let empty = Map::new();
    let properties = obj
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let event_type = match name {
        "$MPLaunch" | "$MPShow" => EventType::MpVisit,
        "$MPViewScreen" => EventType::MpPageView,
        "$MPShare" => {
            return unmappable(
                "$MPShare: the catalogue has no event for a share".to_owned(),
            )
        }
        "$MPHide" => {
            return unmappable(
                "$MPHide: the catalogue has no event for leaving the Mini Program".to_owned(),
            )
        }
        other => match catalogue_type(other) {
            Some(t) => t,
            None => {
                return unmappable(format!(
                    "event {other:?} is not a type of the catalogue (name a custom event after one, e.g. mp_follow_prompt_click)"
                ))
            }
        },
    };

    let Some(occurred_at) = obj
        .get("time")
        .and_then(Value::as_i64)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    else {
        return unmappable(format!(
            "time: expected milliseconds since the epoch, got {}",
            obj.get("time")
                .map_or("nothing".to_owned(), Value::to_string)
        ));
    };

    let mut user = Map::new();
    if let Some(ids) = obj.get("identities").and_then(Value::as_object) {
        for (k, v) in ids {
            let Some(v) = v.as_str() else { continue };
            if k == "$identity_mp_unionid" || k == "$mp_unionid" {
                user.insert("unionid".into(), v.into());
            } else if k == "$identity_mp_openid"
                || k == "$mp_openid"
                || (k.starts_with("$identity_mp_") && k.ends_with("_openid"))
            {
                user.insert("mp_openid".into(), v.into());
            }
        }
    }
    if user.is_empty() {
        return unmappable(
            "identities: no $identity_mp_openid nor $identity_mp_unionid: the app calls sensors.setOpenid (or bindOpenid) after wx.login, so that events name the user; an anonymous id ($identity_mp_id) is not a member".to_owned(),
        );
    }

    // The event's own properties; the SDK's presets ($…) are mapped below or dropped.
    let mut props: Map<String, Value> = properties
        .iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if matches!(event_type, EventType::MpVisit | EventType::MpPageView) {
        if let Some(page) = text(properties, "$url_path") {
            props.insert("page".into(), page.into());
        }
    }

    let mut sensors = Map::new();
    sensors.insert("project".into(), project.into());
    sensors.insert("event".into(), name.into());
    if let Some(d) = distinct_id_of(record) {
        sensors.insert("distinct_id".into(), d.into());
    }
    for (from, to) in [("$lib", "lib"), ("$lib_version", "lib_version")] {
        if let Some(v) = text(properties, from) {
            sensors.insert(to.into(), v.into());
        }
    }
    let mut context = Map::new();
    context.insert("sensors".into(), Value::Object(sensors));
    for (from, to) in [("$title", "title"), ("$app_version", "app_version")] {
        if let Some(v) = text(properties, from) {
            context.insert(to.into(), v.into());
        }
    }

    let mut event = Map::new();
    event.insert("event_id".into(), event_id.clone().into());
    event.insert("type".into(), event_type.as_str().into());
    event.insert(
        "occurred_at".into(),
        occurred_at
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .into(),
    );
    event.insert("user".into(), Value::Object(user));
    if let Some(scene) = scene_of(properties) {
        event.insert("scene".into(), scene.into());
    }
    if event_type == EventType::MpVisit {
        if let Some(query) = text(properties, "$url_query") {
            event.insert("source".into(), query.into());
        }
    }
    event.insert("props".into(), Value::Object(props));
    event.insert("context".into(), Value::Object(context));
    Submission::Event(Value::Object(event))
}

#[instrument(skip_all, fields(role = field::Empty, key_id = field::Empty, accepted = field::Empty, rejected = field::Empty))]
pub(crate) async fn handle_get(
    State(state): State<IngestState>,
    RawQuery(query): RawQuery,
) -> Response {
    respond(
        &state,
        intake(&state, query.unwrap_or_default(), Body::empty()).await,
    )
}

#[instrument(skip_all, fields(role = field::Empty, key_id = field::Empty, accepted = field::Empty, rejected = field::Empty))]
pub(crate) async fn handle_post(
    State(state): State<IngestState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    respond(
        &state,
        intake(&state, query.unwrap_or_default(), body).await,
    )
}

fn respond(state: &IngestState, result: Result<IngestResponse, IngestError>) -> Response {
    state.counters.record(&result);
    match result {
        Ok(answer) => {
            let span = Span::current();
            span.record("accepted", answer.accepted);
            span.record("rejected", answer.rejected.len());
            Json(answer).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn intake(
    state: &IngestState,
    query: String,
    body: Body,
) -> Result<IngestResponse, IngestError> {
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let caller = authorize_url_key(&state.keys, token.as_deref(), SENDERS)?;
    Span::current().record("role", caller.role.as_str());
    Span::current().record("key_id", caller.key_id.as_str());
    state.check_rate(&caller)?;
    let _slot = state.admit()?;
    let body = read_body(body).await?;
    let now = Utc::now();
    // Base64, gunzip and JSON of up to 2 MiB: CPU work, off the async workers.
    let items = tokio::task::spawn_blocking(move || decode(&query, &body))
        .await
        .map_err(|e| IngestError::Internal(format!("decoding task failed: {e}")))??;
    state.ingest_submissions(Some(&caller), items, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use std::io::Write;

    fn launch() -> Value {
        json!({
            "distinct_id": "o_sa_1", "type": "track", "event": "$MPLaunch", "time": 1_764_000_000_000_i64,
            "_track_id": 123_456_789, "_flush_time": 1_764_000_001_000_i64,
            "identities": {"$identity_mp_id": "f0e1", "$identity_mp_openid": "o_sa_1"},
            "lib": {"$lib": "MiniProgram"},
            "properties": {"$scene": "wx-1035", "$url_path": "pages/index/index",
                           "$url_query": "from=menu&type=home", "$lib": "MiniProgram",
                           "$lib_version": "1.22.7", "$is_first_time": true}
        })
    }

    fn encoded(v: &Value) -> String {
        STANDARD.encode(v.to_string())
    }

    #[test]
    fn a_launch_is_a_visit_with_scene_source_and_page() {
        let Submission::Event(e) = map_record(0, &launch(), "default") else {
            panic!("mapped")
        };
        assert_eq!(e["type"], "mp.visit");
        assert_eq!(e["scene"], 1035);
        assert_eq!(e["source"], "from=menu&type=home");
        assert_eq!(e["props"], json!({"page": "pages/index/index"}));
        assert_eq!(e["user"], json!({"mp_openid": "o_sa_1"}));
        assert_eq!(e["occurred_at"], "2025-11-24T16:00:00.000Z");
        assert_eq!(e["context"]["sensors"]["project"], "default");
    }

    #[test]
    fn ids_are_stable_across_resends_and_differ_between_records() {
        let a = launch();
        let mut resent = a.clone();
        resent["_flush_time"] = json!(1_764_000_009_000_i64);
        assert_eq!(event_id_of(&a, "p"), event_id_of(&resent, "p"));
        let mut other = a.clone();
        other["_track_id"] = json!(5);
        assert_ne!(event_id_of(&a, "p"), event_id_of(&other, "p"));
        assert_ne!(event_id_of(&a, "p"), event_id_of(&a, "q"));
    }

    #[test]
    fn the_show_of_a_cold_start_shares_the_launch_id() {
        let mut show = launch();
        show["event"] = json!("$MPShow");
        show["time"] = json!(1_764_000_000_002_i64);
        show["_track_id"] = json!(987);
        let mut later = show.clone();
        later["time"] = json!(1_764_000_900_000_i64);
        let items = map_records(&[launch(), show, later], "default");
        let id = |i: usize| match &items[i] {
            Submission::Event(e) => e["event_id"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(id(0), id(1));
        assert_ne!(id(0), id(2));
    }

    #[test]
    fn custom_events_keep_catalogue_names_and_the_rest_is_dead_lettered() {
        let mut r = launch();
        r["event"] = json!("mp_follow_prompt_click");
        r["properties"]["placement"] = json!("home");
        let Submission::Event(e) = map_record(0, &r, "default") else {
            panic!()
        };
        assert_eq!(e["type"], "mp.follow_prompt.click");
        assert_eq!(e["props"], json!({"placement": "home"}));
        assert!(e.get("source").is_none());
        for (name, reason) in [
            ("$MPHide", "leaving"),
            ("$MPShare", "share"),
            ("BuyButtonClick", "not a type of the catalogue"),
        ] {
            r["event"] = json!(name);
            match map_record(3, &r, "default") {
                Submission::Unmappable {
                    reason: got,
                    event_id,
                    ..
                } => {
                    assert!(got.starts_with("sensors record 3: "), "{got}");
                    assert!(got.contains(reason), "{got}");
                    assert!(event_id.is_some());
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut anonymous = launch();
        anonymous["identities"] = json!({"$identity_mp_id": "f0e1"});
        assert!(matches!(
            map_record(0, &anonymous, "default"),
            Submission::Unmappable { reason, .. } if reason.contains("setOpenid")
        ));
    }

    #[test]
    fn parameters_come_from_body_and_query() {
        let p = Params::parse(
            "project=shop&token=k&data=q",
            b"data_list=abc%2B&gzip=1&data=b",
        );
        assert_eq!(p.data_list.as_deref(), Some("abc+"));
        assert_eq!(p.data.as_deref(), Some("b"), "the body's wins");
        assert_eq!(p.project.as_deref(), Some("shop"));
        assert_eq!(p.gzip.as_deref(), Some("1"));
        assert_eq!(p.token.as_deref(), Some("k"));
    }

    #[test]
    fn plain_and_gzipped_data_decode() {
        let list = json!([launch(), launch()]);
        let plain = format!("data_list={}", encoded(&list).replace('+', "%2B"));
        assert_eq!(decode("", plain.as_bytes()).unwrap().len(), 2);
        // A `+` that arrived unescaped (form decoding makes it a space) still decodes.
        let sloppy = format!("data_list={}", encoded(&list));
        assert_eq!(decode("", sloppy.as_bytes()).unwrap().len(), 2);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(list.to_string().as_bytes()).unwrap();
        let gz = STANDARD.encode(gz.finish().unwrap());
        let q = format!("data={}&gzip=1", gz.replace('+', "%2B").replace('/', "%2F"));
        assert_eq!(decode(&q, b"").unwrap().len(), 2);
        let one = format!("data={}", encoded(&launch()).replace('+', "%2B"));
        assert_eq!(decode(&one, b"").unwrap().len(), 1);
    }

    #[test]
    fn bad_parameters_are_named() {
        let name = |q: &str| match decode(q, b"") {
            Err(IngestError::BadParameter { name, message }) => format!("{name}: {message}"),
            other => panic!("{q}: {other:?}"),
        };
        assert!(name("project=x").starts_with("data: missing"));
        assert!(name("data=!!!").starts_with("data: expected base64"));
        assert!(name("data=bm90IGpzb24").contains("not JSON"));
        assert!(name("data_list=W10").starts_with("data_list: no records"));
        assert!(name("data=e30&gzip=2").starts_with("gzip: expected 0 or 1"));
        assert!(name("data=e30&gzip=1").contains("not valid gzip"));
        assert!(name("data=e30&project=a-b").starts_with("project: expected"));
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_expanding_it() {
        // 64 MiB of zeros compress to about 64 KiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < MAX_BODY_BYTES / 4);
        let err = gunzip_bounded("data_list", &bomb).unwrap_err();
        assert!(matches!(
            err,
            IngestError::DecompressedTooLarge { name: "data_list" }
        ));
        assert_eq!(err.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
