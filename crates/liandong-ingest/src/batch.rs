//! Reading a request into a batch: Content-Type, the 2 MiB body limit, the `{"sent_at"?,
//! "events": [...]}` shape, 1..=1000 events of at most 32 KiB each. Everything here refuses the
//! whole batch; per-event validation happens later, event by event.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use chrono::{DateTime, FixedOffset};
use futures::StreamExt;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

use crate::error::IngestError;
use crate::{MAX_BODY_BYTES, MAX_EVENTS, MAX_EVENT_BYTES};

/// How much of an oversized body is still read (and discarded) before answering 413: a client
/// that is still sending when the server closes may never see the answer (TCP reset), so a
/// modestly oversized body is drained; anything beyond this is cut off.
const DRAIN_LIMIT: usize = 4 * MAX_BODY_BYTES;

/// A well-formed batch: each event is still its sender's raw JSON text.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    pub sent_at: Option<DateTime<FixedOffset>>,
    pub events: Vec<&'a RawValue>,
}

/// `application/json`, with or without parameters (`; charset=utf-8`), in any letter case.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), IngestError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(IngestError::ContentType(
            "no Content-Type header".to_owned(),
        ));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(IngestError::ContentType(format!("{text:?}")))
    }
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] whatever `Content-Length` claims
/// (chunked bodies have none).
pub(crate) async fn read_body(body: Body) -> Result<Vec<u8>, IngestError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| IngestError::BodyUnreadable(e.to_string()))?;
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_BODY_BYTES {
            buf = Vec::new();
            if seen > DRAIN_LIMIT {
                return Err(IngestError::BodyTooLarge);
            }
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if seen > MAX_BODY_BYTES {
        return Err(IngestError::BodyTooLarge);
    }
    Ok(buf)
}

/// The JSON kind of a raw value, for messages ("got an array").
fn kind_of(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Checks the batch's shape and limits without parsing any event beyond its extent.
pub(crate) fn parse_batch(body: &[u8]) -> Result<Batch<'_>, IngestError> {
    let text =
        std::str::from_utf8(body).map_err(|e| IngestError::NotJson(format!("not UTF-8: {e}")))?;
    // Parsing as one raw value first tells "not JSON" (with serde's line and column) apart
    // from "JSON, but not a batch".
    let whole: &RawValue =
        serde_json::from_str(text).map_err(|e| IngestError::NotJson(e.to_string()))?;
    let expected = "expected an object {\"events\": [...]}";
    if kind_of(whole.get()) != "an object" {
        return Err(IngestError::NotABatch(format!(
            "{expected}, got {}",
            kind_of(whole.get())
        )));
    }
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_str(whole.get()).map_err(|e| IngestError::NotJson(e.to_string()))?;

    let events = fields
        .get("events")
        .ok_or_else(|| IngestError::NotABatch(format!("no events array: {expected}")))?;
    let events: Vec<&RawValue> = serde_json::from_str(events.get()).map_err(|_| {
        IngestError::NotABatch(format!(
            "events: expected an array of events, got {}",
            kind_of(events.get())
        ))
    })?;
    if events.is_empty() {
        return Err(IngestError::EmptyBatch);
    }
    if events.len() > MAX_EVENTS {
        return Err(IngestError::TooManyEvents {
            count: events.len(),
        });
    }
    if let Some((index, raw)) = events
        .iter()
        .enumerate()
        .find(|(_, raw)| raw.get().len() > MAX_EVENT_BYTES)
    {
        return Err(IngestError::EventTooLarge {
            index,
            size: raw.get().len(),
        });
    }

    let sent_at = match fields.get("sent_at") {
        None => None,
        Some(raw) => {
            let parsed = serde_json::from_str::<String>(raw.get())
                .ok()
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok());
            match parsed {
                Some(t) => Some(t),
                None => {
                    let shown: String = raw.get().chars().take(80).collect();
                    return Err(IngestError::BadSentAt(shown));
                }
            }
        }
    };
    Ok(Batch { sent_at, events })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ct(v: &str) -> Result<(), IngestError> {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(v).expect("header"));
        check_content_type(&h)
    }

    #[test]
    fn content_type_allows_parameters() {
        assert!(ct("application/json").is_ok());
        assert!(ct("Application/JSON; charset=utf-8").is_ok());
        assert!(ct("text/plain").is_err());
        assert!(ct("application/jsonl").is_err());
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn shapes_are_told_apart() {
        let err = |b: &str| parse_batch(b.as_bytes()).expect_err(b).to_string();
        assert!(err("{\"events\": [").starts_with("request body is not JSON: EOF while parsing"));
        assert_eq!(
            err("[1]"),
            "request body is not a batch: expected an object {\"events\": [...]}, got an array"
        );
        assert!(err("{\"event\": []}").contains("no events array"));
        assert!(
            err("{\"events\": {}}").contains("events: expected an array of events, got an object")
        );
        assert!(err("{\"events\": []}").starts_with("events is empty"));
        assert!(err("{\"events\": [{}], \"sent_at\": \"yesterday\"}")
            .starts_with("sent_at: expected an RFC 3339"));
        assert!(err("{\"events\": [{}], \"sent_at\": 5}").starts_with("sent_at: expected"));
    }

    #[tokio::test]
    async fn body_limit_holds_for_chunked_bodies_too() {
        let exact = vec![b' '; MAX_BODY_BYTES];
        assert_eq!(
            read_body(Body::from(exact))
                .await
                .expect("at the limit")
                .len(),
            MAX_BODY_BYTES
        );
        // No Content-Length: the limit is counted over the chunks as they come.
        let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(vec![b' '; MAX_BODY_BYTES / 2]));
        let err = read_body(Body::from_stream(futures::stream::iter(chunks))).await;
        assert!(matches!(err, Err(IngestError::BodyTooLarge)), "{err:?}");
        // Far beyond the limit, reading stops early instead of draining forever.
        let endless =
            futures::stream::repeat_with(|| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
        let err = read_body(Body::from_stream(endless)).await;
        assert!(matches!(err, Err(IngestError::BodyTooLarge)), "{err:?}");
    }

    #[test]
    fn events_keep_their_own_bytes() {
        let b =
            parse_batch(br#"{"sent_at": "2026-11-24T10:00:05+08:00", "events": [ {"a": 1} , 7]}"#)
                .expect("batch");
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events[0].get(), "{\"a\": 1}");
        assert!(b.sent_at.is_some());
    }
}
