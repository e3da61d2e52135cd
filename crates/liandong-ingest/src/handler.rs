//! The `POST /v1/events` flow: auth, an in-flight slot, batch shape, per-event validation,
//! identity binding of the whole batch at once (in batch order), the command side of each
//! `member.erased`, sealing of personal data, then both appends (events and dead letters) at
//! once. Invariant: a 200 is only sent once both appends are durable; any failure before that
//! makes the whole batch not accepted.
//! In-process adapters ([`IngestState::ingest_values`]) join the same flow after the HTTP part.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use liandong_auth::{authorize, authorize_url_key, Caller, Role, CLIENT_EVENT_TYPES};
use liandong_event::{Event, OpenidKind, Schemas};
use liandong_identity::{Binding, IdentityError, IdentityService};
use liandong_log::{LogError, Record, Stream};
use liandong_projections::erasure::{self, MemberIds};
use liandong_vault::DataKeys;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{field, instrument, Span};

use crate::batch::{check_content_type, parse_batch, read_body};
use crate::dead_letter::RejectReason;
use crate::error::IngestError;
use crate::IngestState;
use crate::{dead_letter, erase};

/// The `200` answer (EVENTS.md, Endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestResponse {
    pub accepted: usize,
    /// Sorted by index.
    pub rejected: Vec<RejectedEvent>,
}

/// One event of the batch that was not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEvent {
    pub index: usize,
    /// The sender's `event_id` when it was a string, valid or not.
    pub event_id: Option<String>,
    pub error: String,
    /// `403` when the event was refused because of the key that sent it (a `client` key sending
    /// a server-only type or a `unionid`), not because of what it says; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// A rejected event on its way to the response and the dead-letter stream.
struct Rejection {
    index: usize,
    event_id: Option<String>,
    /// For the sender: the full message.
    error: String,
    /// For the dead-letter stream: the message without personal data.
    dead_letter_error: String,
    /// The event as sent, already redacted.
    event: Value,
    key: String,
    /// See [`RejectedEvent::status`].
    status: Option<u16>,
    reason: RejectReason,
}

/// What the key that sent a batch may put in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Any event of the catalogue (`ingest`, `admin`, in-process adapters).
    Full,
    /// Only [`CLIENT_EVENT_TYPES`], never a `unionid` (a `client` key, which is public).
    Client,
}

impl Scope {
    pub(crate) fn of(caller: Option<&Caller>) -> Scope {
        match caller {
            Some(c) if c.role == Role::Client => Scope::Client,
            _ => Scope::Full,
        }
    }

    /// Why a client key may not send `value`, if it may not. Checked before validation, so a
    /// refused event never binds an identity nor erases anyone, however well-formed it is.
    fn refusal(self, value: &Value) -> Option<String> {
        if self == Scope::Full {
            return None;
        }
        let event_type = value.get("type").and_then(Value::as_str);
        match event_type {
            Some(t) if CLIENT_EVENT_TYPES.contains(&t) => {}
            Some(t) => {
                return Some(format!(
                    "type: a client key may not send {t:?}: only {} (server-side events need an ingest key, kept on the server)",
                    CLIENT_EVENT_TYPES.join(", ")
                ))
            }
            // Not a type at all: the schema's message says what is wrong.
            None => return None,
        }
        if value.get("user").and_then(|u| u.get("unionid")).is_some() {
            return Some(
                "user.unionid: a client key may not send a unionid: an identity binding must come from the merchant's server (with an ingest key), which learned it from WeChat"
                    .to_owned(),
            );
        }
        None
    }
}

/// A valid event; `sent` is the sender's JSON, kept only while an identity conflict could
/// still turn it into a dead letter.
struct Valid {
    index: usize,
    event: Event,
    sent: Option<Value>,
}

struct Validated {
    valid: Vec<Valid>,
    rejected: Vec<Rejection>,
}

