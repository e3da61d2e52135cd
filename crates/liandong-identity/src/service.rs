//! `IdentityService`: the ingestion-facing API that binds openids to unionids.
//! Invariants: a cached binding is always one that was read from or written to the store;
//! a conflicting openid is never bound by a rejected `bind` call.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};
use liandong_vault::{Purpose, Vault};
use sqlx::{PgPool, SqlitePool};

use crate::aggregate::{aggregate_id, BindingCommand, BindingEvent, OpenidBinding, OpenidKind};
use crate::cache::{BindingCache, Lookup, DEFAULT_CACHE_CAPACITY};
use crate::store::{migrate, Backend, BatchTx};

/// Rounds of one batch's transaction against optimistic-lock losses (another process wrote an
/// aggregate's event between this batch's read and its write). Each aggregate holds at most
/// one event, so after one lost race the reload sees the winner's binding and the batch
/// settles; the extra rounds only absorb pathological scheduling.
const MAX_ATTEMPTS: u32 = 4;

/// One `bind` of a batch: bind every openid of `openids` to `unionid` (an event's identities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding<'a> {
    pub unionid: &'a str,
    pub openids: Vec<(OpenidKind, &'a str)>,
}

/// Why a `bind` was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The openid is bound for life to another unionid: the event must be rejected.
    #[error(
        "identity conflict: {kind} openid {openid} is bound to unionid {bound_to}, not {attempted}"
    )]
    Conflict {
        kind: OpenidKind,
        openid: String,
        /// The unionid the openid is bound to.
        bound_to: String,
        /// The unionid the event tried to bind it to.
        attempted: String,
    },
    /// Store unreachable, failing or holding unreadable data: retryable (ingestion answers 503).
    #[error("identity store unavailable: {0}")]
    Unavailable(String),
}

impl IdentityError {
    /// True for errors worth retrying later (the event itself is not at fault).
    pub fn is_retryable(&self) -> bool {
        matches!(self, IdentityError::Unavailable(_))
    }

    fn conflict(kind: OpenidKind, openid: &str, bound_to: String, attempted: &str) -> Self {
        IdentityError::Conflict {
            kind,
            openid: openid.to_owned(),
            bound_to,
            attempted: attempted.to_owned(),
        }
    }

    fn unavailable(during: &str, err: impl std::fmt::Display) -> Self {
        IdentityError::Unavailable(format!("{during}: {err}"))
    }
}

/// Binds openids to unionids through the `OpenidBinding` aggregate, with an in-process cache
/// in front. Cheap to clone (shared state); `Send + Sync`.
#[derive(Clone)]
pub struct IdentityService {
    backend: Arc<Backend>,
    cache: Arc<BindingCache>,
    /// Set: identifiers in the erasure registry are never bound again.
    erasure: Option<Arc<Vault>>,
}

impl IdentityService {
    /// Service over PostgreSQL; creates the identity tables if needed.
    pub async fn postgres(pool: PgPool) -> Result<Self, IdentityError> {
        migrate(&pool).await?;
        Ok(Self::from_backend(Backend::postgres(pool)))
    }

    /// Service over SQLite; creates the identity tables if needed.
    pub async fn sqlite(pool: SqlitePool) -> Result<Self, IdentityError> {
        migrate(&pool).await?;
        Ok(Self::from_backend(Backend::sqlite(pool)))
    }

    fn from_backend(backend: Backend) -> Self {
        Self {
            backend: Arc::new(backend),
            cache: Arc::new(BindingCache::new(DEFAULT_CACHE_CAPACITY)),
            erasure: None,
        }
    }

    /// Consults the erasure registry (`liandong_erasures`, keyed hashes made with `vault`)
    /// before binding: an erased openid is never bound again, and nothing is bound to an erased
    /// unionid — the events about them are accepted, and every projection skips them, but the
    /// identity store does not take their identifiers back in.
    pub fn with_erasure_registry(mut self, vault: Arc<Vault>) -> Self {
        self.erasure = Some(vault);
        self
    }

