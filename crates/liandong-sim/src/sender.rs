//! Sends events to liandong as a well-behaved client does (EVENTS.md, "Endpoint"): batches of
//! at most 500 to `POST /v1/events` with the ingest key, a few batches in flight, and a whole
//! batch retried on `503` (its `event_id`s make the retry harmless).

use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::Value;

/// Largest batch sent in one request.
pub const MAX_BATCH: usize = 500;

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: still 503 after {tries} tries")]
    Unavailable { url: String, tries: u32 },
    #[error("{url}: unexpected answer: {body}")]
    Answer { url: String, body: String },
    #[error("projections still {lag} records behind after {waited:?}")]
    Lagging { lag: i64, waited: Duration },
}

/// One event the endpoint refused, with its position in the events given to `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub event_id: String,
    pub error: String,
}

/// What the endpoint answered for all the batches of one `send`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
}

/// `GET /v1/status`, read: how far the projections are behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Records in the log not yet applied, summed over the projections.
    pub lag: i64,
    /// Lag 0, and every projection has a version (none is rebuilding from scratch).
    pub caught_up: bool,
}

/// A client of one liandong's ingestion endpoint.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    base: String,
    key: String,
    status_key: Option<String>,
    batch: usize,
    in_flight: usize,
    max_tries: u32,
}

#[derive(serde::Serialize)]
struct Batch<'a> {
    sent_at: String,
    events: &'a [Value],
}

impl Sender {
    /// A sender to `base_url` (e.g. `http://127.0.0.1:8080`) with a key of the `ingest` role.
    pub fn new(base_url: &str, ingest_key: &str) -> Sender {
        Sender {
            client: reqwest::Client::new(),
            base: base_url.trim_end_matches('/').to_owned(),
            key: ingest_key.to_owned(),
            status_key: None,
            batch: MAX_BATCH,
            in_flight: 4,
            max_tries: 60,
        }
    }

    /// The key [`Sender::status`] and [`Sender::wait_caught_up`] read `/v1/status` with: one
    /// of a role that may (analyst, support, admin). Without it, the ingest key is tried.
    pub fn status_key(mut self, key: &str) -> Sender {
        self.status_key = Some(key.to_owned());
        self
    }

    /// Events per request (1 to [`MAX_BATCH`]).
    pub fn batch_size(mut self, n: usize) -> Sender {
        self.batch = n.clamp(1, MAX_BATCH);
        self
    }

    /// Requests in flight at once (at least 1). Order across batches is then not kept, which
    /// the read models do not need.
    pub fn in_flight(mut self, n: usize) -> Sender {
        self.in_flight = n.max(1);
        self
    }

    /// Sends `events` in batches.
    pub async fn send(&self, events: &[Value]) -> Result<SendReport, SimError> {
        self.send_with_progress(events, |_| {}).await
    }

    /// Sends `events` in batches, calling `progress` with the number of events of each batch
    /// once the endpoint has answered for it.
    pub async fn send_with_progress(
        &self,
        events: &[Value],
        mut progress: impl FnMut(usize),
    ) -> Result<SendReport, SimError> {
        let mut report = SendReport::default();
        let mut answers = stream::iter(events.chunks(self.batch).enumerate())
            .map(|(i, chunk)| async move { (i, chunk.len(), self.post(chunk).await) })
            .buffer_unordered(self.in_flight);
        while let Some((i, n, answer)) = answers.next().await {
            let (accepted, rejected) = answer?;
            report.accepted += accepted;
            report.rejected.extend(rejected.into_iter().map(|mut r| {
                r.index += i * self.batch;
                r
            }));
            progress(n);
        }
        report.rejected.sort_by_key(|r| r.index);
        Ok(report)
    }

    async fn post(&self, chunk: &[Value]) -> Result<(usize, Vec<Rejected>), SimError> {
        let url = format!("{}/v1/events", self.base);
        let body = serde_json::to_vec(&Batch {
            sent_at: chrono::Utc::now().to_rfc3339(),
            events: chunk,
        })
        .expect("JSON values serialize");
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = self
                .client
                .post(&url)
                .bearer_auth(&self.key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let r = match answer {
                Ok(r) => r,
                // A connection reset under load: the batch may or may not have landed; its
                // event ids make sending it again harmless.
                Err(e) if tries < 5 && (e.is_connect() || e.is_request()) => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                    continue;
                }
                Err(source) => return Err(SimError::Http { url, source }),
            };
            let status = r.status().as_u16();
            if status == 503 {
                if tries >= self.max_tries {
                    return Err(SimError::Unavailable { url, tries });
                }
                let wait = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_millis(500))
                    .min(Duration::from_secs(5));
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = r.text().await.map_err(|source| SimError::Http {
                url: url.clone(),
                source,
            })?;
            if status != 200 {
                return Err(SimError::Refused {
                    url,
                    status,
                    body: text,
                });
            }
            return parse_answer(&text).ok_or(SimError::Answer { url, body: text });
        }
    }

    /// Reads `GET /v1/status` with the [`Sender::status_key`].
    pub async fn status(&self) -> Result<Status, SimError> {
        let url = format!("{}/v1/status", self.base);
        let r = self
            .client
            .get(&url)
            .bearer_auth(self.status_key.as_ref().unwrap_or(&self.key))
            .send()
            .await
            .map_err(|source| SimError::Http {
                url: url.clone(),
                source,
            })?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|source| SimError::Http {
            url: url.clone(),
            source,
        })?;
        if status != 200 {
            return Err(SimError::Refused {
                url,
                status,
                body: text,
            });
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| SimError::Answer {
            url: url.clone(),
            body: text.clone(),
        })?;
        let Some(lag) = v["lag"].as_i64() else {
            return Err(SimError::Answer { url, body: text });
        };
        let versioned = v["projections"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| !p["version"].is_null()));
        Ok(Status {
            lag,
            caught_up: lag == 0 && versioned,
        })
    }

    /// Waits until the projections have applied everything in the log, calling `on_lag` with
    /// each lag read. A status answer that fails (a `503` under load) is asked again.
    pub async fn wait_caught_up(
        &self,
        timeout: Duration,
        mut on_lag: impl FnMut(i64),
    ) -> Result<(), SimError> {
        let started = std::time::Instant::now();
        let mut last = None;
        loop {
            match self.status().await {
                Ok(s) if s.caught_up => {
                    on_lag(0);
                    return Ok(());
                }
                Ok(s) => {
                    on_lag(s.lag);
                    last = Some(s.lag);
                }
                Err(
                    e @ SimError::Refused {
                        status: 401 | 403, ..
                    },
                ) => return Err(e),
                Err(_) => {}
            }
            if started.elapsed() > timeout {
                return Err(SimError::Lagging {
                    lag: last.unwrap_or(-1),
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn parse_answer(text: &str) -> Option<(usize, Vec<Rejected>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let accepted = v["accepted"].as_u64()? as usize;
    let rejected = v["rejected"]
        .as_array()?
        .iter()
        .map(|r| {
            Some(Rejected {
                index: r["index"].as_u64()? as usize,
                event_id: r["event_id"].as_str().unwrap_or_default().to_owned(),
                error: r["error"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((accepted, rejected))
}
