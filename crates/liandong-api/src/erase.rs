//! `POST /v1/members/{member_key}/erase` (admin): erasure (METRICS.md, "Erasure"; issue 6).
//!
//! The steps, in this order (1 to 4 are [`Eraser`]'s, which ingestion runs too for a sender's
//! `member.erased`):
//!
//! 1. **Resolve** the member's identifiers from the read models: its own, and every unionid and
//!    openid connected to them by a binding or a stored event. A member no read model knows is
//!    `404`, unless the registry says it was erased already (then the steps run again: erasing
//!    twice is fine).
//! 2. **Register** their keyed hashes in the erasure registry: from this instant no projection —
//!    live or rebuilding — adds anything about the member.
//! 3. **Destroy the data keys** of each identifier (crypto-shredding): every sealed personal
//!    value of the member, in the log, the read models or a dead letter, is unreadable from now
//!    on.
//! 4. **Forget the bindings** in the identity store (and this process's cache).
//! 5. **Append `member.erased`** to the log; the projector removes the member's rows.
//! 6. Answer `202` with the event's id.
//!
//! The audit entry is written after step 1, before anything is changed, so no erasure is ever
//! done unrecorded. If the process dies before step 5, the caller got no `202` and retries;
//! every step is idempotent, and the retry still finds every identifier, because the read models
//! are untouched until the projector applies step 5's event. Once step 5 is durable the
//! projector finishes the removal on its own. What has been done is never readable again in
//! between: the registry keeps the member out of every projection from step 2 on, and its
//! personal data is unreadable from step 3 on.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use liandong_auth::{authorize, Role};
use liandong_event::{Event, EventType, User};
use liandong_log::{Record, Stream};
use liandong_projections::erasure::{EraseError, Eraser, MemberIds};
use liandong_store::audit::action;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{audit, ApiError, ApiState, ErrorBody};

/// The answer of an accepted erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Erasure {
    /// The id of the `member.erased` event appended to the log; `/v1/status` shows when the
    /// projections have applied it (`lag` 0).
    pub event_id: String,
}

/// Erases a member.
#[utoipa::path(
    post,
    path = "/v1/members/{member_key}/erase",
    tag = "members",
    params(("member_key" = String, Path, description = "The member: a unionid, `oa:<openid>` or `mp:<openid>`")),
    responses(
        (status = 202, description = "Erased: personal data unreadable, identity bindings forgotten, `member.erased` in the log", body = Erasure),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such member, and none erased under this key", body = ErrorBody),
        (status = 503, description = "The read store, the log or the identity store is unavailable: retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn erase(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authorize(&s.keys, &headers, &[Role::Admin])?;
    const ENDPOINT: &str = "POST /v1/members/{member_key}/erase";

    let eraser = Eraser {
        store: &s.store,
        vault: &s.vault,
        data_keys: &s.data_keys,
        identity: &s.identity,
    };

    // 1. Resolve.
    let ids = eraser
        .resolve(MemberIds::of_member_key(&member_key))
        .await?;
    let event_id = uuid::Uuid::new_v4();
    let detail = match &ids {
        Some(_) => format!("event {event_id}"),
        None => "not found".to_owned(),
    };
    audit::record(
        &s,
        &caller,
        action::MEMBER_ERASE,
        ENDPOINT,
        Some(&member_key),
        Some(detail),
    )
    .await?;
    let Some(ids) = ids else {
        return Err(ApiError::NoMember(member_key));
    };

    // 2. Register, 3. crypto-shred, 4. forget the bindings.
    let now = Utc::now();
    eraser.erase(&ids, now).await.map_err(|e| match e {
        EraseError::Store(e) => ApiError::from(e),
        e => ApiError::Unavailable(e.to_string()),
    })?;

    // 5. The event.
    let user = User {
        unionid: ids.unionids.first().cloned(),
        oa_openid: ids.oa_openids.first().cloned(),
        mp_openid: ids.mp_openids.first().cloned(),
    };
    let key = user
        .unionid
        .clone()
        .or_else(|| user.oa_openid.clone())
        .or_else(|| user.mp_openid.clone())
        .unwrap_or_default();
    let event = Event {
        event_id,
        event_type: EventType::MemberErased,
        schema_version: 1,
        occurred_at: now.fixed_offset(),
        received_at: now,
        user,
        source: None,
        scene: None,
        props: Default::default(),
        context: None,
        sealed: Default::default(),
    };
    let payload = serde_json::to_vec(&event)
        .map_err(|e| ApiError::Unavailable(format!("serializing member.erased: {e}")))?;
    s.log
        .append(
            Stream::Events,
            vec![Record {
                key,
                event_id: event_id.to_string(),
                payload,
            }],
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;

    Ok((
        StatusCode::ACCEPTED,
        Json(Erasure {
            event_id: event_id.to_string(),
        }),
    )
        .into_response())
}