#[instrument(
    skip_all,
    fields(role = field::Empty, key_id = field::Empty, events = field::Empty, accepted = field::Empty, rejected = field::Empty)
)]
pub(crate) async fn post_events(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = ingest(&state, &headers, body).await;
    state.counters.record(&result);
    match result {
        Ok(answer) => {
            let span = Span::current();
            span.record("accepted", answer.accepted);
            span.record("rejected", answer.rejected.len());
            tracing::debug!("batch stored");
            Json(answer).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Who may send events: `client` keys too, within their [`Scope`].
pub(crate) const SENDERS: &[Role] = &[Role::Ingest, Role::Client];

async fn ingest(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
) -> Result<IngestResponse, IngestError> {
    let caller = authorize(&state.keys, headers, SENDERS)?;
    check_content_type(headers)?;
    ingest_batch(state, caller, body).await
}

/// `POST /v1/beacon?token=<key>`: the batch of `POST /v1/events` from a page that can only
/// beacon (`navigator.sendBeacon` sets no header, and a cross-origin `text/plain` body needs no
/// CORS preflight): the key in the URL, the JSON body as `text/plain` or `application/json`.
#[instrument(
    skip_all,
    fields(role = field::Empty, key_id = field::Empty, events = field::Empty, accepted = field::Empty, rejected = field::Empty)
)]
pub(crate) async fn post_beacon(
    State(state): State<IngestState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = beacon(&state, query.as_deref().unwrap_or(""), &headers, body).await;
    state.counters.record(&result);
    match result {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn beacon(
    state: &IngestState,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<IngestResponse, IngestError> {
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let caller = authorize_url_key(&state.keys, token.as_deref(), SENDERS)?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").to_owned());
    if let Some(text) = content_type {
        let essence = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "text/plain" && essence != "application/json" {
            return Err(IngestError::ContentType(format!(
                "{text:?} (a beacon is text/plain or application/json)"
            )));
        }
    }
    ingest_batch(state, caller, body).await
}

/// A batch in the wire form of `POST /v1/events` from an authenticated key.
async fn ingest_batch(
    state: &IngestState,
    caller: Caller,
    body: Body,
) -> Result<IngestResponse, IngestError> {
    Span::current().record("role", caller.role.as_str());
    Span::current().record("key_id", caller.key_id.as_str());
    state.check_rate(&caller)?;
    // Held until the answer: the batch's memory is only taken within the bound.
    let _slot = state.admit()?;
    let body = read_body(body).await?;

    // One clock reading per batch: every event of it was received at the same moment.
    let now = Utc::now();
    let schemas = state.schemas.clone();
    let scope = Scope::of(Some(&caller));
    // Parsing and schema validation of up to 2 MiB is CPU work; keep it off the async workers.
    let validated = {
        let span = Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| validate_batch(&schemas, &body, now, scope))
        })
    }
    .await
    .map_err(|e| IngestError::Internal(format!("validation task failed: {e}")))??;
    store(
        state,
        Some(&caller),
        validated,
        now,
        erase::EVENT_ENDPOINT,
        DeadLetters::Write,
    )
    .await
}

/// One item an in-process adapter (the WeChat callback, say) hands to ingestion instead of
/// an HTTP batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Submission {
    /// An event in its wire form (EVENTS.md, the envelope), validated, bound and appended
    /// exactly as an event of a `POST /v1/events` batch.
    Event(Value),
    /// Something the adapter received but cannot express as an event of the catalogue: it is
    /// written to the dead-letter stream with `reason`, so an operator can inspect and replay
    /// it, and reported as rejected.
    Unmappable {
        /// The id the event would have had, when the adapter can derive one.
        event_id: Option<String>,
        /// The dead-letter record's key (the person's id when known, so their rejects stay in
        /// order), or empty.
        key: String,
        reason: String,
        /// What was received, in a JSON form of the adapter's choosing.
        original: Value,
    },
}

