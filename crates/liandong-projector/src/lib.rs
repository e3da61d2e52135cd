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
use liandong_store::sql::StoreTx;
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
/// Offsets the log skipped twice (records it does not deliver), by projection.
pub const SKIPPED_OFFSETS: &str = "liandong_projector_skipped_offsets_total";

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
    describe_counter!(
        SKIPPED_OFFSETS,
        "Log offsets skipped by the broker even when read again: records never applied, by projection"
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
    /// Offsets the log skipped: a record delivered past the next offset of its partition, with
    /// no rebalance in between, again after seeking back to that offset once. The events topic
    /// is neither compacted nor transactional, so its offsets have no gaps; a gap the broker
    /// keeps means records it does not deliver (logged as a warning).
    pub skipped_offsets: AtomicU64,
}

/// One projection fed from the log.
pub struct Projector {
    inner: Arc<Inner>,
}

struct Inner {
    store: ReadStore,
    log: Arc<dyn EventLog>,
    projection: Arc<dyn Projection>,
    cfg: ProjectorConfig,
    stats: Arc<ProjectorStats>,
}

/// Where a batch is applied: the live tables, or a rebuild's (see [`liandong_store::rebuild`]).
struct Slot {
    /// The key of the stored positions and of the registry row the compare-and-set checks.
    positions: String,
    version: i32,
    /// The `search_path` of a rebuild's transactions (PostgreSQL only).
    search_path: Option<String>,
}

/// What a projector does once [`prepare`] has looked at the read store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The live tables are of this version: apply to them.
    Live,
    /// The live tables are of an older version, and this one is being built beside them
    /// (PostgreSQL): apply to them once the build has been swapped in.
    Building,
}

/// Brings a projection to the version this binary has. A projection never projected is
/// emptied and built from the start of the log. One projected by an older version is rebuilt
/// from the start of the log: on PostgreSQL beside the old tables, which keep answering until
/// the new ones have caught up and are swapped in; on SQLite in place. One projected by a newer
/// version is an error — an old binary must not write into a newer read model.
pub async fn prepare(
    store: &ReadStore,
    projection: &dyn Projection,
) -> Result<Prepared, StoreError> {
    let name = projection.name();
    let mine = projection.version();
    const VERSION: &str = "SELECT version FROM liandong_projections WHERE projection = $1";
    // On SQLite the transaction holds the write lock from its start (`ReadStore::begin`).
    let mut tx = store.begin().await?;
    if let StoreTx::Postgres(_) = tx {
        // Two projectors starting at once must not both rebuild.
        tx.execute("LOCK TABLE liandong_projections IN EXCLUSIVE MODE", &[])
            .await?;
    }
    let stored: Vec<(i32,)> = tx.fetch_all(VERSION, &[name.into()]).await?;
    let prepared = match stored.first().map(|(v,)| *v) {
        None => {
            liandong_store::reset(&mut tx, name, mine, projection.tables()).await?;
            Prepared::Live
        }
        Some(v) if v == mine => Prepared::Live,
        Some(v) if v < mine => match &mut tx {
            // PostgreSQL builds the new version beside the live tables (blue/green).
            StoreTx::Postgres(t) => {
                if liandong_store::rebuild::begin_build_pg(t, name, mine, projection.tables())
                    .await?
                {
                    info!(
                        projection = name,
                        from = v,
                        to = mine,
                        "projection version changed: building the new version beside the old tables, which keep answering"
                    );
                }
                Prepared::Building
            }
            // SQLite rebuilds in place.
            StoreTx::Sqlite(_) => {
                info!(
                    projection = name,
                    from = v,
                    to = mine,
                    "projection version changed: rebuilding from the start of the log"
                );
                liandong_store::reset(&mut tx, name, mine, projection.tables()).await?;
                Prepared::Live
            }
        },
        Some(v) => {
            return Err(StoreError::Superseded {
                projection: name.to_owned(),
                mine,
                stored: v,
            })
        }
    };
    tx.commit().await?;
    Ok(prepared)
}

