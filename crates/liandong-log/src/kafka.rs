//! Kafka adapter (librdkafka via rdkafka): topics `<prefix>.events` and `<prefix>.dead-letter`.
//! Invariants: the producer is idempotent with acks=all, so an Ok append survived every in-sync
//! replica; consumers never auto-commit, because the projector's own database holds the positions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::join_all;
use futures::{FutureExt, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::{blocking, Delivered, EventLog, LogConsumer, LogError, Record, Stream};

const EVENT_ID_HEADER: &str = "event_id";
/// How long a produced record may wait for acknowledgement (including librdkafka's own retries)
/// before `append` gives up with a retryable error. Ingestion holds the HTTP request for at most
/// this long, so it stays well under typical client timeouts; override with `message.timeout.ms`.
const DEFAULT_MESSAGE_TIMEOUT_MS: &str = "30000";
/// Bounds the local producer queue. When it is full, `append` fails fast with a retryable error
/// instead of buffering without limit while the brokers are slow or gone.
const DEFAULT_QUEUE_MAX_MESSAGES: &str = "100000";
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `connect` waits for freshly created topics to show up in metadata.
const TOPIC_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);
const RETRY_QUEUE_FULL: Duration = Duration::from_secs(1);
const RETRY_BROKER: Duration = Duration::from_secs(5);