impl IngestState {
    /// Ingests items that did not come as an HTTP batch: the same validation, identity binding,
    /// dead-lettering and durable appends as `POST /v1/events`, with the same answer. Index `i`
    /// of the answer's rejections is `items[i]`. Counted in [`stats`](Self::stats) as a batch.
    ///
    /// The caller has authenticated its sender; `now` is when the items were received (the
    /// events' `received_at`, and the clock of the "at most 1 hour in the future" rule).
    pub async fn ingest_values(
        &self,
        items: Vec<Submission>,
        now: DateTime<Utc>,
    ) -> Result<IngestResponse, IngestError> {
        let result = match self.admit() {
            Ok(_slot) => self.ingest_submissions(None, items, now).await,
            Err(busy) => Err(busy),
        };
        self.counters.record(&result);
        result
    }

    /// [`ingest_values`](Self::ingest_values) for items a key sent through another wire format
    /// (the Sensors intake): the key's [`Scope`] applies and the audit trail names it. Not
    /// counted: the caller records the result, and holds the batch's in-flight slot.
    pub(crate) async fn ingest_submissions(
        &self,
        caller: Option<&Caller>,
        items: Vec<Submission>,
        now: DateTime<Utc>,
    ) -> Result<IngestResponse, IngestError> {
        self.ingest_submissions_at(caller, items, now, erase::EVENT_ENDPOINT)
            .await
    }

    /// [`ingest_submissions`](Self::ingest_submissions) from another endpoint than
    /// `POST /v1/events` (the admin's erasure), named in the audit trail.
    pub(crate) async fn ingest_submissions_at(
        &self,
        caller: Option<&Caller>,
        items: Vec<Submission>,
        now: DateTime<Utc>,
        endpoint: &str,
    ) -> Result<IngestResponse, IngestError> {
        let schemas = self.schemas.clone();
        let scope = Scope::of(caller);
        let validated = {
            let span = Span::current();
            tokio::task::spawn_blocking(move || {
                span.in_scope(|| validate_submissions(&schemas, items, now, scope))
            })
        }
        .await
        .map_err(|e| IngestError::Internal(format!("validation task failed: {e}")))?;
        store(self, caller, validated, now, endpoint, DeadLetters::Write).await
    }

    /// Sends dead letters' events again through today's validation, identity binding, erasure,
    /// sealing and append — the path of `POST /v1/events` — on behalf of `caller` (the audit
    /// trail's actor of an erasure; its role's [`Scope`] applies). An event that passes is
    /// appended with its own `event_id`, so a replay the read models have seen counts once; one
    /// that still fails is answered in `rejected` and NOT written to the dead-letter stream
    /// again: it is there already. Index `i` of the answer is `events[i]`.
    pub async fn replay(
        &self,
        caller: &Caller,
        events: Vec<Value>,
        now: DateTime<Utc>,
    ) -> Result<IngestResponse, IngestError> {
        let schemas = self.schemas.clone();
        let scope = Scope::of(Some(caller));
        let items = events.into_iter().map(Submission::Event).collect();
        let validated =
            tokio::task::spawn_blocking(move || validate_submissions(&schemas, items, now, scope))
                .await
                .map_err(|e| IngestError::Internal(format!("validation task failed: {e}")))?;
        store(
            self,
            Some(caller),
            validated,
            now,
            REPLAY_ENDPOINT,
            DeadLetters::Skip,
        )
        .await
    }
}

/// The audit trail's `endpoint` of an erasure a replayed dead letter carries.
const REPLAY_ENDPOINT: &str = "liandong dead-letter replay";

/// Whether a batch's rejections go to the dead-letter stream ([`IngestState::replay`]'s are
/// dead letters already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeadLetters {
    Write,
    Skip,
}

