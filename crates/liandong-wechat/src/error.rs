//! Every way the callback can refuse a request, and the one place (`IntoResponse`) that turns
//! each into a status and a JSON `{"error": …}` body. WeChat reads only the status: anything but
//! a `200` within 5 seconds makes it retry (three times), which is what a `503` wants and what
//! a `4xx` cannot help with.

use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_ingest::IngestError;

use crate::crypto::DecryptError;
use crate::MAX_BODY_BYTES;

/// Why a callback got no `200`. Pushes that map to no event are not errors: they are
/// acknowledged (and dead-lettered or ignored).
#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    #[error(
        "the WeChat callback is not configured on this server (LIANDONG_WECHAT_TOKEN is unset)"
    )]
    NotConfigured,
    #[error("query parameter {0} is required")]
    MissingParameter(&'static str),
    #[error("{0}: signature mismatch (check LIANDONG_WECHAT_TOKEN against the OA admin console)")]
    BadSignature(&'static str),
    #[error("encrypt_type: expected aes or raw, got {0:?}")]
    UnknownEncryptType(String),
    #[error("a safe-mode push (encrypt_type=aes) arrived, but LIANDONG_WECHAT_AES_KEY is not set")]
    SafeModeNotConfigured,
    #[error("could not read the request body: {0}")]
    BodyUnreadable(String),
    #[error(
        "request body too large: the limit is {} bytes (64 KiB)",
        MAX_BODY_BYTES
    )]
    BodyTooLarge,
    #[error("request body is not a WeChat push: {0}")]
    MalformedXml(String),
    #[error("malformed push: {0}")]
    MalformedPush(String),
    #[error("cannot decrypt Encrypt with the current or the previous EncodingAESKey: {0}")]
    Undecryptable(DecryptError),
    #[error("the push is for AppID {got:?}, this server is configured for {expected:?} (LIANDONG_WECHAT_APPID)")]
    WrongAppid { expected: String, got: String },
    /// Retryable: the log did not confirm the append in time; WeChat's retry is welcome.
    #[error("the event log did not confirm the push within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl WechatError {
    pub fn status(&self) -> StatusCode {
        match self {
            WechatError::NotConfigured => StatusCode::NOT_FOUND,
            WechatError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            WechatError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WechatError::MissingParameter(_)
            | WechatError::UnknownEncryptType(_)
            | WechatError::SafeModeNotConfigured
            | WechatError::BodyUnreadable(_)
            | WechatError::MalformedXml(_)
            | WechatError::MalformedPush(_)
            | WechatError::Undecryptable(_)
            | WechatError::WrongAppid { .. } => StatusCode::BAD_REQUEST,
            WechatError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            WechatError::Ingest(e) => e.status(),
        }
    }
}

impl IntoResponse for WechatError {
    fn into_response(self) -> Response {
        if let WechatError::Ingest(e) = self {
            // Ingestion owns its messages (server detail stays in its logs) and Retry-After.
            return e.into_response();
        }
        let status = self.status();
        match &self {
            WechatError::Timeout(_) => {
                tracing::warn!(error = %self, "push not confirmed, WeChat will retry")
            }
            // Our configuration, not the sender, is what is wrong: an operator must see it.
            WechatError::SafeModeNotConfigured => tracing::error!(error = %self, "push refused"),
            _ => tracing::info!(error = %self, status = status.as_u16(), "push refused"),
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(1u32));
        }
        response
    }
}
