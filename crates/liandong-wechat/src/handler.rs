//! The callback's two requests. `GET`: WeChat's URL check, answered with `echostr` when the
//! signature holds. `POST`: a push — signature (plaintext mode) or `msg_signature` plus
//! decryption (safe mode), then the XML, the mapping, and ingestion's own path into the log.
//!
//! Invariants: nothing is parsed past the query before the signature holds (safe mode has to
//! read the bounded body first, since `Encrypt` is part of what is signed); `success` is only
//! answered once the event or dead letter is durable in the log; a push that cannot be made
//! durable within [`WechatConfig::append_timeout`] gets a `503`, so WeChat's retry (same push,
//! same event id) tries again.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::StreamExt;
use liandong_ingest::Submission;
use tracing::{field, instrument, Span};

use crate::crypto::{signature_matches, DecryptError};
use crate::error::WechatError;
use crate::mapping::{self, Mapped};
use crate::xml;
use crate::{CallbackState, WechatConfig, MAX_BODY_BYTES};

/// How much of an oversized body is still read before answering 413, so the sender sees the
/// answer instead of a reset connection; beyond it the connection is cut.
const DRAIN_LIMIT: usize = 4 * MAX_BODY_BYTES;

/// The query string, decoded; the first occurrence of a name counts.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, WechatError> {
        self.get(name).ok_or(WechatError::MissingParameter(name))
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // `echostr` is the sender's text: never let a browser sniff it into HTML.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /v1/wechat/oa/callback?signature&timestamp&nonce&echostr`: the URL check WeChat runs
/// when the server address is saved in the OA admin console.
#[instrument(skip_all, fields(outcome = field::Empty))]
pub(crate) async fn verify_url(
    State(state): State<CallbackState>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = check_url(&state, Params::parse(query));
    match result {
        Ok(echostr) => {
            Span::current().record("outcome", "verified");
            text(StatusCode::OK, echostr)
        }
        Err(e) => {
            Span::current().record("outcome", "refused");
            e.into_response()
        }
    }
}

/// The URL check's verdict: `echostr` when the signature holds.
fn check_url(state: &CallbackState, params: Params) -> Result<String, WechatError> {
    let config = state.config.as_deref().ok_or(WechatError::NotConfigured)?;
    let signature = params
        .get("signature")
        .ok_or(WechatError::BadSignature("signature"))?;
    let timestamp = params.required("timestamp")?;
    let nonce = params.required("nonce")?;
    let echostr = params.required("echostr")?;
    if !signature_matches(signature, &[&config.token, timestamp, nonce]) {
        return Err(WechatError::BadSignature("signature"));
    }
    Ok(echostr.to_owned())
}

/// `POST /v1/wechat/oa/callback`: one push.
#[instrument(
    skip_all,
    fields(mode = field::Empty, event = field::Empty, event_id = field::Empty, outcome = field::Empty)
)]
pub(crate) async fn receive_push(
    State(state): State<CallbackState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    match receive(&state, Params::parse(query), body).await {
        Ok(outcome) => {
            Span::current().record("outcome", outcome);
            // WeChat's "handled, do not retry" answer (an empty body would do as well).
            text(StatusCode::OK, "success".to_owned())
        }
        Err(e) => {
            Span::current().record("outcome", "refused");
            e.into_response()
        }
    }
}

