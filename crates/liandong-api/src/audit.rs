//! The audit trail over HTTP: recording member-level actions from the handlers that perform
//! them, and `GET /v1/audit` for admins. A member is recorded as the keyed hash
//! `vault.keyed_hash(Purpose::Audit, member_key)`, never as the key itself; an admin looking for
//! one member's entries passes `member=<member_key>` and the server hashes it the same way.
//!
//! A member-level answer is only sent once its audit entry is stored: when the trail cannot be
//! written the request fails (503) rather than leaving a read unrecorded.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use liandong_auth::{authorize, Caller, Role};
use liandong_store::audit::{self, AuditEntry, AuditQuery, AuditRecord};
use liandong_vault::Purpose;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::{ApiError, ApiState, ErrorBody};

/// Entries per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most entries per page.
pub const MAX_LIMIT: u32 = 1000;

/// The keyed hash the trail records for `member_key`.
pub fn member_ref(state: &ApiState, member_key: &str) -> String {
    state.vault.keyed_hash(Purpose::Audit, member_key)
}

/// Records that `caller` did `action` (one of `liandong_store::audit::action`) through
/// `endpoint` (e.g. `GET /v1/members/{member_key}`, the route, not the URL: the URL holds the
/// member key), about `member_key` when given. Fails (503) when the entry cannot be stored.
pub async fn record(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    endpoint: &str,
    member_key: Option<&str>,
    detail: Option<String>,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        key_id: caller.key_id.clone(),
        role: caller.role.to_string(),
        action: action.to_owned(),
        endpoint: endpoint.to_owned(),
        member_ref: member_key.map(|k| member_ref(state, k)),
        detail,
    };
    audit::record(&state.store, &entry).await?;
    Ok(())
}

/// Which entries to list. Unknown parameters are refused (400).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries per page, 1 to 1000. Default: 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Only entries older than this id: the `next_before_id` of the previous page.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub before_id: Option<String>,
    /// Only this action: `member.read`, `member.erase`, `key.create` or `key.revoke`.
    pub action: Option<String>,
    /// Only actions of this key (its id, as `liandong keys list` and `/v1/whoami` show it).
    pub key_id: Option<String>,
    /// Only actions about this member key (hashed by the server, as the trail stores it).
    pub member: Option<String>,
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Larger is newer.
    pub id: i64,
    /// When it was recorded (UTC).
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// The acting key's id; `cli:<OS user>` for `liandong keys` on the command line.
    pub key_id: String,
    pub role: String,
    /// `member.read`, `member.erase`, `key.create` or `key.revoke`.
    pub action: String,
    /// The route or command, e.g. `GET /v1/members/{member_key}`.
    pub endpoint: String,
    /// Keyed hash of the member (64 hex digits); null when the action is about no member.
    #[schema(required = true)]
    pub member_ref: Option<String>,
    #[schema(required = true)]
    pub detail: Option<String>,
}

impl From<AuditRecord> for AuditEntryView {
    fn from(r: AuditRecord) -> AuditEntryView {
        AuditEntryView {
            id: r.id,
            at: r.at,
            key_id: r.key_id,
            role: r.role,
            action: r.action,
            endpoint: r.endpoint,
            member_ref: r.member_ref,
            detail: r.detail,
        }
    }
}

/// A page of the trail, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before_id` for the next (older) page; null on the last page.
    #[schema(required = true)]
    pub next_before_id: Option<i64>,
}

/// The answers other than 200 of `GET /v1/audit`, for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only read by the OpenAPI derive; the real errors are `ApiError`.
pub enum AuditRefusals {
    /// A malformed `limit` or `before_id`, or an unknown parameter; `parameter` names it.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No `Authorization: Bearer <key>` header, or an unknown or revoked key.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// A valid key whose role is not `admin`.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// The read store did not answer.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

fn number<T: std::str::FromStr + PartialOrd>(
    name: &'static str,
    value: Option<&str>,
    min: T,
    max: T,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(Some(n)),
        _ => Err(ApiError::BadParameter {
            name,
            reason: format!("expected {expected}, got {v:?}"),
        }),
    }
}

/// The audit trail, newest first, a page at a time (admin only).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditPage),
        AuditRefusals
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    authorize(&s.keys, &headers, &[Role::Admin])?;
    let Query(p) = params?;
    let limit = number(
        "limit",
        p.limit.as_deref(),
        1,
        MAX_LIMIT,
        "an integer from 1 to 1000",
    )?
    .unwrap_or(DEFAULT_LIMIT);
    let before_id = number(
        "before_id",
        p.before_id.as_deref(),
        1,
        i64::MAX,
        "a positive integer (the next_before_id of the previous page)",
    )?;
    let query = AuditQuery {
        limit,
        before_id,
        action: p.action,
        key_id: p.key_id,
        member_ref: p.member.as_deref().map(|m| member_ref(&s, m)),
    };
    let entries: Vec<AuditEntryView> = audit::list(&s.store, &query)
        .await?
        .into_iter()
        .map(AuditEntryView::from)
        .collect();
    let next_before_id = if entries.len() == limit as usize {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_before_id,
    }))
}
