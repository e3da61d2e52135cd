//! The event log behind one trait: ingestion appends, projectors consume.
//! Two adapters implement [`EventLog`]: [`KafkaLog`] and the single-node [`EmbeddedLog`]; both
//! pass the same contract suite (`tests/contract.rs`), so the rest of the workspace never cares which.

use std::time::Duration;

mod embedded;
mod frame;
mod kafka;

pub use embedded::EmbeddedLog;
pub use kafka::{KafkaConfig, KafkaLog};

/// A logical stream of the log. Kafka maps each to a topic `<prefix>.events` / `<prefix>.dead-letter`;
/// the embedded log maps each to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Events,
    DeadLetter,
}

impl Stream {
    /// Suffix used for Kafka topic names and embedded file names.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Events => "events",
            Stream::DeadLetter => "dead-letter",
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One record to append. `key` decides the partition (Kafka), `event_id` travels as the
/// `event_id` header so consumers can dedupe without decoding the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub event_id: String,
    pub payload: Vec<u8>,
}

/// A record read back from the log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub event_id: String,
    pub payload: Vec<u8>,
}

#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// retryable: broker unreachable, queue full, delivery timed out. Ingestion answers 503 + Retry-After.
    #[error("event log unavailable: {reason} (retry after {retry_after:?})")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
    /// not retryable (misconfiguration, corrupt file, ...)
    #[error("event log error: {0}")]
    Fatal(String),
}

impl LogError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable { .. })
    }

    pub(crate) fn unavailable(reason: impl Into<String>, retry_after: Duration) -> Self {
        LogError::Unavailable {
            reason: reason.into(),
            retry_after,
        }
    }
}

#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends all records; Ok only when every one is durable (Kafka: acked by all ISR, acks=all; embedded: fsynced).
    /// Partial failure is an error (the caller retries the whole batch; event ids dedupe downstream).
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError>;

    /// For every partition of the stream: the offset one past the last record (the "end" / high watermark).
    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError>;

    /// A consumer of `stream` in consumer group `group` (Kafka consumer group; embedded: ignored, one reader).
    async fn consumer(&self, group: &str, stream: Stream)
        -> Result<Box<dyn LogConsumer>, LogError>;

    /// Human name for logs/status: "kafka" or "embedded".
    fn kind(&self) -> &'static str;
}

#[async_trait::async_trait]
pub trait LogConsumer: Send {
    /// Up to `max` records, waiting at most `wait` for the first one (returns empty vec on timeout).
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError>;

    /// Next poll for `partition` starts at `offset`. Records of that partition fetched before the seek
    /// must not be delivered afterwards.
    ///
    /// Kafka: seeking a partition that is not currently assigned to this consumer is a no-op (nothing of
    /// it would be delivered anyway, and a later assignment changes [`generation`](Self::generation)).
    async fn seek(&mut self, partition: i32, offset: i64) -> Result<(), LogError>;

    /// Changes whenever the set of partitions assigned to this consumer changes (Kafka rebalance). The
    /// projector reloads its positions from its database when it changes. Embedded: constant.
    ///
    /// 0 means "nothing assigned yet"; the embedded log is constantly 1 (its single partition is
    /// assigned from the start), so a projector starting from 0 loads its positions exactly once.
    fn generation(&self) -> u64;

    /// After the projector committed positions (next offsets to read) in its own DB, it calls this; Kafka:
    /// async commit of these offsets to the group (a hint for monitoring and fast resume); embedded: no-op.
    async fn commit_hint(&mut self, positions: &[(i32, i64)]);
}

/// Runs blocking work off the async workers, turning a panicked or cancelled task into a fatal error
/// instead of propagating the panic into the caller.
pub(crate) async fn blocking<T, F>(what: &'static str, f: F) -> Result<T, LogError>
where
    F: FnOnce() -> Result<T, LogError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Fatal(format!("{what}: blocking task failed: {e}")))?
}
