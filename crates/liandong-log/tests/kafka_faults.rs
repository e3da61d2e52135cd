//! Fault behaviour of the Kafka adapter against librdkafka's in-process mock cluster: broker
//! failures must surface as bounded, retryable errors, and a full local queue must fail at once.

use std::time::{Duration, Instant};

use liandong_log::{EventLog, KafkaConfig, KafkaLog, LogError, Record, Stream};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const PREFIX: &str = "faults";

fn record(i: usize, payload_len: usize) -> Record {
    Record {
        key: format!("key-{i}"),
        event_id: format!("event-{i}"),
        payload: vec![b'x'; payload_len],
    }
}

fn batch(n: usize) -> Vec<Record> {
    (0..n).map(|i| record(i, 16)).collect()
}

/// A mock cluster with both topics, and a log connected to it with `extra` client options.
async fn setup(
    extra: &[(&str, &str)],
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    std::sync::Arc<KafkaLog>,
) {
    let mock = MockCluster::new(1).expect("mock cluster");
    for stream in [Stream::Events, Stream::DeadLetter] {
        mock.create_topic(&format!("{PREFIX}.{}", stream.name()), 3, 1)
            .expect("create topic");
    }
    let mut client_options = vec![
        // Bounded delivery time so failures surface quickly in tests.
        ("message.timeout.ms".to_string(), "3000".to_string()),
    ];
    client_options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let log = KafkaLog::connect(KafkaConfig {
        brokers: mock.bootstrap_servers(),
        topic_prefix: PREFIX.into(),
        partitions: 3,
        replication_factor: 1,
        client_options,
        create_topics: false,
    })
    .await
    .expect("connect to mock cluster");
    (mock, log)
}

fn assert_retryable(result: Result<(), LogError>) {
    match result {
        Err(e @ LogError::Unavailable { .. }) => assert!(e.is_retryable()),
        other => panic!("expected LogError::Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_become_retryable_within_bounded_time() {
    let (mock, log) = setup(&[]).await;
    log.append(Stream::Events, batch(3))
        .await
        .expect("healthy append");

    // Far more errors than librdkafka can retry through within message.timeout.ms.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 500],
    );
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        log.append(Stream::Events, batch(3)),
    )
    .await
    .expect("append must not hang");
    assert_retryable(result);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );

    // Once the broker recovers, appends succeed again.
    mock.clear_request_errors(RDKafkaApiKey::Produce);
    log.append(Stream::Events, batch(3))
        .await
        .expect("append after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_becomes_retryable_within_bounded_time() {
    let (mock, log) = setup(&[]).await;
    log.append(Stream::Events, batch(2))
        .await
        .expect("healthy append");
    mock.broker_down(1).expect("broker down");
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        log.append(Stream::Events, batch(2)),
    )
    .await
    .expect("append must not hang");
    assert_retryable(result);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    mock.broker_up(1).expect("broker up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_producer_queue_fails_immediately() {
    let (mock, log) = setup(&[("queue.buffering.max.messages", "2"), ("linger.ms", "1000")]).await;
    // Keep the queue from draining.
    mock.broker_down(1).expect("broker down");
    let started = Instant::now();
    let result = log.append(Stream::Events, batch(10)).await;
    match &result {
        Err(LogError::Unavailable { reason, .. }) => {
            assert!(reason.to_lowercase().contains("queue"), "{reason}")
        }
        other => panic!("expected LogError::Unavailable for a full queue, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_is_fatal() {
    let (_mock, log) = setup(&[("message.max.bytes", "10000")]).await;
    let result = log.append(Stream::Events, vec![record(0, 50_000)]).await;
    assert!(matches!(result, Err(LogError::Fatal(_))), "got {result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_without_creation_are_fatal() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let result = KafkaLog::connect(KafkaConfig {
        brokers: mock.bootstrap_servers(),
        topic_prefix: "nonexistent".into(),
        partitions: 3,
        replication_factor: 1,
        client_options: Vec::new(),
        create_topics: false,
    })
    .await;
    assert!(matches!(result, Err(LogError::Fatal(_))), "got {result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_on_connect_are_retryable() {
    // Nothing listens on port 1; metadata times out.
    let result = KafkaLog::connect(KafkaConfig {
        brokers: "127.0.0.1:1".into(),
        topic_prefix: "nowhere".into(),
        partitions: 1,
        replication_factor: 1,
        client_options: Vec::new(),
        create_topics: false,
    })
    .await;
    assert!(
        matches!(result, Err(ref e) if e.is_retryable()),
        "got {result:?}"
    );
}