async fn receive(
    state: &CallbackState,
    params: Params,
    body: Body,
) -> Result<&'static str, WechatError> {
    let config = state.config.as_deref().ok_or(WechatError::NotConfigured)?;
    let timestamp = params.required("timestamp")?;
    let nonce = params.required("nonce")?;
    let span = Span::current();

    let push = match params.get("encrypt_type") {
        None | Some("raw") => {
            span.record("mode", "plaintext");
            let signature = params
                .get("signature")
                .ok_or(WechatError::BadSignature("signature"))?;
            if !signature_matches(signature, &[&config.token, timestamp, nonce]) {
                return Err(WechatError::BadSignature("signature"));
            }
            let body = read_body(body).await?;
            xml::parse(&body).map_err(|e| WechatError::MalformedXml(e.0))?
        }
        Some("aes") => {
            span.record("mode", "safe");
            if config.aes_keys.is_empty() {
                return Err(WechatError::SafeModeNotConfigured);
            }
            let msg_signature = params
                .get("msg_signature")
                .ok_or(WechatError::BadSignature("msg_signature"))?;
            let body = read_body(body).await?;
            let envelope = xml::parse(&body).map_err(|e| WechatError::MalformedXml(e.0))?;
            let encrypt = envelope.non_empty("Encrypt").ok_or_else(|| {
                WechatError::MalformedPush("Encrypt: required in a safe-mode push".to_owned())
            })?;
            if !signature_matches(msg_signature, &[&config.token, timestamp, nonce, encrypt]) {
                return Err(WechatError::BadSignature("msg_signature"));
            }
            let plaintext = open(config, encrypt)?;
            xml::parse(&plaintext)
                .map_err(|e| WechatError::MalformedXml(format!("decrypted message: {}", e.0)))?
        }
        Some(other) => return Err(WechatError::UnknownEncryptType(other.to_owned())),
    };

    let now = Utc::now();
    let event_id = mapping::event_id(&push);
    span.record("event_id", field::display(event_id));
    span.record(
        "event",
        push.get("Event")
            .or(push.get("MsgType"))
            .unwrap_or_default(),
    );
    let item =
        match mapping::map(&push, &config.menu).map_err(|e| WechatError::MalformedPush(e.0))? {
            Mapped::Event(event) => Submission::Event(event),
            Mapped::Ignored(why) => {
                tracing::debug!(reason = why, "push acknowledged, nothing to log");
                return Ok("ignored");
            }
            Mapped::Unmappable(reason) => Submission::Unmappable {
                event_id: Some(event_id.to_string()),
                key: push
                    .non_empty("FromUserName")
                    .unwrap_or_default()
                    .to_owned(),
                reason: format!("WeChat push: {reason}"),
                original: serde_json::json!({ "wechat_push": push.to_json() }),
            },
        };
    // The append may outlive the answer (a cancelled append can still land): harmless, the
    // retry that the 503 invites carries the same event id.
    let answer = tokio::time::timeout(
        config.append_timeout,
        state.ingest.ingest_values(vec![item], now),
    )
    .await
    .map_err(|_| WechatError::Timeout(config.append_timeout))??;
    if let Some(rejected) = answer.rejected.first() {
        // Durable in the dead-letter stream; a retry would be rejected the same way.
        tracing::warn!(error = %rejected.error, "push dead-lettered");
        return Ok("dead-lettered");
    }
    Ok("logged")
}

/// Decrypts with the current key, then the previous one (a key rotation in progress). A key
/// that opens the text for another AppID is reported as such: the push is not for us.
fn open(config: &WechatConfig, encrypt: &str) -> Result<Vec<u8>, WechatError> {
    let expected = config.appid.as_deref().unwrap_or_default();
    let mut first_error: Option<DecryptError> = None;
    let mut other_appid: Option<String> = None;
    for key in &config.aes_keys {
        match key.decrypt(encrypt) {
            Ok(opened) if opened.appid == expected => return Ok(opened.message),
            Ok(opened) => {
                other_appid.get_or_insert_with(|| opened.appid.chars().take(64).collect());
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match other_appid {
        Some(got) => Err(WechatError::WrongAppid {
            expected: expected.to_owned(),
            got,
        }),
        None => Err(WechatError::Undecryptable(
            first_error.unwrap_or(DecryptError::BadPadding),
        )),
    }
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] whatever `Content-Length` claims.
async fn read_body(body: Body) -> Result<Vec<u8>, WechatError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| WechatError::BodyUnreadable(e.to_string()))?;
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_BODY_BYTES {
            buf = Vec::new();
            if seen > DRAIN_LIMIT {
                return Err(WechatError::BodyTooLarge);
            }
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if seen > MAX_BODY_BYTES {
        return Err(WechatError::BodyTooLarge);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_cap_holds_for_chunked_bodies() {
        let exact = vec![b' '; MAX_BODY_BYTES];
        let read = read_body(Body::from(exact)).await.map(|b| b.len());
        assert!(matches!(read, Ok(MAX_BODY_BYTES)), "{read:?}");
        // No Content-Length: counted over the chunks as they come.
        let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(vec![b' '; MAX_BODY_BYTES / 2]));
        let read = read_body(Body::from_stream(futures::stream::iter(chunks))).await;
        assert!(matches!(read, Err(WechatError::BodyTooLarge)), "{read:?}");
        // Endless: reading stops at the drain limit instead of going on forever.
        let endless = futures::stream::repeat_with(|| Ok::<_, std::io::Error>(vec![b' '; 8192]));
        let read = read_body(Body::from_stream(endless)).await;
        assert!(matches!(read, Err(WechatError::BodyTooLarge)), "{read:?}");
    }
}
