//! What ingestion tells the process's metrics recorder (the `metrics` facade; `liandong`
//! installs the Prometheus one and serves `/metrics`). Labels are bounded sets — a catalogue
//! type or `unknown`, a [`RejectReason`], a stream, an outcome — never anything a sender wrote
//! freely, and never an identifier of a member.

use std::time::Duration;

use liandong_log::{LogError, Stream};

use crate::dead_letter::RejectReason;
use crate::{IngestError, IngestResponse};

/// Events appended to the events stream, by type (counted once their batch is durable).
pub const EVENTS_ACCEPTED: &str = "liandong_ingest_events_accepted_total";
/// Events rejected, by type and reason.
pub const EVENTS_REJECTED: &str = "liandong_ingest_events_rejected_total";
/// Records written to the dead-letter stream, by reason.
pub const DEAD_LETTERS: &str = "liandong_dead_letters_total";
/// Events rejected because they would rebind an openid.
pub const IDENTITY_CONFLICTS: &str = "liandong_identity_conflicts_total";
/// Ingestion requests (batches), by outcome: `ok`, `refused` (4xx), `unavailable` (503),
/// `failed` (500).
pub const REQUESTS: &str = "liandong_ingest_requests_total";
/// Time for the log to make a batch's records durable, by stream and outcome.
pub const APPEND_SECONDS: &str = "liandong_log_append_duration_seconds";
/// Records appended, by stream.
pub const APPENDED_RECORDS: &str = "liandong_log_appended_records_total";

/// Describes the families above to the installed recorder (their `# HELP` lines).
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        EVENTS_ACCEPTED,
        "Events appended to the events stream, by catalogue type"
    );
    describe_counter!(
        EVENTS_REJECTED,
        "Events rejected (answered in `rejected`), by catalogue type (unknown when not one) and reason"
    );
    describe_counter!(
        DEAD_LETTERS,
        "Records written to the dead-letter stream, by reason"
    );
    describe_counter!(
        IDENTITY_CONFLICTS,
        "Events rejected because their openid is bound to another unionid"
    );
    describe_counter!(
        REQUESTS,
        "Ingestion batches by outcome: ok, refused (4xx), unavailable (503), failed (500)"
    );
    describe_histogram!(
        APPEND_SECONDS,
        Unit::Seconds,
        "Time for the event log to make one batch's records durable (produce latency), by stream and outcome"
    );
    describe_counter!(APPENDED_RECORDS, "Records appended to the log, by stream");
    // Present at 0 from the start: an alert on its rate needs the series before the first one.
    metrics::counter!(IDENTITY_CONFLICTS).increment(0);
}

/// A batch's events, once both appends are durable.
pub(crate) fn stored<'a>(
    accepted_types: impl Iterator<Item = &'a str>,
    rejected: &[(&'static str, RejectReason)],
    dead_lettered: bool,
) {
    let mut per_type: Vec<(&str, u64)> = Vec::new();
    for t in accepted_types {
        match per_type.iter_mut().find(|(seen, _)| *seen == t) {
            Some((_, n)) => *n += 1,
            None => per_type.push((t, 1)),
        }
    }
    for (t, n) in per_type {
        metrics::counter!(EVENTS_ACCEPTED, "type" => t.to_owned()).increment(n);
    }
    for &(t, reason) in rejected {
        metrics::counter!(EVENTS_REJECTED, "type" => t, "reason" => reason.as_str()).increment(1);
        if dead_lettered {
            metrics::counter!(DEAD_LETTERS, "reason" => reason.as_str()).increment(1);
        }
        if reason == RejectReason::IdentityConflict {
            metrics::counter!(IDENTITY_CONFLICTS).increment(1);
        }
    }
}

/// One append to the log.
pub(crate) fn appended(
    stream: Stream,
    records: usize,
    took: Duration,
    result: &Result<(), LogError>,
) {
    let outcome = match result {
        Ok(()) => "ok",
        Err(e) if e.is_retryable() => "unavailable",
        Err(_) => "failed",
    };
    metrics::histogram!(APPEND_SECONDS, "stream" => stream.name(), "outcome" => outcome)
        .record(took.as_secs_f64());
    if result.is_ok() {
        metrics::counter!(APPENDED_RECORDS, "stream" => stream.name()).increment(records as u64);
    }
}

/// One request's outcome.
pub(crate) fn request(result: &Result<IngestResponse, IngestError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) if e.status().is_client_error() => "refused",
        Err(e) if e.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        Err(_) => "failed",
    };
    metrics::counter!(REQUESTS, "outcome" => outcome).increment(1);
}