/// Aborts a spawned task when dropped: a builder does not outlive its projector.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
            inner: Arc::new(Inner {
                store,
                log,
                projection,
                cfg,
                stats: Arc::default(),
            }),
        }
    }

    pub fn stats(&self) -> Arc<ProjectorStats> {
        self.inner.stats.clone()
    }

    /// The consumer group of this projection's current version.
    pub fn group(&self) -> String {
        self.inner.group()
    }

    /// Projects until `shutdown` resolves, or a non-retryable error. A rebuild of the
    /// projection's version found in the read store (a version bump, or `liandong rebuild`) is
    /// built alongside, by a second consumer of the log, and swapped in once caught up.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ProjectorError> {
        let this = self.inner;
        let name = this.projection.name();
        let mine = this.projection.version();
        // A store that does not answer yet (or a busy SQLite file) is waited for, as a batch
        // would be; only a newer version stops the projector.
        let mut backoff = Duration::from_millis(100);
        let mut prepared = loop {
            match prepare(&this.store, this.projection.as_ref()).await {
                Ok(p) => break p,
                Err(e @ StoreError::Superseded { .. }) => return Err(e.into()),
                Err(e) => {
                    warn!(projection = name, error = %e, "cannot prepare the projection; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        let mut consumer = this.log.consumer(&this.group(), Stream::Events).await?;
        info!(projection = name, group = %this.group(), log = this.log.kind(), "projector started");
        let live = Slot {
            positions: name.to_owned(),
            version: mine,
            search_path: None,
        };
        let mut state = State::default();
        let mut builder: Option<AbortOnDrop> = None;
        let mut checked = tokio::time::Instant::now() - Duration::from_secs(60);
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            if checked.elapsed() >= Duration::from_secs(1) {
                checked = tokio::time::Instant::now();
                if matches!(this.store, ReadStore::Postgres(_)) {
                    let building = this
                        .store
                        .projection_version(&liandong_store::rebuild::build_slot(name))
                        .await;
                    match building {
                        Ok(Some(v)) if v == mine => {
                            if builder.as_ref().is_none_or(|b| b.0.is_finished()) {
                                let b = this.clone();
                                builder = Some(AbortOnDrop(tokio::spawn(b.build(mine))));
                            }
                        }
                        Ok(_) => builder = None,
                        Err(e) => {
                            warn!(projection = name, error = %e, "cannot read the rebuild registry")
                        }
                    }
                }
                if prepared == Prepared::Building {
                    match this.store.projection_version(name).await {
                        Ok(Some(v)) if v == mine => {
                            info!(
                                projection = name,
                                version = mine,
                                "the rebuilt version is live"
                            );
                            prepared = Prepared::Live;
                            state.next.clear();
                        }
                        Ok(Some(v)) if v > mine => {
                            return Err(StoreError::Superseded {
                                projection: name.to_owned(),
                                mine,
                                stored: v,
                            }
                            .into())
                        }
                        Ok(_) if builder.is_none() => {
                            // The build row is gone but the version is not ours: start again.
                            prepared = prepare(&this.store, this.projection.as_ref()).await?;
                        }
                        _ => {}
                    }
                }
            }
            if prepared == Prepared::Building {
                // Nothing to apply to the live tables until the build is swapped in.
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                }
            }
            let polled = tokio::select! {
                _ = &mut shutdown => break,
                polled = consumer.poll(this.cfg.max_batch, this.cfg.poll_wait) => polled,
            };
            let outcome = match polled {
                Ok(batch) => this.step(&live, consumer.as_mut(), &mut state, batch).await,
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
                    warn!(projection = name, error = %e, "batch not applied; retrying from the stored positions");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        info!(projection = name, "projector stopped");
        Ok(())
    }
}

impl Inner {
    fn group(&self) -> String {
        format!(
            "{}.projector.{}.v{}",
            self.cfg.group_prefix,
            self.projection.name(),
            self.projection.version()
        )
    }

    /// Builds `version` of the projection into its rebuild schema from the start of the log,
    /// and swaps it in once its positions reach the log's end. Every projector process of the
    /// projection runs one; they share the build's partitions as a consumer group, and the
    /// first to see the build caught up swaps it.
    async fn build(self: Arc<Self>, version: i32) {
        let name = self.projection.name();
        let ReadStore::Postgres(pool) = &self.store else {
            return;
        };
        let search_path = loop {
            match pool.acquire().await {
                Ok(mut c) => match liandong_store::rebuild::build_search_path(&mut c, name).await {
                    Ok(p) => break p,
                    Err(e) => {
                        warn!(projection = name, error = %e, "rebuild: cannot read the schema")
                    }
                },
                Err(e) => warn!(projection = name, error = %e, "rebuild: no connection"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let slot = Slot {
            positions: liandong_store::rebuild::build_slot(name),
            version,
            search_path: Some(search_path),
        };
        let group = format!("{}.build", self.group());
        let mut consumer = loop {
            match self.log.consumer(&group, Stream::Events).await {
                Ok(c) => break c,
                Err(e) => warn!(projection = name, error = %e, "rebuild: cannot consume the log"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        info!(projection = name, version, group = %group, "rebuilding beside the live tables");
        let mut state = State::default();
        let mut checked = tokio::time::Instant::now() - Duration::from_secs(60);
        let mut backoff = Duration::from_millis(100);
        loop {
            let polled = consumer.poll(self.cfg.max_batch, self.cfg.poll_wait).await;
            let idle = polled.as_ref().is_ok_and(|b| b.is_empty());
            let outcome = match polled {
                Ok(batch) => self.step(&slot, consumer.as_mut(), &mut state, batch).await,
                Err(e) => Err(ProjectorError::Log(e)),
            };
            match outcome {
                Ok(()) => backoff = Duration::from_millis(100),
                // The build was swapped in, or replaced, by another process.
                Err(ProjectorError::Store(StoreError::Superseded { .. })) => return,
                Err(e) => {
                    warn!(projection = name, error = %e, "rebuild batch not applied; retrying from the stored positions");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
            if idle || checked.elapsed() >= Duration::from_secs(1) {
                checked = tokio::time::Instant::now();
                match self.try_swap(&slot).await {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => {
                        warn!(projection = name, error = %e, "rebuild: cannot check progress")
                    }
                }
            }
        }
    }

    /// Records the log's end for progress reports; swaps the build in when it has reached it.
    /// Returns whether the build is over (swapped by this process or another).
    async fn try_swap(&self, slot: &Slot) -> Result<bool, ProjectorError> {
        let name = self.projection.name();
        let ReadStore::Postgres(pool) = &self.store else {
            return Ok(true);
        };
        let ends = self.log.end_offsets(Stream::Events).await?;
        if self.store.projection_version(&slot.positions).await? != Some(slot.version) {
            return Ok(true);
        }
        let mut conn = pool.acquire().await.map_err(StoreError::from)?;
        liandong_store::rebuild::record_ends_pg(&mut conn, name, &ends).await?;
        drop(conn);
        let positions: HashMap<i32, i64> = self
            .store
            .positions(&slot.positions)
            .await?
            .into_iter()
            .collect();
        let behind = ends
            .iter()
            .any(|(p, end)| positions.get(p).copied().unwrap_or(0) < *end);
        if behind {
            return Ok(false);
        }
        let mut tx = pool.begin().await.map_err(StoreError::from)?;
        let swapped =
            liandong_store::rebuild::swap_pg(&mut tx, name, self.projection.tables()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if swapped {
            info!(
                projection = name,
                version = slot.version,
                "rebuild caught up: swapped in"
            );
        }
        Ok(true)
    }

    /// Applies one polled batch. On any failure the partitions it touched are re-read from
    /// their stored positions, so nothing polled is lost by an error.
    async fn step(
        &self,
        slot: &Slot,
        consumer: &mut dyn LogConsumer,
        state: &mut State,
        batch: Vec<Delivered>,
    ) -> Result<(), ProjectorError> {
        if consumer.generation() != state.generation {
            // A rebalance: partitions may have been projected elsewhere meanwhile.
            state.generation = consumer.generation();
            state.next.clear();
            state.sought_gap.clear();
        }
        if batch.is_empty() {
            return Ok(());
        }
        let name = self.projection.name();
        let key = slot.positions.as_str();
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
                    let n = self.store.position(key, p).await?;
                    state.next.insert(p, n);
                    if rec.offset > n {
                        // The consumer starts elsewhere (the broker's committed offset, or the
                        // embedded log's start): go to the stored position first.
                        debug!(
                            projection = name,
                            slot = key,
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
            let expected = advances.get(&p).map_or(next, |a| a.to);
            if rec.offset > expected {
                if state.sought_gap.get(&p) != Some(&expected) {
                    // A fetch that left records out: read the partition again from the first
                    // one missing (this batch keeps what came before it).
                    debug!(
                        projection = name,
                        slot = key,
                        partition = p,
                        expected,
                        delivered = rec.offset,
                        "the log skipped offsets: reading them again"
                    );
                    state.sought_gap.insert(p, expected);
                    consumer.seek(p, expected).await?;
                    seeking.push(p);
                    continue;
                }
                state.sought_gap.remove(&p);
                self.stats
                    .skipped_offsets
                    .fetch_add((rec.offset - expected) as u64, Ordering::Relaxed);
                metrics::counter!(SKIPPED_OFFSETS, "projection" => name)
                    .increment((rec.offset - expected) as u64);
                warn!(
                    projection = name,
                    slot = key,
                    partition = p,
                    expected,
                    delivered = rec.offset,
                    "the log skipped offsets twice: the records between are not in it"
                );
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
        match self.commit(slot, &events, &advances).await {
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
                    match self.store.position(key, a.partition).await {
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

    async fn commit(
        &self,
        slot: &Slot,
        events: &[Event],
        advances: &[Advance],
    ) -> Result<(), StoreError> {
        let (key, version) = (slot.positions.as_str(), slot.version);
        let mut tx = self.store.begin().await?;
        if let Some(path) = &slot.search_path {
            // A rebuild (PostgreSQL only) writes its own copies of the projection's tables.
            tx.execute(&format!("SET LOCAL search_path TO {path}"), &[])
                .await?;
        }
        // Batches of several instances apply concurrently: the projection serializes only what
        // two of them share (an identifier, a member, an A/B experiment) with locks inside this
        // transaction; positions move by compare-and-set.
        self.projection.apply(Tx::from(&mut tx), events).await?;
        liandong_store::advance(&mut tx, key, version, advances).await?;
        tx.commit().await
    }
}

#[derive(Default)]
struct State {
    generation: u64,
    /// Next offset to apply of each partition, as last read from or written to the store.
    next: HashMap<i32, i64>,
    /// Per partition, the offset the log skipped last and was sought back to: skipped again,
    /// the gap is taken as the log's (see [`ProjectorStats::skipped_offsets`]).
    sought_gap: HashMap<i32, i64>,
}

/// Where a projection stands against the end of the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub projection: String,
    pub version: Option<i32>,
    /// Records in the log not yet applied, over all partitions.
    pub lag: i64,
    pub partitions: Vec<PartitionStatus>,
    /// A rebuild under way beside the live tables (PostgreSQL), if any.
    pub rebuild: Option<RebuildStatus>,
}

/// How far a rebuild has come: its positions against the log's end, over all partitions.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RebuildStatus {
    /// The version being built.
    pub version: i32,
    /// Records applied to the rebuild's tables.
    pub position: i64,
    /// Records in the log.
    pub end: i64,
    /// Records still to apply before the rebuild can be swapped in.
    pub lag: i64,
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
        let rebuild = match liandong_store::rebuild::under_way(store, p.name()).await? {
            Some(liandong_store::rebuild::Build {
                version, positions, ..
            }) => {
                let built: HashMap<i32, i64> = positions.into_iter().collect();
                let position: i64 = ends
                    .iter()
                    .map(|(p, end)| built.get(p).copied().unwrap_or(0).min(*end))
                    .sum();
                let end: i64 = ends.iter().map(|(_, e)| e).sum();
                Some(RebuildStatus {
                    version,
                    position,
                    end,
                    lag: end - position,
                })
            }
            None => None,
        };
        out.push(ProjectionStatus {
            projection: p.name().to_owned(),
            version: store.projection_version(p.name()).await?,
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
            rebuild,
        });
    }
    Ok(out)
}
