//! The projector runtime. It consumes the event log (a Kafka consumer group, or the embedded log
//! by position), hands each batch to a projection inside one read-store transaction, and moves
//! the stored log positions in that same transaction with a compare-and-set. The stored
//! positions, not the broker's committed offsets, are the truth: a crash at any instant leaves
//! the read models and the positions consistent, and a restart resumes exactly after the last
//! committed batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use liandong_event::Event;
use liandong_log::{Delivered, EventLog, LogConsumer, LogError, Stream};
use liandong_projections::{Projection, Tx};
use liandong_store::{Advance, ReadStore, StoreError};
use serde::Serialize;
use tracing::{debug, error, info, warn};

/// Why a projector stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event log: {0}")]
    Log(#[from] LogError),
}

/// Time to apply one batch and move its positions (the whole transaction), by projection.
pub const BATCH_SECONDS: &str = "liandong_projector_batch_duration_seconds";
/// Events in one applied batch, by projection.
pub const BATCH_EVENTS: &str = "liandong_projector_batch_events";
/// Events applied, by projection.
pub const EVENTS_APPLIED: &str = "liandong_projector_events_applied_total";
/// Batches rolled back (to be re-read and retried), by projection.
pub const BATCHES_FAILED: &str = "liandong_projector_batches_failed_total";

/// Describes the projector's metric families to the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_histogram!(
        BATCH_SECONDS,
        Unit::Seconds,
        "Time to apply one batch and move its log positions in one transaction, by projection"
    );
    describe_histogram!(
        BATCH_EVENTS,
        Unit::Count,
        "Events in one applied batch, by projection"
    );
    describe_counter!(EVENTS_APPLIED, "Events applied, by projection");
    describe_counter!(
        BATCHES_FAILED,
        "Batches rolled back and retried from the stored positions, by projection"
    );
}

/// Tuning of a projector.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Prefix of the consumer group, `<prefix>.projector.<projection>.v<version>`.
    pub group_prefix: String,
    /// At most this many records are applied in one transaction.
    pub max_batch: usize,
    /// How long a poll waits for the first record.
    pub poll_wait: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            group_prefix: "liandong".into(),
            max_batch: 2000,
            poll_wait: Duration::from_millis(200),
        }
    }
}

/// Counters a projector keeps for operators.
#[derive(Debug, Default)]
pub struct ProjectorStats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    /// Records whose payload could not be read as an event (written by a foreign producer).
    pub undecodable: AtomicU64,
    /// Batches rolled back because another projector moved a position first.
    pub conflicts: AtomicU64,
}

/// One projection fed from the log.
pub struct Projector {
    store: ReadStore,
    log: Arc<dyn EventLog>,
    projection: Arc<dyn Projection>,
    cfg: ProjectorConfig,
    stats: Arc<ProjectorStats>,
}