/// The part both entry points share, after validation: identity binding in batch order, the
/// erasures the batch asks for, sealing, then both appends. Invariant: `Ok` only once every
/// record is durable. `caller`: the API key that sent the batch (`None`: an in-process adapter).
async fn store(
    state: &IngestState,
    caller: Option<&Caller>,
    validated: Validated,
    now: DateTime<Utc>,
    endpoint: &str,
    to_dead_letters: DeadLetters,
) -> Result<IngestResponse, IngestError> {
    let Validated {
        valid,
        mut rejected,
    } = validated;
    Span::current().record("events", valid.len() + rejected.len());

    let mut accepted = bind_identities(&state.identity, valid, &mut rejected).await?;
    // Before sealing: a profile update of the member later in this batch is then dropped too.
    crate::erase::erase_members(state, caller, endpoint, &accepted).await?;
    seal_personal_data(&state.data_keys, &mut accepted).await?;

    let mut records = Vec::with_capacity(accepted.len());
    for event in &accepted {
        let payload = serde_json::to_vec(event).map_err(|e| {
            IngestError::Internal(format!("serializing event {}: {e}", event.event_id))
        })?;
        records.push(Record {
            key: record_key(&state.identity, event),
            event_id: event.event_id.to_string(),
            payload,
        });
    }
    rejected.sort_by_key(|r| r.index);
    let mut dead_letters = Vec::with_capacity(rejected.len());
    let mut answers = Vec::with_capacity(rejected.len());
    let mut reject_labels = Vec::with_capacity(rejected.len());
    for r in rejected {
        reject_labels.push((dead_letter::type_label(&r.event), r.reason));
        let payload = dead_letter::payload(
            r.index,
            r.event_id.as_deref(),
            r.reason,
            &r.dead_letter_error,
            r.status,
            now,
            r.event,
        );
        dead_letters.push(Record {
            key: r.key,
            // Empty when the sender gave none: dead letters are inspected, not deduplicated.
            event_id: r.event_id.clone().unwrap_or_default(),
            payload: serde_json::to_vec(&payload)
                .map_err(|e| IngestError::Internal(format!("serializing dead letter: {e}")))?,
        });
        answers.push(RejectedEvent {
            index: r.index,
            event_id: r.event_id,
            error: r.error,
            status: r.status,
        });
    }

    if to_dead_letters == DeadLetters::Skip {
        dead_letters.clear();
    }
    let (events_appended, dead_letters_appended) = tokio::join!(
        append(state, Stream::Events, records),
        append(state, Stream::DeadLetter, dead_letters)
    );
    combine(events_appended, dead_letters_appended)?;
    crate::metrics::stored(
        accepted.iter().map(|e| e.event_type.as_str()),
        &reject_labels,
        to_dead_letters == DeadLetters::Write,
    );

    Ok(IngestResponse {
        accepted: accepted.len(),
        rejected: answers,
    })
}

/// Shape checks, then each event on its own.
fn validate_batch(
    schemas: &Schemas,
    body: &[u8],
    now: DateTime<Utc>,
    scope: Scope,
) -> Result<Validated, IngestError> {
    let batch = parse_batch(body)?;
    if let Some(sent_at) = batch.sent_at {
        // Only logged for now: clock-skew correction is not part of the contract.
        tracing::debug!(%sent_at, "batch sent_at");
    }
    let mut out = Validated {
        valid: Vec::with_capacity(batch.events.len()),
        rejected: Vec::new(),
    };
    for (index, raw) in batch.events.into_iter().enumerate() {
        let value: Value = match serde_json::from_str(raw.get()) {
            Ok(v) => v,
            Err(e) => {
                // JSON that is not a Value, e.g. a number beyond f64: keep the text.
                let error = format!("(event): not valid JSON: {e}");
                out.rejected.push(Rejection {
                    index,
                    event_id: None,
                    dead_letter_error: error.clone(),
                    error,
                    event: dead_letter::redact_raw(raw),
                    key: String::new(),
                    status: None,
                    reason: RejectReason::Json,
                });
                continue;
            }
        };
        validate_value(schemas, index, value, now, scope, &mut out);
    }
    Ok(out)
}

/// An adapter's items: events are validated as a batch's are; unmappable ones are rejections
/// already, with the adapter's reason.
fn validate_submissions(
    schemas: &Schemas,
    items: Vec<Submission>,
    now: DateTime<Utc>,
    scope: Scope,
) -> Validated {
    let mut out = Validated {
        valid: Vec::with_capacity(items.len()),
        rejected: Vec::new(),
    };
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Submission::Event(value) => validate_value(schemas, index, value, now, scope, &mut out),
            Submission::Unmappable {
                event_id,
                key,
                reason,
                original,
            } => out.rejected.push(Rejection {
                index,
                event_id,
                dead_letter_error: reason.clone(),
                error: reason,
                event: dead_letter::redact_event(&original),
                key,
                status: None,
                reason: RejectReason::Unmappable,
            }),
        }
    }
    out
}

