//! The runtime's promise, tested with a projection that is NOT idempotent (it counts): a
//! projector cancelled at any await point — mid-batch, mid-transaction, mid-commit — and
//! restarted applies every record exactly once; a version bump rebuilds from the start of the
//! log while appends go on. Run on both read stores, over the embedded log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liandong_event::{Event, Schemas};
use liandong_log::{EmbeddedLog, EventLog, Record, Stream};
use liandong_projections::{Projection, Tx};
use liandong_projector::{status, Projector, ProjectorConfig};
use liandong_store::{ReadStore, StoreError};
use liandong_testkit::{on_both_stores, scenario, TestStore};
use rand::{Rng, SeedableRng};

/// Counts how often each event was applied.
struct Counting {
    version: i32,
}

#[async_trait]
impl Projection for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn tables(&self) -> &'static [&'static str] {
        &["test_applied"]
    }
    async fn apply(&self, tx: Tx<'_>, events: &[Event]) -> Result<(), StoreError> {
        const UPSERT: &str = "INSERT INTO test_applied (event_id, times) VALUES ($1, 1)
            ON CONFLICT (event_id) DO UPDATE SET times = test_applied.times + 1";
        match tx {
            Tx::Postgres(c) => {
                for e in events {
                    sqlx::query(UPSERT)
                        .bind(e.event_id.to_string())
                        .execute(&mut *c)
                        .await?;
                }
            }
            Tx::Sqlite(c) => {
                for e in events {
                    sqlx::query(UPSERT)
                        .bind(e.event_id.to_string())
                        .execute(&mut *c)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

async fn setup(store: &ReadStore) {
    store.init().await.unwrap();
    const DDL: &str = "CREATE TABLE IF NOT EXISTS test_applied (event_id TEXT PRIMARY KEY, times BIGINT NOT NULL)";
    match store {
        ReadStore::Postgres(p) => sqlx::query(DDL).execute(p).await.map(drop).unwrap(),
        ReadStore::Sqlite(p) => sqlx::query(DDL).execute(p).await.map(drop).unwrap(),
    }
}

async fn applied(store: &ReadStore) -> Vec<(String, i64)> {
    const Q: &str = "SELECT event_id, times FROM test_applied ORDER BY event_id";
    match store {
        ReadStore::Postgres(p) => sqlx::query_as(Q).fetch_all(p).await.unwrap(),
        ReadStore::Sqlite(p) => sqlx::query_as(Q).fetch_all(p).await.unwrap(),
    }
}

fn records(seed: u64) -> Vec<Record> {
    let schemas = Schemas::load().unwrap();
    let now: DateTime<Utc> = Utc::now();
    let shape = scenario::Shape {
        seed,
        members: 100,
        events_per_member: 10,
        ..Default::default()
    };
    scenario::events(&shape)
        .iter()
        .map(|v| {
            let e = schemas.validate(v, now).unwrap();
            Record {
                key: e.user.own_member_key(),
                event_id: e.event_id.to_string(),
                payload: serde_json::to_vec(&e).unwrap(),
            }
        })
        .collect()
}

fn projector(store: &ReadStore, log: &Arc<EmbeddedLog>, version: i32, batch: usize) -> Projector {
    let log: Arc<dyn EventLog> = log.clone();
    Projector::new(
        store.clone(),
        log,
        Arc::new(Counting { version }),
        ProjectorConfig {
            group_prefix: "test".into(),
            max_batch: batch,
            poll_wait: Duration::from_millis(20),
        },
    )
}

/// Runs a projector until the log is fully applied.
async fn catch_up(store: &ReadStore, log: &Arc<EmbeddedLog>, version: i32) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector(store, log, version, 500).run(async {
        let _ = stopped.await;
    }));
    let p = Counting { version };
    for _ in 0..600 {
        let st = status(store, log.as_ref(), &[&p]).await.unwrap();
        if st[0].lag == 0 && st[0].version == Some(version) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

async fn cancelled_anywhere_applies_each_record_exactly_once(db: &TestStore) {
    let store = db.store();
    setup(store).await;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    let first = records(1);
    for chunk in first.chunks(97) {
        log.append(Stream::Events, chunk.to_vec()).await.unwrap();
    }

    // Cancel projectors at random instants: the future is dropped wherever it is awaiting,
    // including inside the transaction and inside its commit.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut cancelled_mid_stream = 0;
    for _ in 0..60 {
        let before = applied(store).await.len();
        if before == first.len() {
            break;
        }
        let task = tokio::spawn(
            projector(store, &log, 1, rng.gen_range(1..8)).run(std::future::pending()),
        );
        // Wait until this projector has committed something, then cancel it at a random
        // instant: it is then somewhere in its next batch, wherever that is.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while applied(store).await.len() == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_micros(rng.gen_range(0..3_000))).await;
        task.abort();
        let _ = task.await;
        if applied(store).await.len() < first.len() {
            cancelled_mid_stream += 1;
        }
    }
    assert!(
        cancelled_mid_stream >= 4,
        "only {cancelled_mid_stream} cancellations landed mid-stream"
    );
    catch_up(store, &log, 1).await;
    let got = applied(store).await;
    assert_eq!(got.len(), first.len());
    assert!(
        got.iter().all(|(_, times)| *times == 1),
        "some record applied twice: {:?}",
        got.iter().find(|r| r.1 != 1)
    );

    // Version 2 rebuilds from the start of the log while appends go on.
    let second = records(2);
    let appender = {
        let log = log.clone();
        let second = second.clone();
        tokio::spawn(async move {
            for chunk in second.chunks(50) {
                log.append(Stream::Events, chunk.to_vec()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let rebuild = tokio::spawn(projector(store, &log, 2, 100).run(std::future::pending()));
    appender.await.unwrap();
    rebuild.abort();
    let _ = rebuild.await;
    catch_up(store, &log, 2).await;
    let got = applied(store).await;
    assert_eq!(got.len(), first.len() + second.len());
    assert!(got.iter().all(|(_, times)| *times == 1));

    // The old version may no longer write.
    let old = projector(store, &log, 1, 100)
        .run(std::future::pending())
        .await;
    assert!(
        matches!(
            old,
            Err(liandong_projector::ProjectorError::Store(
                StoreError::Superseded { .. }
            ))
        ),
        "{old:?}"
    );
}
on_both_stores!(cancelled_anywhere_applies_each_record_exactly_once);

/// A log whose first fetch of ten or more records leaves four of them out (as a broker did in
/// the parallel bench: tansu's `memory://` engine), and is whole after that.
struct SkipsOnce {
    inner: Arc<EmbeddedLog>,
    skipped: Arc<std::sync::atomic::AtomicBool>,
}

struct SkippingConsumer {
    inner: Box<dyn liandong_log::LogConsumer>,
    skipped: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl EventLog for SkipsOnce {
    async fn append(
        &self,
        stream: Stream,
        records: Vec<Record>,
    ) -> Result<(), liandong_log::LogError> {
        self.inner.append(stream, records).await
    }
    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, liandong_log::LogError> {
        self.inner.end_offsets(stream).await
    }
    async fn consumer(
        &self,
        group: &str,
        stream: Stream,
    ) -> Result<Box<dyn liandong_log::LogConsumer>, liandong_log::LogError> {
        Ok(Box::new(SkippingConsumer {
            inner: self.inner.consumer(group, stream).await?,
            skipped: self.skipped.clone(),
        }))
    }
    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[async_trait]
impl liandong_log::LogConsumer for SkippingConsumer {
    async fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<liandong_log::Delivered>, liandong_log::LogError> {
        let mut batch = self.inner.poll(max, wait).await?;
        if batch.len() >= 10 && !self.skipped.swap(true, std::sync::atomic::Ordering::SeqCst) {
            batch.drain(3..7);
        }
        Ok(batch)
    }
    async fn seek(&mut self, partition: i32, offset: i64) -> Result<(), liandong_log::LogError> {
        self.inner.seek(partition, offset).await
    }
    fn generation(&self) -> u64 {
        self.inner.generation()
    }
    async fn commit_hint(&mut self, positions: &[(i32, i64)]) {
        self.inner.commit_hint(positions).await
    }
}

/// A fetch that leaves records out is read again from the first one missing: every record is
/// applied once, none is stepped over. Without the seek back, the positions passed the four
/// records and the log's end was reached with them never applied.
async fn records_a_fetch_left_out_are_read_again(db: &TestStore) {
    let store = db.store();
    setup(store).await;
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedLog::open(dir.path()).unwrap();
    let all = records(3);
    embedded.append(Stream::Events, all.clone()).await.unwrap();
    let skipped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log: Arc<dyn EventLog> = Arc::new(SkipsOnce {
        inner: embedded,
        skipped: skipped.clone(),
    });
    let p = Projector::new(
        store.clone(),
        log.clone(),
        Arc::new(Counting { version: 1 }),
        ProjectorConfig {
            group_prefix: "test".into(),
            max_batch: 100,
            poll_wait: Duration::from_millis(20),
        },
    );
    let stats = p.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(p.run(async {
        let _ = stopped.await;
    }));
    let counting = Counting { version: 1 };
    for _ in 0..600 {
        let st = status(store, log.as_ref(), &[&counting]).await.unwrap();
        if st[0].lag == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    assert!(
        skipped.load(std::sync::atomic::Ordering::SeqCst),
        "the log left records out"
    );
    let got = applied(store).await;
    assert_eq!(got.len(), all.len(), "every record applied");
    assert!(got.iter().all(|(_, times)| *times == 1));
    assert_eq!(
        stats
            .skipped_offsets
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the records were there when read again"
    );
}
on_both_stores!(records_a_fetch_left_out_are_read_again);