/// Brings a projection to the version this binary has. A projection never projected, or
/// projected by an older version, is emptied and rebuilt from the start of the log (ingestion
/// goes on meanwhile); one projected by a newer version is an error — an old binary must not
/// write into a newer read model.
pub async fn prepare(store: &ReadStore, projection: &dyn Projection) -> Result<(), StoreError> {
    let name = projection.name();
    let mine = projection.version();
    match store {
        ReadStore::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // Two projectors starting at once must not both rebuild.
            sqlx::query("LOCK TABLE liandong_projections IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let stored: Option<i32> = sqlx::query_scalar(
                "SELECT version FROM liandong_projections WHERE projection = $1",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            if needs_rebuild(name, mine, stored)? {
                liandong_store::reset_pg(&mut tx, name, mine, projection.tables()).await?;
            }
            tx.commit().await?;
        }
        ReadStore::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let stored: Option<i32> = sqlx::query_scalar(
                "SELECT version FROM liandong_projections WHERE projection = $1",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            if needs_rebuild(name, mine, stored)? {
                liandong_store::reset_sqlite(&mut tx, name, mine, projection.tables()).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

fn needs_rebuild(name: &str, mine: i32, stored: Option<i32>) -> Result<bool, StoreError> {
    match stored {
        None => Ok(true),
        Some(v) if v == mine => Ok(false),
        Some(v) if v < mine => {
            info!(
                projection = name,
                from = v,
                to = mine,
                "projection version changed: rebuilding from the start of the log"
            );
            Ok(true)
        }
        Some(v) => Err(StoreError::Superseded {
            projection: name.to_owned(),
            mine,
            stored: v,
        }),
    }
}

impl Projector {
    pub fn new(
        store: ReadStore,
        log: Arc<dyn EventLog>,
        projection: Arc<dyn Projection>,
        cfg: ProjectorConfig,
    ) -> Self {
        Projector {
            store,
            log,
            projection,
            cfg,
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<ProjectorStats> {
        self.stats.clone()
    }

    /// The consumer group of this projection's current version.
    pub fn group(&self) -> String {
        format!(
            "{}.projector.{}.v{}",
            self.cfg.group_prefix,
            self.projection.name(),
            self.projection.version()
        )
    }

    /// Projects until `shutdown` resolves, or a non-retryable error.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ProjectorError> {
        prepare(&self.store, self.projection.as_ref()).await?;
        let mut consumer = self.log.consumer(&self.group(), Stream::Events).await?;
        info!(projection = self.projection.name(), group = %self.group(), log = self.log.kind(), "projector started");
        let mut state = State::default();
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            let polled = tokio::select! {
                _ = &mut shutdown => break,
                polled = consumer.poll(self.cfg.max_batch, self.cfg.poll_wait) => polled,
            };
            let outcome = match polled {
                Ok(batch) => self.step(consumer.as_mut(), &mut state, batch).await,
                Err(e) if e.is_retryable() => Err(ProjectorError::Log(e)),
                Err(e) => return Err(e.into()),
            };
            match outcome {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(ProjectorError::Store(e @ StoreError::Superseded { .. })) => {
                    return Err(e.into())
                }
                Err(ProjectorError::Store(e @ StoreError::Config(_))) => return Err(e.into()),
                Err(e) => {
                    warn!(projection = self.projection.name(), error = %e, "batch not applied; retrying from the stored positions");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        info!(projection = self.projection.name(), "projector stopped");
        Ok(())
    }

    /// Applies one polled batch. On any failure the partitions it touched are re-read from
    /// their stored positions, so nothing polled is lost by an error.
    async fn step(
        &self,
        consumer: &mut dyn LogConsumer,
        state: &mut State,
        batch: Vec<Delivered>,
    ) -> Result<(), ProjectorError> {
        if consumer.generation() != state.generation {
            // A rebalance: partitions may have been projected elsewhere meanwhile.
            state.generation = consumer.generation();
            state.next.clear();
        }
        if batch.is_empty() {
            return Ok(());
        }
        let name = self.projection.name();
        let mut advances: BTreeMap<i32, Advance> = BTreeMap::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut seeking: Vec<i32> = Vec::new();
        for rec in batch {
            let p = rec.partition;
            if seeking.contains(&p) {
                continue;
            }
            let next = match state.next.get(&p) {
                Some(n) => *n,
                None => {
                    let n = self.store.position(name, p).await?;
                    state.next.insert(p, n);
                    if rec.offset > n {
                        // The consumer starts elsewhere (the broker's committed offset, or the
                        // embedded log's start): go to the stored position first.
                        debug!(
                            projection = name,
                            partition = p,
                            from = rec.offset,
                            to = n,
                            "seeking to the stored position"
                        );
                        consumer.seek(p, n).await?;
                        seeking.push(p);
                        continue;
                    }
                    n
                }
            };
            if rec.offset < next {
                continue; // applied before: a redelivery
            }
            let adv = advances.entry(p).or_insert(Advance {
                partition: p,
                from: next,
                to: next,
            });
            adv.to = rec.offset + 1;
            match serde_json::from_slice::<Event>(&rec.payload) {
                Ok(e) => events.push(e),
                Err(e) => {
                    self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                    error!(projection = name, partition = p, offset = rec.offset, event_id = %rec.event_id, error = %e,
                        "record is not an event; skipped");
                }
            }
        }
        if advances.is_empty() {
            return Ok(());
        }
        let advances: Vec<Advance> = advances.into_values().collect();
        let started = std::time::Instant::now();
        match self.commit(&events, &advances).await {
            Ok(()) => {
                metrics::histogram!(BATCH_SECONDS, "projection" => name).record(started.elapsed());
                metrics::histogram!(BATCH_EVENTS, "projection" => name).record(events.len() as f64);
                metrics::counter!(EVENTS_APPLIED, "projection" => name)
                    .increment(events.len() as u64);
                for a in &advances {
                    state.next.insert(a.partition, a.to);
                }
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .records
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                let positions: Vec<(i32, i64)> =
                    advances.iter().map(|a| (a.partition, a.to)).collect();
                consumer.commit_hint(&positions).await;
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::PositionMoved { .. }) {
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                metrics::counter!(BATCHES_FAILED, "projection" => name).increment(1);
                // Forget what we believed and re-read the batch from the stored positions.
                state.next.clear();
                for a in &advances {
                    match self.store.position(name, a.partition).await {
                        Ok(n) => {
                            consumer.seek(a.partition, n).await?;
                            state.next.insert(a.partition, n);
                        }
                        Err(_) => consumer.seek(a.partition, a.from).await?,
                    }
                }
                Err(e.into())
            }
        }
    }

    async fn commit(&self, events: &[Event], advances: &[Advance]) -> Result<(), StoreError> {
        let (name, version) = (self.projection.name(), self.projection.version());
        match &self.store {
            ReadStore::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Batches of several instances apply concurrently: the projection serializes
                // only what two of them share (an identifier, a member, an A/B experiment)
                // with locks inside this transaction; positions move by compare-and-set.
                self.projection.apply(Tx::Postgres(&mut tx), events).await?;
                liandong_store::advance_pg(&mut tx, name, version, advances).await?;
                tx.commit().await?;
            }
            ReadStore::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                // Take the write lock with the transaction's first statement, a write: it waits
                // out the busy timeout while ingestion writes. A transaction that read first
                // could not upgrade once another writer committed; SQLite refuses that at once
                // ("database is locked") and the whole batch was retried.
                sqlx::query(
                    "UPDATE liandong_projections SET version = version WHERE projection = $1",
                )
                .bind(name)
                .execute(&mut *tx)
                .await?;
                self.projection.apply(Tx::Sqlite(&mut tx), events).await?;
                liandong_store::advance_sqlite(&mut tx, name, version, advances).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct State {
    generation: u64,
    /// Next offset to apply of each partition, as last read from or written to the store.
    next: HashMap<i32, i64>,
}

/// Where a projection stands against the end of the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub projection: String,
    pub version: Option<i32>,
    /// Records in the log not yet applied, over all partitions.
    pub lag: i64,
    pub partitions: Vec<PartitionStatus>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The next offset the projection will apply.
    pub position: i64,
    /// One past the last record in the log.
    pub end: i64,
    pub lag: i64,
}

/// The status of each projection: its stored positions against the log's end offsets.
pub async fn status(
    store: &ReadStore,
    log: &dyn EventLog,
    projections: &[&dyn Projection],
) -> Result<Vec<ProjectionStatus>, ProjectorError> {
    let ends = log.end_offsets(Stream::Events).await?;
    let mut out = Vec::with_capacity(projections.len());
    for p in projections {
        let positions: HashMap<i32, i64> = store.positions(p.name()).await?.into_iter().collect();
        let partitions: Vec<PartitionStatus> = ends
            .iter()
            .map(|&(partition, end)| {
                let position = positions.get(&partition).copied().unwrap_or(0);
                PartitionStatus {
                    partition,
                    position,
                    end,
                    lag: (end - position).max(0),
                }
            })
            .collect();
        out.push(ProjectionStatus {
            projection: p.name().to_owned(),
            version: store.projection_version(p.name()).await?,
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
        });
    }
    Ok(out)
}
