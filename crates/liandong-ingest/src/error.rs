//! Every way a batch can be refused as a whole, and the single place (`IntoResponse`) that
//! turns each into a status code, a JSON `{"error": …}` body and, for 503, `Retry-After`.
//! Server-side failures are logged here with their detail; clients get a plain message.

use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_auth::AuthError;

use crate::{MAX_BODY_BYTES, MAX_EVENTS, MAX_EVENT_BYTES};

/// How long a client should wait when the identity store (or the data key store or the read
/// store, in the same database) is down: none reports a hint of its own.
pub(crate) const IDENTITY_RETRY_AFTER: Duration = Duration::from_secs(2);

/// How long a client should wait when every in-flight slot is taken: batches take tens of
/// milliseconds, so a slot is soon free again.
pub(crate) const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a request got no `200`. Events rejected individually are not errors: they are part of
/// the `200` answer and of the dead-letter stream.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("Content-Type must be application/json, got {0}")]
    ContentType(String),
    #[error("could not read the request body: {0}")]
    BodyUnreadable(String),
    #[error(
        "request body too large: the limit is {} bytes (2 MiB)",
        MAX_BODY_BYTES
    )]
    BodyTooLarge,
    #[error("request body is not JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not `{"events": [...]}`.
    #[error("request body is not a batch: {0}")]
    NotABatch(String),
    #[error("events is empty: expected 1 to {} events", MAX_EVENTS)]
    EmptyBatch,
    #[error(
        "too many events: {count}, the limit is {} events per batch",
        MAX_EVENTS
    )]
    TooManyEvents { count: usize },
    #[error(
        "event {index} is too large: {size} bytes, the limit is {} bytes (32 KiB) per event",
        MAX_EVENT_BYTES
    )]
    EventTooLarge { index: usize, size: usize },
    #[error("sent_at: expected an RFC 3339 date-time, e.g. 2026-11-24T10:00:05+08:00, got {0}")]
    BadSentAt(String),
    /// A request parameter of the Sensors intake that is missing or malformed.
    #[error("{name}: {message}")]
    BadParameter { name: &'static str, message: String },
    /// Compressed data that expands beyond the body limit (a gzip bomb, or just too much):
    /// refused without ever holding more than the limit.
    #[error(
        "{name}: the decompressed data is larger than the limit of {} bytes (2 MiB)",
        MAX_BODY_BYTES
    )]
    DecompressedTooLarge { name: &'static str },
    /// The key spent its request budget: `429` with `Retry-After`.
    #[error("too many requests for this key: the limit is {per_second} requests per second; retry later")]
    RateLimited {
        per_second: u32,
        retry_after: Duration,
    },
    /// Retryable: the batch's bindings could not be checked, so no event of it is accepted.
    #[error("identity store unavailable: {0}")]
    IdentityUnavailable(String),
    /// Retryable: the batch's personal data could not be sealed (the data keys live in the
    /// read store).
    #[error("data key store unavailable: {0}")]
    DataKeysUnavailable(String),
    /// Retryable: the read store (the erasure registry, the audit trail, the read models an
    /// erasure resolves the member from) did not answer.
    #[error("read store unavailable: {0}")]
    ReadStoreUnavailable(String),
    /// Retryable: the log did not take (all of) the batch.
    #[error("event log unavailable: {reason}")]
    LogUnavailable {
        reason: String,
        retry_after: Duration,
    },
    /// An erasure of a member no read model holds and the registry does not know.
    #[error("no member {0:?}: no read model holds it and none was erased under this key (a unionid, oa:<openid> or mp:<openid>)")]
    NoMember(String),
    /// Retryable: as many batches as the process holds at once ([`crate::MaxInFlight`]) are
    /// already in flight; this one was refused before its body was read.
    #[error("ingestion is busy: {max} batches are already in flight; no event of this batch was accepted, retry the whole batch later")]
    Overloaded { max: usize },
    /// Not retryable by waiting: a bug or a misconfiguration, for an operator to look at.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Auth(e) => e.status(),
            IngestError::ContentType(_)
            | IngestError::BodyUnreadable(_)
            | IngestError::NotJson(_)
            | IngestError::NotABatch(_)
            | IngestError::EmptyBatch
            | IngestError::BadSentAt(_)
            | IngestError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            IngestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::BodyTooLarge
            | IngestError::DecompressedTooLarge { .. }
            | IngestError::TooManyEvents { .. }
            | IngestError::EventTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::IdentityUnavailable(_)
            | IngestError::DataKeysUnavailable(_)
            | IngestError::ReadStoreUnavailable(_)
            | IngestError::LogUnavailable { .. }
            | IngestError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::NoMember(_) => StatusCode::NOT_FOUND,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whole seconds for `Retry-After` on a 503 or 429: rounded up and at least 1, since `0` would
    /// invite an immediate retry storm against a log that just said no.
    pub fn retry_after_secs(&self) -> Option<u64> {
        let wait = match self {
            IngestError::IdentityUnavailable(_)
            | IngestError::DataKeysUnavailable(_)
            | IngestError::ReadStoreUnavailable(_) => IDENTITY_RETRY_AFTER,
            IngestError::Overloaded { .. } => OVERLOADED_RETRY_AFTER,
            IngestError::LogUnavailable { retry_after, .. }
            | IngestError::RateLimited { retry_after, .. } => *retry_after,
            _ => return None,
        };
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Some(secs.max(1))
    }

    /// What the client reads. Server-side details (broker names, SQL errors) stay in our logs.
    fn public_message(&self) -> String {
        match self {
            IngestError::IdentityUnavailable(_) => {
                "identity store unavailable; no event of this batch was accepted, retry the whole batch later".to_owned()
            }
            IngestError::DataKeysUnavailable(_) => {
                "data key store unavailable; no event of this batch was accepted, retry the whole batch later".to_owned()
            }
            IngestError::ReadStoreUnavailable(_) => {
                "read store unavailable; no event of this batch was accepted, retry the whole batch later".to_owned()
            }
            IngestError::LogUnavailable { .. } => {
                "event log unavailable; no event of this batch was accepted, retry the whole batch later".to_owned()
            }
            IngestError::Internal(_) => {
                "internal error; no event of this batch was accepted".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        if let IngestError::Auth(e) = self {
            // The auth crate owns the 401 challenge header; its response is the contract.
            return e.into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %self, "batch refused, retryable");
            } else {
                tracing::error!(error = %self, "batch failed");
            }
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.public_message() })),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
