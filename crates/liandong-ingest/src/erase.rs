//! Erasure, the command side (METRICS.md, "Erasure"): the one owner of every erasure, whether
//! an admin asks for it (`POST /v1/members/{member_key}/erase`) or a sender's batch carries a
//! `member.erased` (`POST /v1/events`). Both go through the same append path as any event —
//! validation, the steps below, sealing, the durable append — so there is one way an erasure
//! happens and one mapping of its failures to a status ([`IngestError`]).
//!
//! The steps, in this order, before the `member.erased` event is appended:
//!
//! 1. **Resolve** the member's identifiers from the read models
//!    (`liandong_projections::erasure::connected_ids`): its own, and every unionid and openid
//!    connected to them by a binding or a stored event. For the admin endpoint, a member no read
//!    model knows is `404`, unless the registry says it was erased already (erasing twice is
//!    fine); a sender's `member.erased` of a member no read model holds yet (its events still
//!    unprojected in the log) is erased under the event's own identifiers.
//! 2. **Audit**: the erasure is recorded before anything is changed, so none is ever done
//!    unrecorded.
//! 3. **Register** their keyed hashes in the erasure registry (`liandong_store::erasures`): from
//!    this instant no projection — live or rebuilding — adds anything about the member.
//! 4. **Destroy the data keys** of each identifier (crypto-shredding): every sealed personal
//!    value of the member, in the log, the read models or a dead letter, is unreadable from now
//!    on.
//! 5. **Forget the bindings** in the identity store (and this process's cache).
//! 6. **Append `member.erased`**; the projector removes the member's rows. The admin gets `202`
//!    with the event's id.
//!
//! If the process dies before step 6, the caller got no answer and retries; every step is
//! idempotent, and the retry still finds every identifier, because the read models are
//! untouched until the projector applies the appended event.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use liandong_auth::{authorize, Caller, Role};
use liandong_event::{Event, EventType, OpenidKind};
use liandong_identity::{IdentityError, IdentityService};
use liandong_projections::erasure::{self, MemberIds};
use liandong_store::audit::{self, action, AuditEntry};
use liandong_store::{ReadStore, StoreError};
use liandong_vault::{DataKeys, Purpose, Vault, VaultError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::IngestError;
use crate::handler::Submission;
use crate::IngestState;

/// The audit trail's `endpoint` of an erasure an admin asked for.
pub(crate) const ADMIN_ENDPOINT: &str = "POST /v1/members/{member_key}/erase";
/// The audit trail's `endpoint` of an erasure sent as an event.
pub(crate) const EVENT_ENDPOINT: &str = "POST /v1/events";
/// Who sent `member.erased` when no API key did (an in-process adapter), for the audit trail.
const IN_PROCESS: &str = "in-process";

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
        (status = 401, description = "No valid key: `{\"error\": …}`"),
        (status = 403, description = "Not an admin key: `{\"error\": …}`"),
        (status = 404, description = "No such member, and none erased under this key: `{\"error\": …}`"),
        (status = 503, description = "The read store, the log or the identity store is unavailable: retry (`Retry-After`)"),
    ),
    security(("bearer" = []))
)]
pub async fn post_erase(
    State(state): State<IngestState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
) -> Response {
    match erase(&state, &headers, &member_key).await {
        Ok(erasure) => (StatusCode::ACCEPTED, Json(erasure)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn erase(
    state: &IngestState,
    headers: &HeaderMap,
    member_key: &str,
) -> Result<Erasure, IngestError> {
    let caller = authorize(&state.keys, headers, &[Role::Admin])?;
    let seed = MemberIds::of_member_key(member_key);
    if state.eraser().resolve(seed.clone()).await?.is_none() {
        state
            .eraser()
            .audit(Some(&caller), ADMIN_ENDPOINT, member_key, "not found")
            .await?;
        return Err(IngestError::NoMember(member_key.to_owned()));
    }
    // The event names the member as the admin did; step 1 runs again on it inside the append
    // path and finds every connected identifier. One identifier: the event binds nothing.
    let now = Utc::now();
    let event_id = uuid::Uuid::new_v4().to_string();
    let user = match member_key.split_once(':') {
        Some(("oa", o)) => json!({ "oa_openid": o }),
        Some(("mp", m)) => json!({ "mp_openid": m }),
        _ => json!({ "unionid": member_key }),
    };
    let event: Value = json!({
        "event_id": event_id,
        "type": EventType::MemberErased.as_str(),
        "occurred_at": now.to_rfc3339_opts(SecondsFormat::Micros, true),
        "user": user,
    });
    let answer = state
        .ingest_submissions_at(
            Some(&caller),
            vec![Submission::Event(event)],
            now,
            ADMIN_ENDPOINT,
        )
        .await?;
    if let Some(r) = answer.rejected.first() {
        // A member key the registry or the read models know is a valid identifier: this is a
        // bug, not the caller's mistake.
        return Err(IngestError::Internal(format!(
            "member.erased of {member_key:?} was rejected: {}",
            r.error
        )));
    }
    Ok(Erasure { event_id })
}

/// Why a step of an erasure failed. Every step is idempotent: the whole erasure can be retried.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The read store (read models, registry, audit trail) did not answer.
    #[error("read store: {0}")]
    Store(#[from] StoreError),
    /// The data keys could not be destroyed.
    #[error("destroying data keys: {0}")]
    DataKeys(#[from] VaultError),
    /// The identity bindings could not be forgotten.
    #[error("forgetting identity bindings: {0}")]
    Identity(#[from] IdentityError),
}

/// The one mapping of an erasure's failures to what the caller is told.
impl From<EraseError> for IngestError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::Store(e) => e.into(),
            EraseError::DataKeys(e) if e.is_retryable() => {
                IngestError::DataKeysUnavailable(e.to_string())
            }
            EraseError::DataKeys(e) => IngestError::Internal(format!("erasing: {e}")),
            EraseError::Identity(e) => IngestError::IdentityUnavailable(e.to_string()),
        }
    }
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::ReadStoreUnavailable(e.to_string())
    }
}

/// The steps of an erasure, over the stores they change.
#[derive(Clone, Copy)]
pub(crate) struct Eraser<'a> {
    /// The read models (to resolve), the registry and the audit trail.
    pub store: &'a ReadStore,
    /// Makes the registry's and the audit trail's keyed hashes.
    pub vault: &'a Vault,
    pub data_keys: &'a DataKeys,
    pub identity: &'a IdentityService,
}

