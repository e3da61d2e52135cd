//! What tests of a running liandong share over HTTP (the server itself is started by each test:
//! this crate cannot depend on the `liandong` binary crate, which dev-depends on it).

use std::time::{Duration, Instant};

use serde_json::Value;

/// Whether a `/v1/status` body says every projection is at the end of the log: no lag, and
/// every projection has a version (it has applied something since it was created).
pub fn caught_up(status: &Value) -> bool {
    status["lag"] == 0
        && status["projections"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| !p["version"].is_null()))
}

/// Waits until `GET {base}/v1/status` (read with `key`, a support or admin key) says every
/// projection has applied the whole log (see [`caught_up`]); fails after `timeout`. A server
/// that does not answer yet, or answers with an error, is asked again.
pub async fn wait_caught_up(http: &reqwest::Client, base: &str, key: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let status: Option<Value> = async {
            let r = http
                .get(format!("{base}/v1/status"))
                .bearer_auth(key)
                .send()
                .await
                .ok()?;
            r.json().await.ok()
        }
        .await;
        if status.as_ref().is_some_and(caught_up) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the projections did not catch up within {timeout:?}: last /v1/status {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `events` in one `POST {base}/v1/events` with `key` (an ingest key) and asserts that the
/// answer is a 200 that rejects none of them; returns the answer's body.
pub async fn post_events(http: &reqwest::Client, base: &str, key: &str, events: &[Value]) -> Value {
    let r = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .expect("ingestion answers");
    let status = r.status();
    let body: Value = r.json().await.expect("ingestion answers with JSON");
    assert_eq!(status, 200, "POST /v1/events: {body}");
    assert_eq!(
        body["rejected"],
        serde_json::json!([]),
        "POST /v1/events rejected events: {body}"
    );
    body
}