/// One event against its schema: into `valid`, or into `rejected` with the schema's messages.
fn validate_value(
    schemas: &Schemas,
    index: usize,
    value: Value,
    now: DateTime<Utc>,
    scope: Scope,
    out: &mut Validated,
) {
    if let Some(reason) = scope.refusal(&value) {
        out.rejected.push(Rejection {
            index,
            event_id: event_id_of(&value),
            error: reason.clone(),
            dead_letter_error: reason,
            key: dead_letter::key_of(Some(&value)),
            event: dead_letter::redact_event(&value),
            status: Some(403),
            reason: RejectReason::ClientScope,
        });
        return;
    }
    match schemas.validate(&value, now) {
        Ok(event) => {
            // Only events that bind identities can still be rejected later.
            let sent = event.user.bindings().is_some().then_some(value);
            out.valid.push(Valid { index, event, sent });
        }
        Err(invalid) => {
            let event_type = value.get("type").and_then(Value::as_str);
            out.rejected.push(Rejection {
                index,
                event_id: event_id_of(&value),
                error: invalid.0.join("; "),
                dead_letter_error: dead_letter::redact_error(event_type, &invalid.0),
                key: dead_letter::key_of(Some(&value)),
                event: dead_letter::redact_event(&value),
                status: None,
                reason: RejectReason::Schema,
            });
        }
    }
}

