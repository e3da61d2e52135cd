//! HTTP ingestion, `POST /v1/events`, exactly per EVENTS.md: a batch is authenticated and
//! shape-checked as a whole, its events validated one by one; accepted events go to the events
//! stream, with their personal data sealed under the member's data key (`Event::sealed`),
//! rejected ones (with the reason, personal data redacted) to the dead-letter stream.
//!
//! A `200` means both appends are durable. Duplicate `event_id`s, within a batch or across
//! retries, are all accepted here: "an event_id counts once" is enforced by the projectors and
//! read models, which is what makes a client's retry of a whole batch harmless. That also
//! covers a `503` whose other append did succeed: those records are in the log, and the retry
//! the `503` asks for writes them again.
//!
//! Other ways in (the WeChat callback) hand already-parsed events to
//! [`IngestState::ingest_values`], which runs the same validation, binding and appends. The
//! Sensors Data–compatible intake ([`sensors`], `/sa` and `/sa.gif`) maps what the Sensors SDKs
//! send onto the catalogue and joins the same path, authenticated by a key in the URL.
//!
//! Keys with the `client` role (public: shipped inside an app) may send only the
//! client-observable types and never a `unionid`; anything else they send is refused event by
//! event (`403`, dead-lettered). Every key has a request budget ([`RateLimit`]); beyond it the
//! answer is `429` with `Retry-After`.
//!
//! Memory stays bounded under overload: at most [`MaxInFlight`] batches are held at once (read,
//! validated, bound, appended); one more is answered `503` with `Retry-After` before its body is
//! read. A slow identity store or a slow log thus fills the slots and turns new batches away
//! instead of queueing them, and a full producer queue is a `503` of its own
//! ([`liandong_log::LogError::Unavailable`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use liandong_auth::ApiKeys;
use liandong_event::Schemas;
use liandong_identity::IdentityService;
use liandong_log::EventLog;
use liandong_vault::DataKeys;

mod batch;
pub mod dead_letter;
pub mod erase;
mod error;
mod handler;
pub mod metrics;
mod rate;
pub mod sensors;

pub use error::IngestError;
pub use handler::{IngestResponse, RejectedEvent, Submission};
pub use rate::RateLimit;

/// Largest request body (EVENTS.md: 2 MiB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most events per batch.
pub const MAX_EVENTS: usize = 1000;
/// Largest single event, measured on the sender's own JSON text of it (EVENTS.md: 32 KiB).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// Most batches one process holds at once, from reading the body to the answer (all entry
/// points together: `POST /v1/events`, beacons, the Sensors intake, in-process adapters).
/// Each holds at most [`MAX_BODY_BYTES`] of body plus its parsed events, so the default bounds
/// ingestion's request memory to a few hundred MB in the worst case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxInFlight(pub usize);

impl MaxInFlight {
    pub const DEFAULT: MaxInFlight = MaxInFlight(64);
}

/// Everything the endpoint needs; cheap to clone (one clone per request).
#[derive(Clone)]
pub struct IngestState {
    schemas: Arc<Schemas>,
    log: Arc<dyn EventLog>,
    identity: IdentityService,
    keys: Arc<ApiKeys>,
    /// Seals personal data before it reaches the log.
    data_keys: DataKeys,
    counters: Arc<Counters>,
    limiter: rate::Limiter,
    /// One permit per batch in flight ([`MaxInFlight`]).
    in_flight: Arc<tokio::sync::Semaphore>,
    max_in_flight: usize,
}

impl IngestState {
    pub fn new(
        schemas: Arc<Schemas>,
        log: Arc<dyn EventLog>,
        identity: IdentityService,
        keys: Arc<ApiKeys>,
        data_keys: DataKeys,
    ) -> Self {
        Self {
            schemas,
            log,
            identity,
            keys,
            data_keys,
            counters: Arc::default(),
            limiter: rate::Limiter::new(RateLimit::DEFAULT),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MaxInFlight::DEFAULT.0)),
            max_in_flight: MaxInFlight::DEFAULT.0,
        }
    }

    /// Replaces the bound on batches in flight ([`MaxInFlight::DEFAULT`] unless set; at least 1).
    pub fn with_max_in_flight(mut self, max: MaxInFlight) -> Self {
        let max = max.0.max(1);
        self.in_flight = Arc::new(tokio::sync::Semaphore::new(max));
        self.max_in_flight = max;
        self
    }

    /// A slot for one batch, held until it is answered, or `503` when all are taken.
    pub(crate) fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, IngestError> {
        self.in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| IngestError::Overloaded {
                max: self.max_in_flight,
            })
    }

    /// Replaces the per-key request budget ([`RateLimit::DEFAULT`] unless set).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limiter = rate::Limiter::new(limit);
        self
    }

    /// One request of `caller`'s budget, or `429` with the wait.
    pub(crate) fn check_rate(&self, caller: &liandong_auth::Caller) -> Result<(), IngestError> {
        self.limiter
            .check(&caller.key_id)
            .map_err(|retry_after| IngestError::RateLimited {
                per_second: self.limiter.limit().per_second.get(),
                retry_after,
            })
    }

    /// The counters since start-up (shared by all clones of this state).
    pub fn stats(&self) -> IngestStats {
        self.counters.snapshot()
    }
}

impl std::fmt::Debug for IngestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestState")
            .field("log", &self.log.kind())
            .field("identity", &self.identity)
            .field("keys", &self.keys)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// Ingestion counters, for observability. Events count only once their batch got its `200`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Batches answered `200`.
    pub batches: u64,
    /// Events accepted (in the events stream).
    pub accepted: u64,
    /// Events rejected (in the dead-letter stream).
    pub rejected: u64,
    /// Requests refused as a whole with a `4xx` (auth, shape, limits).
    pub refused: u64,
    /// Requests answered `503` (log or identity store unavailable).
    pub unavailable: u64,
    /// Requests answered `500`.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn record(&self, result: &Result<IngestResponse, IngestError>) {
        // Relaxed: independent counters, read only for monitoring.
        let add = |c: &AtomicU64, n: usize| {
            c.fetch_add(n as u64, Ordering::Relaxed);
        };
        crate::metrics::request(result);
        match result {
            Ok(answer) => {
                add(&self.batches, 1);
                add(&self.accepted, answer.accepted);
                add(&self.rejected, answer.rejected.len());
            }
            Err(e) if e.status().is_client_error() => add(&self.refused, 1),
            Err(e) if e.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE => {
                add(&self.unavailable, 1)
            }
            Err(_) => add(&self.failed, 1),
        }
    }

    fn snapshot(&self) -> IngestStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestStats {
            batches: get(&self.batches),
            accepted: get(&self.accepted),
            rejected: get(&self.rejected),
            refused: get(&self.refused),
            unavailable: get(&self.unavailable),
            failed: get(&self.failed),
        }
    }
}

/// `POST /v1/events`, `POST /v1/beacon` (the same batch from a page's `sendBeacon`, the key in
/// the URL), and the Sensors intake on `/sa` and `/sa.gif` (GET and POST). The body
/// limit is enforced by the handlers themselves (so the 413 message is ours), hence axum's
/// default limit is off for these routes.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route("/v1/events", post(handler::post_events))
        .route("/v1/beacon", post(handler::post_beacon))
        .route("/v1/members/{member_key}/erase", post(erase::post_erase))
        .route(
            sensors::PATH,
            get(sensors::handle_get).post(sensors::handle_post),
        )
        .route(
            sensors::GIF_PATH,
            get(sensors::handle_get).post(sensors::handle_post),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
