//! What `liandong dead-letter replay` did with each dead letter: one row per record of the
//! dead-letter stream it replayed, so a second replay never appends an event twice, and
//! `dead-letter list` shows which ones were replayed. Not a projection: rebuilds keep it.

use chrono::{DateTime, Utc};

use crate::{ReadStore, StoreError};

/// One replayed dead letter.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Replay {
    /// The dead-letter stream: `kafka:<topic>` or `embedded`.
    pub log: String,
    pub partition: i32,
    pub log_offset: i64,
    pub event_id: Option<String>,
    /// `appended` (the event passed and is in the events stream), `duplicate` (its event id
    /// was appended by the replay of another dead letter) or `still_failing`.
    pub outcome: String,
    /// Why it still fails.
    pub error: Option<String>,
    pub replayed_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT log, partition, log_offset, event_id, outcome, error, replayed_at
    FROM liandong_dead_letter_replays WHERE log = $1";

const UPSERT: &str = "INSERT INTO liandong_dead_letter_replays
        (log, partition, log_offset, event_id, outcome, error, replayed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (log, partition, log_offset) DO UPDATE SET
        event_id = excluded.event_id, outcome = excluded.outcome, error = excluded.error,
        replayed_at = excluded.replayed_at";

/// Every replay recorded for the dead-letter stream `log`.
pub async fn replays(store: &ReadStore, log: &str) -> Result<Vec<Replay>, StoreError> {
    store.fetch_all(SELECT, &[log.into()]).await
}

/// Records (or updates) what a replay did with one dead letter.
pub async fn record(store: &ReadStore, replay: &Replay) -> Result<(), StoreError> {
    store
        .execute(
            UPSERT,
            &[
                replay.log.as_str().into(),
                replay.partition.into(),
                replay.log_offset.into(),
                (&replay.event_id).into(),
                replay.outcome.as_str().into(),
                (&replay.error).into(),
                replay.replayed_at.into(),
            ],
        )
        .await?;
    Ok(())
}