fn event_id_of(value: &Value) -> Option<String> {
    value
        .get("event_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Binds the batch's identities together, in batch order, so that within a batch the first
/// event to bind an openid wins, as it would across batches: one identity-store transaction for
/// the whole batch (none when every binding is cached). A conflict rejects that event only; an
/// unavailable store refuses the batch (nothing of it is bound).
async fn bind_identities(
    identity: &IdentityService,
    valid: Vec<Valid>,
    rejected: &mut Vec<Rejection>,
) -> Result<Vec<Event>, IngestError> {
    let bindings: Vec<Binding<'_>> = valid
        .iter()
        .filter_map(|v| v.event.user.bindings())
        .map(|(unionid, openids)| Binding { unionid, openids })
        .collect();
    let mut answers = match identity.bind_all(&bindings).await {
        Ok(answers) => answers.into_iter(),
        Err(IdentityError::Unavailable(reason)) => {
            return Err(IngestError::IdentityUnavailable(reason))
        }
        Err(e @ IdentityError::Conflict { .. }) => {
            return Err(IngestError::Internal(format!("binding identities: {e}")))
        }
    };
    let mut accepted = Vec::with_capacity(valid.len());
    for Valid { index, event, sent } in valid {
        if event.user.bindings().is_none() {
            accepted.push(event);
            continue;
        }
        match answers.next() {
            Some(Ok(())) => accepted.push(event),
            Some(Err(conflict @ IdentityError::Conflict { .. })) => {
                let sent = sent.unwrap_or(Value::Null);
                let error = conflict.to_string();
                rejected.push(Rejection {
                    index,
                    event_id: Some(event.event_id.to_string()),
                    dead_letter_error: error.clone(),
                    error,
                    key: dead_letter::key_of(Some(&sent)),
                    event: dead_letter::redact_event(&sent),
                    status: None,
                    reason: RejectReason::IdentityConflict,
                });
            }
            Some(Err(IdentityError::Unavailable(reason))) => {
                return Err(IngestError::IdentityUnavailable(reason))
            }
            None => {
                return Err(IngestError::Internal(
                    "binding identities: an answer is missing".to_owned(),
                ))
            }
        }
    }
    Ok(accepted)
}

/// Replaces the personal data of accepted events by values sealed under the data key of the
/// event's identifier, so the log never holds it in plaintext. The personal data of an event
/// carrying an erased identifier is dropped instead: neither sealed (no new data key for an
/// erased member) nor stored. One registry lookup per batch. A data key store (the read store)
/// that does not answer refuses the batch (retryable), like an unavailable identity store.
async fn seal_personal_data(keys: &DataKeys, events: &mut [Event]) -> Result<(), IngestError> {
    let taken: Vec<Vec<(&'static str, String)>> =
        events.iter_mut().map(Event::take_personal_data).collect();
    let member_keys = events
        .iter()
        .zip(&taken)
        .filter(|(_, personal)| !personal.is_empty())
        .flat_map(|(e, _)| MemberIds::of_user(&e.user).member_keys())
        .collect();
    // The registry lives beside the data keys: unreadable, the batch cannot be sealed.
    let erased = erasure::erased_among(keys.store(), keys.vault(), &member_keys)
        .await
        .map_err(|e| IngestError::DataKeysUnavailable(format!("erasure registry: {e}")))?;
    for (event, personal) in events.iter_mut().zip(taken) {
        if personal.is_empty() {
            continue;
        }
        if !erased.is_empty()
            && MemberIds::of_user(&event.user)
                .member_keys()
                .iter()
                .any(|k| erased.contains(k))
        {
            tracing::debug!(event_id = %event.event_id, "personal data of an erased member dropped");
            continue;
        }
        let identifier = event
            .user
            .data_key_identifier()
            .ok_or_else(|| {
                IngestError::Internal(format!("event {}: no identifier", event.event_id))
            })?
            .to_owned();
        for (name, plaintext) in personal {
            let sealed = keys
                .seal(&identifier, &plaintext)
                .await
                .map_err(|e| match e {
                    e if e.is_retryable() => IngestError::DataKeysUnavailable(e.to_string()),
                    e => IngestError::Internal(format!("sealing personal data: {e}")),
                })?;
            event.sealed.insert(name.to_owned(), sealed);
        }
    }
    Ok(())
}

/// The partition key: the person's unionid whenever it is known, so all of one person's
/// events stay on one partition, in order; else the openid itself.
fn record_key(identity: &IdentityService, event: &Event) -> String {
    let user = &event.user;
    if let Some(unionid) = &user.unionid {
        return unionid.clone();
    }
    let cached =
        |kind, openid: &Option<String>| openid.as_deref().and_then(|o| identity.cached(kind, o));
    cached(OpenidKind::Oa, &user.oa_openid)
        .or_else(|| cached(OpenidKind::Mp, &user.mp_openid))
        .or_else(|| user.oa_openid.clone())
        .or_else(|| user.mp_openid.clone())
        .unwrap_or_default()
}

async fn append(state: &IngestState, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
    if records.is_empty() {
        return Ok(());
    }
    let (count, started) = (records.len(), std::time::Instant::now());
    let result = state.log.append(stream, records).await;
    crate::metrics::appended(stream, count, started.elapsed(), &result);
    result
}

/// Both appends must succeed. A fatal error outranks a retryable one (waiting will not fix
/// it); two retryable ones wait for the longer hint.
fn combine(
    events: Result<(), LogError>,
    dead_letters: Result<(), LogError>,
) -> Result<(), IngestError> {
    let failures = [(Stream::Events, events), (Stream::DeadLetter, dead_letters)]
        .into_iter()
        .filter_map(|(stream, r)| r.err().map(|e| (stream, e)));
    let mut unavailable: Option<(String, std::time::Duration)> = None;
    for (stream, e) in failures {
        match e {
            LogError::Fatal(reason) => {
                return Err(IngestError::Internal(format!(
                    "appending to {stream}: {reason}"
                )))
            }
            LogError::Unavailable {
                reason,
                retry_after,
            } => {
                let reason = format!("appending to {stream}: {reason}");
                unavailable = Some(match unavailable {
                    None => (reason, retry_after),
                    Some((r, wait)) => (format!("{r}; {reason}"), wait.max(retry_after)),
                });
            }
        }
    }
    match unavailable {
        None => Ok(()),
        Some((reason, retry_after)) => Err(IngestError::LogUnavailable {
            reason,
            retry_after,
        }),
    }
}