/// Connection settings for [`KafkaLog::connect`].
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`, e.g. `kafka-1:9092,kafka-2:9092`.
    pub brokers: String,
    /// Topics are `<topic_prefix>.events` and `<topic_prefix>.dead-letter`.
    pub topic_prefix: String,
    /// Partition count used when creating topics.
    pub partitions: i32,
    /// Replication factor used when creating topics; -1 means the broker default.
    pub replication_factor: i32,
    /// Extra librdkafka settings passed to producer, consumer and admin client, e.g.
    /// `session.timeout.ms=6000`. They override defaults but not the settings the log's guarantees
    /// rest on (acks, idempotence, offset commit mode, group id, offset reset), which win with a warning.
    pub client_options: Vec<(String, String)>,
    /// Create missing topics on connect (ignoring "already exists").
    pub create_topics: bool,
}

impl KafkaConfig {
    pub fn topic(&self, stream: Stream) -> String {
        format!("{}.{}", self.topic_prefix, stream.name())
    }

    fn client_config(&self, defaults: &[(&str, &str)], required: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.client_options {
            config.set(k, v);
        }
        for (k, v) in required {
            if let Some(user) = self.client_options.iter().find(|(uk, _)| uk == k) {
                if user.1 != *v {
                    warn!(setting = k, ignored = %user.1, used = v, "kafka client option overridden: the event log relies on it");
                }
            }
            config.set(*k, *v);
        }
        config
    }

    fn producer_config(&self) -> ClientConfig {
        self.client_config(
            &[
                ("linger.ms", "5"),
                ("message.timeout.ms", DEFAULT_MESSAGE_TIMEOUT_MS),
                ("queue.buffering.max.messages", DEFAULT_QUEUE_MAX_MESSAGES),
                // Same key -> partition mapping as the Java client, so other producers agree.
                ("partitioner", "murmur2_random"),
                // Topics are managed explicitly; a typo'd prefix must fail, not create topics.
                ("allow.auto.create.topics", "false"),
            ],
            &[("enable.idempotence", "true"), ("acks", "all")],
        )
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        self.client_config(
            &[
                ("isolation.level", "read_committed"),
                ("allow.auto.create.topics", "false"),
            ],
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                // A new group must see the whole history, or read models silently miss events.
                ("auto.offset.reset", "earliest"),
            ],
        )
    }

    fn validate(&self) -> Result<(), LogError> {
        let bad = |why: String| {
            Err(LogError::Fatal(format!(
                "invalid kafka configuration: {why}"
            )))
        };
        if self.brokers.trim().is_empty() {
            return bad("no brokers given".into());
        }
        if self.topic_prefix.is_empty() {
            return bad("empty topic prefix".into());
        }
        if self.partitions < 1 {
            return bad(format!(
                "partitions must be at least 1, got {}",
                self.partitions
            ));
        }
        if self.replication_factor < 1 && self.replication_factor != -1 {
            return bad(format!(
                "replication factor must be at least 1 (or -1 for the broker default), got {}",
                self.replication_factor
            ));
        }
        Ok(())
    }
}

/// Routes librdkafka's logs and errors into `tracing` (the default context uses the `log` crate).
#[derive(Clone, Default)]
struct TracingContext;

fn log_rdkafka(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            error!(target: "librdkafka", facility = fac, "{message}")
        }
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", facility = fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(target: "librdkafka", facility = fac, "{message}")
        }
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", facility = fac, "{message}"),
    }
}

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_rdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Mostly transient connection trouble that librdkafka retries on its own.
        warn!(target: "librdkafka", %error, "{reason}");
    }
}

type KafkaProducer = FutureProducer<TracingContext>;

/// The Kafka event log. Cheap to share: [`KafkaLog::connect`] returns it in an `Arc`.
pub struct KafkaLog {
    cfg: KafkaConfig,
    /// Replaced when librdkafka reports a fatal producer error (the handle is unusable afterwards).
    producer: RwLock<Arc<KafkaProducer>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.cfg.brokers)
            .field("topic_prefix", &self.cfg.topic_prefix)
            .finish()
    }
}

impl KafkaLog {
    /// Connects, creates the two topics if asked to and they are missing, and checks that both
    /// exist. Unreachable brokers give a retryable [`LogError::Unavailable`]; bad settings or
    /// missing topics give [`LogError::Fatal`].
    pub async fn connect(cfg: KafkaConfig) -> Result<Arc<Self>, LogError> {
        cfg.validate()?;
        if cfg.create_topics {
            create_topics(&cfg).await?;
        }
        let producer = Arc::new(new_producer(&cfg)?);
        let topics = [cfg.topic(Stream::Events), cfg.topic(Stream::DeadLetter)];
        for topic in topics {
            let counts = {
                let (producer, topic) = (Arc::clone(&producer), topic.clone());
                let wait_for_creation = cfg.create_topics;
                blocking("kafka metadata", move || {
                    partitions_of(&producer, &topic, wait_for_creation)
                })
                .await?
            };
            if counts.len() != cfg.partitions as usize {
                warn!(topic, existing = counts.len(), configured = cfg.partitions,
                    "topic exists with a different partition count than configured; using the existing one");
            }
        }
        info!(brokers = %cfg.brokers, prefix = %cfg.topic_prefix, "connected to kafka");
        Ok(Arc::new(KafkaLog {
            cfg,
            producer: RwLock::new(producer),
        }))
    }

    fn producer(&self) -> Arc<KafkaProducer> {
        Arc::clone(&self.producer.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Maps a produce error; a fatal producer error also swaps in a fresh producer so the
    /// caller's retry can succeed instead of the process needing a restart.
    fn produce_error(&self, used: &Arc<KafkaProducer>, err: &KafkaError) -> LogError {
        match err.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Fatal) => {
                let detail = used
                    .client()
                    .fatal_error()
                    .map(|(code, why)| format!("{code}: {why}"))
                    .unwrap_or_else(|| err.to_string());
                let mut current = self.producer.write().unwrap_or_else(|p| p.into_inner());
                if !Arc::ptr_eq(&current, used) {
                    // Another append already replaced it.
                    return LogError::unavailable(
                        format!("producer failed: {detail}"),
                        RETRY_QUEUE_FULL,
                    );
                }
                match new_producer(&self.cfg) {
                    Ok(fresh) => {
                        error!(%detail, "kafka producer hit a fatal error; replaced it");
                        *current = Arc::new(fresh);
                        LogError::unavailable(
                            format!("producer failed: {detail}"),
                            RETRY_QUEUE_FULL,
                        )
                    }
                    Err(e) => LogError::Fatal(format!(
                        "producer failed ({detail}) and could not be recreated: {e}"
                    )),
                }
            }
            _ => classify("produce", err),
        }
    }
}

fn new_producer(cfg: &KafkaConfig) -> Result<KafkaProducer, LogError> {
    cfg.producer_config()
        .create_with_context(TracingContext)
        .map_err(|e| LogError::Fatal(format!("cannot create kafka producer: {e}")))
}

async fn create_topics(cfg: &KafkaConfig) -> Result<(), LogError> {
    let admin: AdminClient<TracingContext> = cfg
        .client_config(&[], &[])
        .create_with_context(TracingContext)
        .map_err(|e| LogError::Fatal(format!("cannot create kafka admin client: {e}")))?;
    let names = [cfg.topic(Stream::Events), cfg.topic(Stream::DeadLetter)];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            NewTopic::new(
                n,
                cfg.partitions,
                TopicReplication::Fixed(cfg.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(ADMIN_TIMEOUT))
        .request_timeout(Some(ADMIN_TIMEOUT));
    // librdkafka enforces the request timeout itself; the outer one only guards against a lost reply.
    let results = tokio::time::timeout(
        ADMIN_TIMEOUT + Duration::from_secs(5),
        admin.create_topics(&topics, &opts),
    )
    .await
    .map_err(|_| LogError::unavailable("timed out creating kafka topics", RETRY_BROKER))?
    .map_err(|e| classify("create topics", &e))?;
    for result in results {
        match result {
            Ok(name) => info!(topic = name, "created kafka topic"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(topic = name, "kafka topic exists")
            }
            Err((name, code)) => {
                let why = format!("cannot create kafka topic {name}: {code}");
                return Err(if is_permanent(code) {
                    LogError::Fatal(why)
                } else {
                    LogError::unavailable(why, RETRY_BROKER)
                });
            }
        }
    }
    Ok(())
}

/// Partition ids of `topic` (blocking). With `wait_for_creation`, an unknown topic is retried for a
/// while, since a just-created topic takes a moment to appear in every broker's metadata.
fn partitions_of(
    producer: &KafkaProducer,
    topic: &str,
    wait_for_creation: bool,
) -> Result<Vec<i32>, LogError> {
    let deadline = std::time::Instant::now() + TOPIC_PROPAGATION_TIMEOUT;
    loop {
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|e| classify("fetch metadata", &e))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        let problem = match found {
            None => Some("missing from metadata".to_string()),
            Some(t) => match t.error() {
                Some(e) => Some(RDKafkaErrorCode::from(e).to_string()),
                None if t.partitions().is_empty() => Some("no partitions".into()),
                None => {
                    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                    ids.sort_unstable();
                    return Ok(ids);
                }
            },
        };
        let problem = problem.unwrap_or_default();
        if !wait_for_creation || std::time::Instant::now() >= deadline {
            return Err(LogError::Fatal(format!(
                "kafka topic {topic} is not usable ({problem}); create it or enable topic creation"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Errors no retry can fix: the request itself or the configuration is wrong.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::UnknownPartition
            | C::InvalidTopic
            | C::InvalidRequiredAcks
            | C::InvalidPartitions
            | C::InvalidReplicationFactor
            | C::InvalidReplicaAssignment
            | C::InvalidConfig
            | C::PolicyViolation
            | C::InvalidArgument
            | C::InvalidType
            | C::UnsupportedVersion
            | C::UnsupportedForMessageFormat
            | C::UnsupportedFeature
            | C::UnsupportedCompressionType
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::InvalidGroupId
            | C::InvalidSessionTimeout
            | C::Fatal
    )
}

fn classify(during: &str, err: &KafkaError) -> LogError {
    let reason = format!("kafka {during} failed: {err}");
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => LogError::unavailable(reason, RETRY_QUEUE_FULL),
        Some(code) if is_permanent(code) => LogError::Fatal(reason),
        // Timeouts, unreachable brokers, leader changes, too few in-sync replicas, ...
        Some(_) => LogError::unavailable(reason, RETRY_BROKER),
        // No error code: a client-side problem such as an invalid string in the configuration.
        None => match err {
            KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..) | KafkaError::Nul(_) => {
                LogError::Fatal(reason)
            }
            _ => LogError::unavailable(reason, RETRY_BROKER),
        },
    }
}

#[async_trait::async_trait]
impl EventLog for KafkaLog {
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let topic = self.cfg.topic(stream);
        let producer = self.producer();
        let mut deliveries = Vec::with_capacity(records.len());
        for r in &records {
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: EVENT_ID_HEADER,
                value: Some(r.event_id.as_bytes()),
            });
            let mut record = FutureRecord::to(&topic)
                .payload(r.payload.as_slice())
                .headers(headers);
            // No key lets the partitioner spread records instead of piling them on one partition.
            if !r.key.is_empty() {
                record = record.key(r.key.as_bytes());
            }
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                // Records enqueued so far are still delivered; the retry duplicates them, which the
                // event ids dedupe downstream.
                Err((e, _)) => return Err(self.produce_error(&producer, &e)),
            }
        }
        let mut failure: Option<LogError> = None;
        for result in join_all(deliveries).await {
            let err = match result {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => self.produce_error(&producer, &e),
                Err(_canceled) => {
                    LogError::Fatal("kafka producer shut down before delivery".into())
                }
            };
            // Report a permanent failure over a transient one, or the caller would retry forever.
            if failure.as_ref().is_none_or(LogError::is_retryable) {
                failure = Some(err);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError> {
        let producer = self.producer();
        let topic = self.cfg.topic(stream);
        blocking("kafka end offsets", move || {
            partitions_of(&producer, &topic, false)?
                .into_iter()
                .map(|p| {
                    producer
                        .client()
                        .fetch_watermarks(&topic, p, METADATA_TIMEOUT)
                        .map(|(_low, high)| (p, high))
                        .map_err(|e| classify("fetch watermarks", &e))
                })
                .collect()
        })
        .await
    }

    async fn consumer(
        &self,
        group: &str,
        stream: Stream,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        if group.is_empty() {
            return Err(LogError::Fatal(
                "kafka consumer group must not be empty".into(),
            ));
        }
        let topic = self.cfg.topic(stream);
        let consumer: StreamConsumer<GroupContext> = self
            .cfg
            .consumer_config(group)
            .create_with_context(GroupContext::default())
            .map_err(|e| LogError::Fatal(format!("cannot create kafka consumer: {e}")))?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| classify("subscribe", &e))?;
        Ok(Box::new(KafkaConsumer {
            consumer: Some(Arc::new(consumer)),
            topic,
        }))
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }
}

/// Counts assignment changes; rebalance callbacks run inside `poll` on the polling task.
#[derive(Default)]
struct GroupContext {
    generation: AtomicU64,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_rdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(target: "librdkafka", %error, "{reason}");
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Revocations count too: after an eager rebalance librdkafka restarts fetching at the
            // group's committed offsets, so the projector must re-seek even if it got the same set.
            Rebalance::Assign(tpl) | Rebalance::Revoke(tpl) => {
                let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                debug!(
                    generation,
                    partitions = tpl.count(),
                    assign = matches!(rebalance, Rebalance::Assign(_)),
                    "kafka rebalance"
                );
            }
            Rebalance::Error(e) => warn!(error = %e, "kafka rebalance failed"),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            // Only a hint: the projector's database is authoritative, so this merely delays resume.
            warn!(error = %e, "kafka offset commit failed");
        }
    }
}

struct KafkaConsumer {
    /// `None` only during drop.
    consumer: Option<Arc<StreamConsumer<GroupContext>>>,
    topic: String,
}

impl KafkaConsumer {
    fn handle(&self) -> Result<&Arc<StreamConsumer<GroupContext>>, LogError> {
        self.consumer
            .as_ref()
            .ok_or_else(|| LogError::Fatal("kafka consumer already closed".into()))
    }
}

fn delivered(msg: &BorrowedMessage<'_>) -> Delivered {
    let text = |bytes: Option<&[u8]>, what: &str| match bytes.map(std::str::from_utf8) {
        None => String::new(),
        Some(Ok(s)) => s.to_owned(),
        Some(Err(_)) => {
            warn!(
                partition = msg.partition(),
                offset = msg.offset(),
                "record {what} is not UTF-8; replaced invalid bytes"
            );
            String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
        }
    };
    let event_id = msg
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == EVENT_ID_HEADER))
        .and_then(|h| h.value);
    if event_id.is_none() {
        // Written by some other producer; deliver it so the projector can dead-letter it.
        warn!(
            partition = msg.partition(),
            offset = msg.offset(),
            "record has no event_id header"
        );
    }
    Delivered {
        partition: msg.partition(),
        offset: msg.offset(),
        key: text(msg.key(), "key"),
        event_id: text(event_id, "event id"),
        payload: msg.payload().unwrap_or_default().to_vec(),
    }
}

#[async_trait::async_trait]
impl LogConsumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let consumer = self.handle()?;
        let mut stream = consumer.stream();
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_elapsed) => return Ok(out),
                Ok(None) => return Ok(out), // the stream never ends while the consumer lives
                Ok(Some(Ok(msg))) => {
                    out.push(delivered(&msg));
                    break;
                }
                Ok(Some(Err(KafkaError::PartitionEOF(_)))) => continue,
                Ok(Some(Err(e))) => return Err(classify("consume", &e)),
            }
        }
        let generation = consumer.context().generation.load(Ordering::SeqCst);
        // Drain only what is already fetched: waiting longer would add latency without bound.
        while out.len() < max {
            match stream.next().now_or_never() {
                Some(Some(Ok(msg))) => out.push(delivered(&msg)),
                Some(Some(Err(e))) => {
                    // Hand out what we have; a persistent error shows up on the next poll.
                    debug!(error = %e, "kafka consume error after a partial batch");
                    break;
                }
                _ => break,
            }
            // Keep a batch within one assignment so its positions match what generation() says.
            if consumer.context().generation.load(Ordering::SeqCst) != generation {
                break;
            }
        }
        Ok(out)
    }

    async fn seek(&mut self, partition: i32, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::Fatal(format!(
                "cannot seek partition {partition} to negative offset {offset}"
            )));
        }
        let consumer = Arc::clone(self.handle()?);
        let topic = self.topic.clone();
        blocking("kafka seek", move || {
            let assigned = consumer
                .assignment()
                .map_err(|e| classify("read assignment", &e))?
                .find_partition(&topic, partition)
                .is_some();
            if !assigned {
                // Nothing of it is delivered here; a later assignment changes the generation
                // and the projector seeks again.
                debug!(
                    partition,
                    offset, "seek of a partition not assigned to this consumer ignored"
                );
                return Ok(());
            }
            // librdkafka discards already-fetched records of the partition on seek.
            consumer
                .seek(&topic, partition, Offset::Offset(offset), SEEK_TIMEOUT)
                .map_err(|e| classify("seek", &e))
        })
        .await
    }

    fn generation(&self) -> u64 {
        self.consumer
            .as_ref()
            .map_or(0, |c| c.context().generation.load(Ordering::SeqCst))
    }

    async fn commit_hint(&mut self, positions: &[(i32, i64)]) {
        let Ok(consumer) = self.handle() else { return };
        if positions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        for &(partition, offset) in positions {
            if let Err(e) = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
            {
                warn!(partition, offset, error = %e, "invalid offset in commit hint ignored");
                return;
            }
        }
        // Async commits are queued locally and never block; the result reaches commit_callback.
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            warn!(error = %e, "kafka offset commit hint failed");
        }
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // Closing waits for outstanding commits and for leaving the group, i.e. for the broker;
        // keep that off the async worker threads.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || drop(consumer));
            }
            Err(_) => drop(consumer),
        }
    }
}
