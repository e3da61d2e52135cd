//! `IdentityService`: the ingestion-facing API that binds openids to unionids.
//! Invariants: a cached binding is always one that was read from or written to the store;
//! a conflicting openid is never bound by a rejected `bind` call.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::AggregateError;
use liandong_vault::{Purpose, Vault};
use sqlx::{PgPool, SqlitePool};

use crate::aggregate::{aggregate_id, BindingCommand, OpenidKind};
use crate::cache::{BindingCache, Lookup, DEFAULT_CACHE_CAPACITY};
use crate::store::{migrate, Backend, StoreError};

/// Attempts of one `Bind` command against optimistic-lock losses. Each aggregate holds at
/// most one event, so after one lost race the reload sees the winner's binding and the
/// command settles; the extra attempts only absorb pathological scheduling.
const MAX_ATTEMPTS: u32 = 4;

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

    fn unavailable(kind: OpenidKind, openid: &str, err: &StoreError) -> Self {
        IdentityError::Unavailable(format!("binding {kind} openid {openid}: {err}"))
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
    /// bound to when one is bound elsewhere.
    ///
    /// All openids are checked (cache, then store) before any is bound, so a conflict found
    /// that way binds nothing. Only when another process binds one of them between the check
    /// and the write can the others of this call already be bound when the conflict is
    /// reported; that is harmless, as those bindings carry the event's own unionid.
    ///
    /// With [`with_erasure_registry`](Self::with_erasure_registry), erased identifiers are left
    /// out: Ok(()) binds nothing for them.
    pub async fn bind(
        &self,
        unionid: &str,
        openids: &[(OpenidKind, &str)],
    ) -> Result<(), IdentityError> {
        // Hot path: every openid cached with this unionid, no IO at all.
        let mut pending: Vec<(OpenidKind, &str)> = Vec::new();
        for &(kind, openid) in openids {
            match self.cache.lookup(kind, openid, unionid) {
                Lookup::Same => {}
                Lookup::Other(bound_to) => {
                    return Err(IdentityError::conflict(kind, openid, bound_to, unionid))
                }
                Lookup::Miss => pending.push((kind, openid)),
            }
        }

        if !pending.is_empty() {
            if let Some(vault) = &self.erasure {
                // Identifiers hash in their member-key form: the unionid, `oa:`/`mp:<openid>`
                // (the aggregate id).
                let hash = |v: &str| vault.keyed_hash(Purpose::Erasure, v);
                let mut hashes = vec![hash(unionid)];
                hashes.extend(pending.iter().map(|&(k, o)| hash(&aggregate_id(k, o))));
                let erased = self.backend.erased(&hashes).await.map_err(|e| {
                    IdentityError::Unavailable(format!("reading the erasure registry: {e}"))
                })?;
                if erased.contains(&hashes[0]) {
                    return Ok(());
                }
                pending.retain(|&(k, o)| !erased.contains(&hash(&aggregate_id(k, o))));
            }
        }

        // With a single uncached openid the command itself is the check; reading first would
        // only add a round trip.
        if pending.len() > 1 {
            let mut unbound = Vec::with_capacity(pending.len());
            for (kind, openid) in pending {
                let id = aggregate_id(kind, openid);
                match self.backend.load(&id).await {
                    Ok(Some(bound_to)) => {
                        self.cache.insert(kind, openid, &bound_to);
                        if bound_to != unionid {
                            return Err(IdentityError::conflict(kind, openid, bound_to, unionid));
                        }
                    }
                    Ok(None) => unbound.push((kind, openid)),
                    Err(e) => return Err(IdentityError::unavailable(kind, openid, &e)),
                }
            }
            pending = unbound;
        }

        for (kind, openid) in pending {
            self.bind_one(kind, openid, unionid).await?;
        }
        Ok(())
    }

    /// Issues `Bind` for one openid, retrying optimistic-lock losses: the retry reloads the
    /// aggregate, so the loser of a race sees the winner's binding.
    async fn bind_one(
        &self,
        kind: OpenidKind,
        openid: &str,
        unionid: &str,
    ) -> Result<(), IdentityError> {
        let id = aggregate_id(kind, openid);
        for attempt in 1..=MAX_ATTEMPTS {
            let command = BindingCommand::Bind {
                unionid: unionid.to_owned(),
            };
            match self.backend.execute(&id, command).await {
                Ok(()) => {
                    self.cache.insert(kind, openid, unionid);
                    return Ok(());
                }
                Err(AggregateError::UserError(conflict)) => {
                    self.cache.insert(kind, openid, &conflict.bound_to);
                    return Err(IdentityError::conflict(
                        kind,
                        openid,
                        conflict.bound_to,
                        unionid,
                    ));
                }
                Err(AggregateError::AggregateConflict) => {
                    tracing::debug!(%kind, openid, attempt, "concurrent bind, retrying");
                    // Tiny growing pause so that retries of several racers do not collide again.
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5)).await;
                }
                Err(e) => return Err(IdentityError::unavailable(kind, openid, &e)),
            }
        }
        Err(IdentityError::Unavailable(format!(
            "binding {kind} openid {openid}: still losing concurrent updates after {MAX_ATTEMPTS} attempts"
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