impl Eraser<'_> {
    /// Step 1, resolve: `seed` and every identifier the read models connect to it. `None` when
    /// no read model holds any of them and none is in the registry (a member erased already
    /// resolves to `seed`: erasing twice is fine).
    pub async fn resolve(&self, seed: MemberIds) -> Result<Option<MemberIds>, EraseError> {
        if seed.is_empty() {
            return Ok(None);
        }
        if let Some(ids) = erasure::connected_ids(self.store, seed.clone()).await? {
            return Ok(Some(ids));
        }
        let erased = erasure::erased_among(self.store, self.vault, &seed.member_keys()).await?;
        Ok((!erased.is_empty()).then_some(seed))
    }

    /// Step 2: the audit entry of an erasure of `member_key` (by its keyed hash only).
    async fn audit(
        &self,
        caller: Option<&Caller>,
        endpoint: &str,
        member_key: &str,
        detail: &str,
    ) -> Result<(), EraseError> {
        let entry = AuditEntry {
            key_id: caller.map_or(IN_PROCESS.to_owned(), |c| c.key_id.clone()),
            role: caller.map_or(Role::Ingest, |c| c.role).to_string(),
            action: action::MEMBER_ERASE.to_owned(),
            endpoint: endpoint.to_owned(),
            member_ref: Some(self.vault.keyed_hash(Purpose::Audit, member_key)),
            detail: Some(detail.to_owned()),
        };
        audit::record(self.store, &entry).await?;
        Ok(())
    }

    /// Steps 3 to 5, in this order: **register** `ids` (from this instant no projection, live
    /// or rebuilding, adds anything about them, and the identity store binds none of them
    /// again), **destroy their data keys**, **forget their identity bindings** (the store's and
    /// this process's cache). Idempotent.
    async fn erase(&self, ids: &MemberIds, at: DateTime<Utc>) -> Result<(), EraseError> {
        erasure::register(self.store, self.vault, ids, at).await?;
        let raw: Vec<&str> = ids
            .unionids
            .iter()
            .chain(&ids.oa_openids)
            .chain(&ids.mp_openids)
            .map(String::as_str)
            .collect();
        self.data_keys.destroy(&raw).await?;
        let openids: Vec<(OpenidKind, &str)> = ids
            .oa_openids
            .iter()
            .map(|o| (OpenidKind::Oa, o.as_str()))
            .chain(ids.mp_openids.iter().map(|m| (OpenidKind::Mp, m.as_str())))
            .collect();
        self.identity.forget(&openids).await?;
        Ok(())
    }
}

impl IngestState {
    pub(crate) fn eraser(&self) -> Eraser<'_> {
        Eraser {
            store: self.data_keys.store(),
            vault: self.data_keys.vault(),
            data_keys: &self.data_keys,
            identity: &self.identity,
        }
    }
}

/// Steps 1 to 5 for each accepted `member.erased` of a batch, before the batch is appended (the
/// event last): a failure refuses the batch (retryable) with nothing half-done that a retry
/// would not finish.
pub(crate) async fn erase_members(
    state: &IngestState,
    caller: Option<&Caller>,
    endpoint: &str,
    events: &[Event],
) -> Result<(), IngestError> {
    let eraser = state.eraser();
    for event in events
        .iter()
        .filter(|e| e.event_type == EventType::MemberErased)
    {
        let seed = MemberIds::of_user(&event.user);
        let ids = eraser.resolve(seed.clone()).await?.unwrap_or(seed);
        eraser
            .audit(
                caller,
                endpoint,
                &event.user.own_member_key(),
                &format!("event {}", event.event_id),
            )
            .await?;
        eraser.erase(&ids, event.received_at).await?;
    }
    Ok(())
}
