//! The query API: liveness and readiness for orchestrators, `/v1/status` (each projection's log
//! position and lag) for operators and scripts, and the read models for dashboards. It reads
//! through `liandong-projections`; it never writes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use liandong_auth::{authorize, ApiKeys, AuthError, Role};
use liandong_log::EventLog;
use liandong_projections::Projection;
use liandong_store::ReadStore;
use serde_json::json;
use tracing::warn;

/// What the query API reads.
#[derive(Clone)]
pub struct ApiState {
    pub store: ReadStore,
    pub log: Arc<dyn EventLog>,
    pub projections: Vec<Arc<dyn Projection>>,
    pub keys: Arc<ApiKeys>,
}

/// Every answer that is not a success, mapped to its status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("no member {0:?}")]
    NoMember(String),
    #[error("read store unavailable: {0}")]
    Store(#[from] liandong_store::StoreError),
    #[error("event log unavailable: {0}")]
    Projector(#[from] liandong_projector::ProjectorError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Auth(e) => return e.clone().into_response(),
            ApiError::NoMember(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) | ApiError::Projector(_) => {
                warn!(error = %self, "query failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

/// Health checks, status and member lookup.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/v1/status", get(status))
        .route("/v1/members/{member_key}", get(member))
        .with_state(state)
}

/// Ready when the read store answers and the log answers.
async fn ready(State(s): State<ApiState>) -> Response {
    let store_ok = match &s.store {
        ReadStore::Postgres(p) => liandong_store::sqlx::query("SELECT 1")
            .execute(p)
            .await
            .is_ok(),
        ReadStore::Sqlite(p) => liandong_store::sqlx::query("SELECT 1")
            .execute(p)
            .await
            .is_ok(),
    };
    let log_ok = s
        .log
        .end_offsets(liandong_log::Stream::Events)
        .await
        .is_ok();
    let status = if store_ok && log_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"read_store": store_ok, "event_log": log_ok})),
    )
        .into_response()
}

const ANY_ROLE: &[Role] = &[Role::Ingest, Role::Analyst, Role::Support, Role::Admin];

/// Each projection's position and lag behind the end of the log: a script waits for `lag`
/// 0 to know the read models hold everything accepted so far.
async fn status(State(s): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s.keys, &headers, ANY_ROLE)?;
    let projections: Vec<&dyn Projection> = s.projections.iter().map(|p| p.as_ref()).collect();
    let st = liandong_projector::status(&s.store, s.log.as_ref(), &projections).await?;
    let lag: i64 = st.iter().map(|p| p.lag).sum();
    Ok(Json(json!({"log": s.log.kind(), "lag": lag, "projections": st})).into_response())
}

/// One member's profile (support and admin).
async fn member(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s.keys, &headers, &[Role::Support])?;
    match liandong_projections::read::member_profile(&s.store, &member_key).await? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::NoMember(member_key)),
    }
}
