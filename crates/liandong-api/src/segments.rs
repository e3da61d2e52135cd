//! Segments: analysts count members by interest, following, last activity and first `from`
//! (`GET /v1/segments/count`); admins export a segment's member keys, e.g. to feed a
//! template-message push (`GET /v1/segments/members`), each export one entry of the audit trail.
//! Neither answer holds personal data: a count, or member keys.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use liandong_auth::{authorize, Role};
use liandong_projections::segments::{self, Segment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{audit, ApiError, ApiState};

/// The most member keys one export returns.
pub const MAX_EXPORT: usize = 100_000;

/// The filters of a segment; each one optional.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SegmentQuery {
    /// Members with this interest (`member_interest.category`).
    pub interest: Option<String>,
    /// `true`: followers of the OA; `false`: members who do not follow it.
    pub following: Option<String>,
    /// Members with an event in the last N days (1 to 3650).
    pub active_within_days: Option<String>,
    /// Members whose first resolved `from` is this (`menu`, `article`, `direct`, …).
    pub first_from: Option<String>,
    /// Export only: at most this many keys (default and maximum 100000).
    pub limit: Option<String>,
}

fn bad(name: &'static str, reason: String) -> ApiError {
    ApiError::BadParameter { name, reason }
}

impl SegmentQuery {
    fn segment(&self) -> Result<Segment, ApiError> {
        let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let following = match self.following.as_deref() {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(bad(
                    "following",
                    format!("expected true or false, got {other:?}"),
                ))
            }
        };
        let active_since = match self.active_within_days.as_deref() {
            None | Some("") => None,
            Some(d) => match d.parse::<i64>() {
                Ok(n) if (1..=3650).contains(&n) => Some(Utc::now() - Duration::days(n)),
                _ => {
                    return Err(bad(
                        "active_within_days",
                        format!("expected a number of days from 1 to 3650, got {d:?}"),
                    ))
                }
            },
        };
        Ok(Segment {
            interest: text(&self.interest),
            following,
            active_since,
            first_from: text(&self.first_from),
        })
    }
}

/// A segment's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SegmentCount {
    pub members: i64,
}

/// A segment's member keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SegmentMembers {
    /// In key order; at most `limit`.
    pub member_keys: Vec<String>,
    /// How many members the segment has (may exceed the keys returned).
    pub members: i64,
}

/// How many members are in a segment (analyst, admin).
#[utoipa::path(
    get,
    path = "/v1/segments/count",
    tag = "segments",
    params(SegmentQuery),
    responses(
        (status = 200, description = "The segment's size", body = SegmentCount),
        (status = 400, description = "A filter that is not one of its values"),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not an analyst (or admin) key"),
    ),
    security(("bearer" = []))
)]
pub async fn count(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<SegmentQuery>,
) -> Result<Response, ApiError> {
    authorize(&s.keys, &headers, &[Role::Analyst])?;
    let segment = q.segment()?;
    let members = segments::count(&s.store, &segment).await?;
    Ok(Json(SegmentCount { members }).into_response())
}

/// A segment's member keys (admin; each export recorded in the audit trail).
#[utoipa::path(
    get,
    path = "/v1/segments/members",
    tag = "segments",
    params(SegmentQuery),
    responses(
        (status = 200, description = "The segment's member keys", body = SegmentMembers),
        (status = 400, description = "A filter that is not one of its values"),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not an admin key"),
    ),
    security(("bearer" = []))
)]
pub async fn members(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<SegmentQuery>,
) -> Result<Response, ApiError> {
    let caller = authorize(&s.keys, &headers, &[Role::Admin])?;
    let segment = q.segment()?;
    let limit = match q.limit.as_deref() {
        None | Some("") => MAX_EXPORT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_EXPORT).contains(&n) => n,
            _ => {
                return Err(bad(
                    "limit",
                    format!("expected a number from 1 to {MAX_EXPORT}, got {l:?}"),
                ))
            }
        },
    };
    let members = segments::count(&s.store, &segment).await?;
    let member_keys = segments::member_keys(&s.store, &segment, limit).await?;
    // The filters are not personal data; the keys are not recorded, only how many left.
    audit::record(
        &s,
        &caller,
        liandong_store::audit::action::SEGMENT_EXPORT,
        "GET /v1/segments/members",
        None,
        Some(format!(
            "{} member keys; interest={:?} following={:?} active_within_days={:?} first_from={:?}",
            member_keys.len(),
            segment.interest.as_deref().unwrap_or(""),
            q.following.as_deref().unwrap_or(""),
            q.active_within_days.as_deref().unwrap_or(""),
            segment.first_from.as_deref().unwrap_or(""),
        )),
    )
    .await?;
    Ok(Json(SegmentMembers {
        member_keys,
        members,
    })
    .into_response())
}