    /// Replaces the cache with an empty one keeping about `capacity` entries per generation
    /// (at most twice that in total; default [`DEFAULT_CACHE_CAPACITY`]). Call before cloning:
    /// clones made earlier keep the old cache.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = Arc::new(BindingCache::new(capacity));
        self
    }

    /// Bind every openid in `openids` to `unionid`. Ok(()) when all are (now or already)
    /// bound to it; `Err(IdentityError::Conflict)` naming the openid and the unionid it is
    /// bound to when one is bound elsewhere. A batch of one: see [`bind_all`](Self::bind_all).
    pub async fn bind(
        &self,
        unionid: &str,
        openids: &[(OpenidKind, &str)],
    ) -> Result<(), IdentityError> {
        let binding = Binding {
            unionid,
            openids: openids.to_vec(),
        };
        self.bind_all(std::slice::from_ref(&binding))
            .await?
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Binds a batch: the answer of each [`Binding`], in order, as if each had been a
    /// [`bind`](Self::bind) call of its own in batch order — the first binding of an openid
    /// wins, a later one to another unionid is a conflict. An `Err` of the whole call
    /// ([`IdentityError::Unavailable`]) means the store did not answer; nothing was bound.
    ///
    /// Cached bindings need no IO; the others take **one transaction** for the whole batch:
    /// the erasure registry and the aggregates' events are read, each `Bind` is decided by the
    /// [`OpenidBinding`] aggregate in batch order, and the events it emits are written in one
    /// statement. The aggregate's invariant holds across processes through the event table's
    /// primary key (aggregate, sequence): an event another process committed first makes the
    /// insert skip that aggregate, which is then reloaded and decided again.
    ///
    /// All openids of a binding are checked before any is bound, so a conflict binds nothing of
    /// that binding. Only when another process binds one of them between the check and the write
    /// can the others already be bound when the conflict is reported; that is harmless, as those
    /// bindings carry the event's own unionid.
    ///
    /// With [`with_erasure_registry`](Self::with_erasure_registry), erased identifiers are left
    /// out: a binding to an erased unionid binds nothing and is Ok, an erased openid is skipped.
    pub async fn bind_all(
        &self,
        bindings: &[Binding<'_>],
    ) -> Result<Vec<Result<(), IdentityError>>, IdentityError> {
        let mut answers: Vec<Result<(), IdentityError>> = vec![Ok(()); bindings.len()];
        // Hot path: openids cached with the binding's unionid need no IO at all.
        let mut pending: Vec<(usize, Vec<(OpenidKind, &str)>)> = Vec::new();
        'binding: for (i, b) in bindings.iter().enumerate() {
            let mut misses = Vec::new();
            for &(kind, openid) in &b.openids {
                match self.cache.lookup(kind, openid, b.unionid) {
                    Lookup::Same => {}
                    Lookup::Other(bound_to) => {
                        answers[i] =
                            Err(IdentityError::conflict(kind, openid, bound_to, b.unionid));
                        continue 'binding;
                    }
                    Lookup::Miss => misses.push((kind, openid)),
                }
            }
            if !misses.is_empty() {
                pending.push((i, misses));
            }
        }
        if pending.is_empty() {
            return Ok(answers);
        }

        let mut tx = self
            .backend
            .begin()
            .await
            .map_err(|e| IdentityError::unavailable("binding identities", e))?;
        if let Some(vault) = &self.erasure {
            // Identifiers hash in their member-key form: the unionid, `oa:`/`mp:<openid>`
            // (the aggregate id).
            let hash = |v: &str| vault.keyed_hash(Purpose::Erasure, v);
            let mut hashes: Vec<String> = Vec::new();
            for (i, openids) in &pending {
                hashes.push(hash(bindings[*i].unionid));
                hashes.extend(openids.iter().map(|&(k, o)| hash(&aggregate_id(k, o))));
            }
            let erased = tx
                .erased(&hashes)
                .await
                .map_err(|e| IdentityError::unavailable("reading the erasure registry", e))?;
            if !erased.is_empty() {
                for (i, openids) in &mut pending {
                    if erased.contains(&hash(bindings[*i].unionid)) {
                        openids.clear();
                    }
                    openids.retain(|&(k, o)| !erased.contains(&hash(&aggregate_id(k, o))));
                }
                pending.retain(|(_, openids)| !openids.is_empty());
            }
        }

        // Every aggregate of the batch, as the store holds it: state and event count.
        let mut names: HashMap<String, (OpenidKind, &str)> = HashMap::new();
        for (_, openids) in &pending {
            for &(k, o) in openids {
                names.insert(aggregate_id(k, o), (k, o));
            }
        }
        let mut stored: HashMap<String, (OpenidBinding, usize)> = HashMap::new();
        let mut to_load: Vec<String> = names.keys().cloned().collect();
        for attempt in 1..=MAX_ATTEMPTS {
            load_into(&mut tx, &to_load, &mut stored).await?;
            let (decided, events) = decide(bindings, &pending, &stored, &names).await?;
            let written = tx
                .insert(&events)
                .await
                .map_err(|e| IdentityError::unavailable("writing identity bindings", e))?;
            if written.len() == events.len() {
                tx.commit()
                    .await
                    .map_err(|e| IdentityError::unavailable("committing identity bindings", e))?;
                for (i, answer) in decided {
                    answers[i] = answer;
                }
                // Only now, committed: every binding read or written goes to the cache.
                for (id, state) in decided_states(&stored, &events) {
                    if let (Some(&(kind, openid)), Some(unionid)) = (names.get(&id), state) {
                        self.cache.insert(kind, openid, &unionid);
                    }
                }
                return Ok(answers);
            }
            // Lost races: what this batch wrote stands; the others' aggregates are read again.
            let written: HashSet<String> = written.into_iter().collect();
            to_load = events
                .iter()
                .map(|e| e.aggregate_id.clone())
                .filter(|id| !written.contains(id))
                .collect();
            for id in &to_load {
                stored.remove(id);
            }
            for e in events.iter().filter(|e| written.contains(&e.aggregate_id)) {
                apply_stored(&mut stored, &e.aggregate_id, e.sequence, &e.payload)?;
            }
            tracing::debug!(
                attempt,
                lost = to_load.len(),
                "concurrent binds, deciding again"
            );
        }
        Err(IdentityError::Unavailable(format!(
            "binding identities: still losing concurrent updates after {MAX_ATTEMPTS} attempts"
        )))
    }

    /// Erasure: forgets the bindings of `openids`. Their aggregates are deleted from the
    /// identity store and the openids from this process's cache; returns how many were bound.
    ///
    /// The invariant "one unionid for life" then starts over for these openids: a later event
    /// may bind them again, to any unionid. (Other processes' caches keep the binding until it
    /// ages out or they restart; that only decides which events about an erased openid are
    /// accepted, and the projections skip every one of them.)
    pub async fn forget(&self, openids: &[(OpenidKind, &str)]) -> Result<u64, IdentityError> {
        let ids: Vec<String> = openids
            .iter()
            .map(|&(kind, openid)| aggregate_id(kind, openid))
            .collect();
        let deleted = self
            .backend
            .delete(&ids)
            .await
            .map_err(|e| IdentityError::Unavailable(format!("erasing bindings: {e}")))?;
        for &(kind, openid) in openids {
            self.cache.remove(kind, openid);
        }
        Ok(deleted)
    }

    /// The unionid an openid is known (cached) to be bound to, without any IO (for choosing
    /// a Kafka record key). `None` means "not cached", not "unbound".
    pub fn cached(&self, kind: OpenidKind, openid: &str) -> Option<String> {
        self.cache.get(kind, openid).map(|u| u.to_string())
    }
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match *self.backend {
            Backend::Postgres { .. } => "postgres",
            Backend::Sqlite { .. } => "sqlite",
        };
        f.debug_struct("IdentityService")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

/// Reads the events of the aggregates `ids` into `stored` (an aggregate without events is
/// stored as the default state, 0 events).
async fn load_into(
    tx: &mut BatchTx,
    ids: &[String],
    stored: &mut HashMap<String, (OpenidBinding, usize)>,
) -> Result<(), IdentityError> {
    for id in ids {
        stored.insert(id.clone(), (OpenidBinding::default(), 0));
    }
    let events = tx
        .load(ids)
        .await
        .map_err(|e| IdentityError::unavailable("reading identity bindings", e))?;
    for e in events {
        apply_stored(stored, &e.aggregate_id, e.sequence as usize, &e.payload)?;
    }
    Ok(())
}

/// Applies one stored event (its serialized payload) to the aggregate's state.
fn apply_stored(
    stored: &mut HashMap<String, (OpenidBinding, usize)>,
    id: &str,
    sequence: usize,
    payload: &serde_json::Value,
) -> Result<(), IdentityError> {
    let event: BindingEvent = serde_json::from_value(payload.clone()).map_err(|e| {
        IdentityError::Unavailable(format!("unreadable identity event of {id}: {e}"))
    })?;
    let (state, count) = stored.entry(id.to_owned()).or_default();
    state.apply(event);
    *count = (*count).max(sequence);
    Ok(())
}

/// Decides the pending bindings in batch order with the aggregate's own `handle`, each binding
/// against the state the earlier ones left: its answer, and the events to write (serialized
/// as cqrs-es persists them, at the aggregate's next sequence).
async fn decide(
    bindings: &[Binding<'_>],
    pending: &[(usize, Vec<(OpenidKind, &str)>)],
    stored: &HashMap<String, (OpenidBinding, usize)>,
    names: &HashMap<String, (OpenidKind, &str)>,
) -> Result<
    (
        Vec<(usize, Result<(), IdentityError>)>,
        Vec<SerializedEvent>,
    ),
    IdentityError,
> {
    let mut state = stored.clone();
    let mut answers = Vec::with_capacity(pending.len());
    let mut events = Vec::new();
    'binding: for (i, openids) in pending {
        let unionid = bindings[*i].unionid;
        let mut emitted: Vec<(String, OpenidBinding, usize, Vec<BindingEvent>)> = Vec::new();
        for &(kind, openid) in openids {
            let id = aggregate_id(kind, openid);
            let (mut aggregate, count) = state.get(&id).cloned().unwrap_or_default();
            let sink = EventSink::default();
            let command = BindingCommand::Bind {
                unionid: unionid.to_owned(),
            };
            match aggregate.handle(command, &(), &sink).await {
                Ok(()) => emitted.push((id, aggregate, count, sink.collect().await)),
                Err(conflict) => {
                    answers.push((
                        *i,
                        Err(IdentityError::conflict(
                            kind,
                            openid,
                            conflict.bound_to,
                            unionid,
                        )),
                    ));
                    continue 'binding;
                }
            }
        }
        for (id, aggregate, count, new_events) in emitted {
            let mut sequence = count;
            for payload in new_events {
                sequence += 1;
                let envelope = EventEnvelope::<OpenidBinding> {
                    aggregate_id: id.clone(),
                    sequence,
                    payload,
                    metadata: HashMap::new(),
                };
                events.push(SerializedEvent::try_from(&envelope).map_err(|e| {
                    IdentityError::Unavailable(format!("serializing the binding of {id}: {e}"))
                })?);
            }
            debug_assert!(names.contains_key(&id));
            state.insert(id, (aggregate, sequence));
        }
        answers.push((*i, Ok(())));
    }
    Ok((answers, events))
}

/// The binding of every aggregate of the batch once `events` are written: the unionid, or
/// `None` while unbound.
fn decided_states(
    stored: &HashMap<String, (OpenidBinding, usize)>,
    events: &[SerializedEvent],
) -> Vec<(String, Option<String>)> {
    let mut out: HashMap<String, Option<String>> = stored
        .iter()
        .map(|(id, (state, _))| (id.clone(), state.unionid.clone()))
        .collect();
    for e in events {
        if let Ok(BindingEvent::OpenidBound { unionid }) =
            serde_json::from_value::<BindingEvent>(e.payload.clone())
        {
            out.insert(e.aggregate_id.clone(), Some(unionid));
        }
    }
    out.into_iter().collect()
}

// The ingestion layer calls `bind` from multi-threaded axum/tokio tasks.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is_send_sync<T: Send + Sync>(_: &T) {}
    fn is_send<T: Send>(_: &T) {}
    fn check(service: &IdentityService) {
        is_send_sync(service);
        is_send(&service.bind("u", &[]));
    }
    let _ = check;
}
