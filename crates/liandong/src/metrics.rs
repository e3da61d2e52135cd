//! `GET /metrics`: the process's metrics in the Prometheus text format, and the HTTP side of
//! them (request counts and latency by route, request tracing spans).
//!
//! One recorder per process (the `metrics` facade's global one, from
//! `metrics-exporter-prometheus`, without its HTTP listener: the route is served by axum beside
//! the API). Ingestion and the projectors record as they go; the projections' lag is read from
//! the read store and the log when Prometheus scrapes, so it is never stale.
//!
//! Nothing here names a member: labels are routes (templates such as
//! `/v1/members/{member_key}`, never the URL), methods, status codes, catalogue types,
//! rejection reasons, projections and partitions. Without `LIANDONG_METRICS_KEY` the route
//! answers without a key; with it, only `Authorization: Bearer <that key>`.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use liandong_log::EventLog;
use liandong_projections::Projection;
use liandong_store::ReadStore;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::warn;

use crate::config::MetricsKey;

pub const PATH: &str = "/metrics";

/// HTTP requests answered, by method, route and status.
pub const HTTP_REQUESTS: &str = "liandong_http_requests_total";
/// Time to answer a request (until the response's head), by method and route.
pub const HTTP_SECONDS: &str = "liandong_http_request_duration_seconds";
/// Records of the events stream a projection has not applied yet.
pub const PROJECTION_LAG: &str = "liandong_projection_lag_records";
/// The same, per partition of the events stream.
pub const PARTITION_LAG: &str = "liandong_projection_partition_lag_records";
/// Share of the events stream a projection has applied: 1 when caught up; below 1 while it
/// rebuilds from the start of the log (a version change or `liandong rebuild`) or lags.
pub const PROJECTION_PROGRESS: &str = "liandong_projection_progress_ratio";
/// Scrapes whose lag could not be read (store or log unavailable): the lag gauges keep their
/// last values.
pub const STATUS_ERRORS: &str = "liandong_projection_status_errors_total";
/// Always 1; labels: the binary's version and the process's role.
pub const BUILD_INFO: &str = "liandong_build_info";

/// Buckets of every duration histogram, in seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of the projector's batch sizes, in events.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 100000.0,
];
/// Longest a scrape waits for the lag (the broker's end offsets, the stored positions).
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often histograms are drained between scrapes (bounds their memory when nobody scrapes).
pub const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(liandong_projector::BATCH_EVENTS.to_owned()),
                    BATCH_BUCKETS,
                )
            })
            .expect("non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            warn!("another metrics recorder is installed: /metrics shows nothing of this process");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    liandong_ingest::metrics::describe();
    liandong_projector::describe_metrics();
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route (the template, never the URL) and status"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_gauge!(
        PROJECTION_LAG,
        "Records of the events stream a projection has not applied yet (read at scrape time)"
    );
    describe_gauge!(
        PARTITION_LAG,
        "Records of one partition of the events stream a projection has not applied yet"
    );
    describe_gauge!(
        PROJECTION_PROGRESS,
        "Share of the events stream a projection has applied (below 1 while rebuilding or lagging)"
    );
    describe_counter!(
        STATUS_ERRORS,
        "Scrapes that could not read the projections' positions or the log's end offsets"
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1: the binary's version and the process's role"
    );
}

/// What `/metrics` needs.
#[derive(Clone)]
pub struct MetricsState {
    pub key: Option<MetricsKey>,
    /// Where the lag is read from: processes that run projectors (`serve`, `project`).
    pub lag: Option<LagSource>,
}

#[derive(Clone)]
pub struct LagSource {
    pub store: ReadStore,
    pub log: Arc<dyn EventLog>,
    pub projections: Vec<Arc<dyn Projection>>,
}

/// `GET /metrics`.
pub fn router(state: MetricsState, role: &'static str) -> Router {
    let _ = handle();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "role" => role).set(1.0);
    Router::new().route(PATH, get(scrape)).with_state(state)
}

async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(MetricsKey(key)) = &state.key {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        // Digests compared: the time taken says nothing about the key.
        let ok = sent.is_some_and(|s| liandong_auth::digest(s) == liandong_auth::digest(key));
        if !ok {
            let mut answer = (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({
                    "error": "/metrics needs Authorization: Bearer <LIANDONG_METRICS_KEY>"
                })),
            )
                .into_response();
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header"),
            );
            return answer;
        }
    }
    if let Some(lag) = &state.lag {
        refresh_lag(lag).await;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle().render(),
    )
        .into_response()
}

/// Sets the lag gauges from the stored positions and the log's end offsets.
async fn refresh_lag(source: &LagSource) {
    let projections: Vec<&dyn Projection> = source.projections.iter().map(|p| p.as_ref()).collect();
    let status = tokio::time::timeout(
        STATUS_TIMEOUT,
        liandong_projector::status(&source.store, source.log.as_ref(), &projections),
    )
    .await;
    let status = match status {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            warn!(error = %e, "/metrics: cannot read the projections' lag");
            metrics::counter!(STATUS_ERRORS).increment(1);
            return;
        }
        Err(_) => {
            warn!(timeout = ?STATUS_TIMEOUT, "/metrics: reading the projections' lag timed out");
            metrics::counter!(STATUS_ERRORS).increment(1);
            return;
        }
    };
    for p in status {
        let name = p.projection;
        metrics::gauge!(PROJECTION_LAG, "projection" => name.clone()).set(p.lag as f64);
        let (mut applied, mut end) = (0i64, 0i64);
        for part in &p.partitions {
            metrics::gauge!(PARTITION_LAG, "projection" => name.clone(), "partition" => part.partition.to_string())
                .set(part.lag as f64);
            applied += part.position.min(part.end);
            end += part.end;
        }
        let progress = if end == 0 {
            1.0
        } else {
            applied as f64 / end as f64
        };
        metrics::gauge!(PROJECTION_PROGRESS, "projection" => name).set(progress);
    }
}

/// The methods HTTP defines; anything else is counted as `other` (a method is the sender's
/// free text).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The route a request matched (its template), or `unmatched`.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// Middleware counting and timing every request by method, route and status.
pub async fn track(req: Request, next: Next) -> Response {
    let (method, route) = (method_label(req.method()), route_of(&req));
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed());
    res
}

/// tower-http's request tracing: one `request` span per request with its method and route
/// (never the URL: it can hold a member key or, in `?token=`, an API key); the start, the end
/// (status, latency) at DEBUG (`RUST_LOG=info,tower_http=debug`), server errors at ERROR.
pub fn trace_layer() -> tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
> {
    fn span(req: &Request) -> tracing::Span {
        tracing::info_span!("request", method = method_label(req.method()), route = %route_of(req))
    }
    tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(span as fn(&Request) -> tracing::Span)
}
