//! Persistence of `OpenidBinding` in the event and snapshot tables of postgres-es / sqlite-es
//! (same columns, dedicated names), a batch of aggregates per transaction.
//! Invariant: the identity store only ever touches `identity_events` / `identity_snapshots`,
//! never the read model's `events` table, and `migrate` is idempotent and safe to race.
//! Aggregates are only ever deleted by an erasure ([`Backend::delete`]).

use std::collections::BTreeSet;
use std::future::Future;

use cqrs_es::persist::SerializedEvent;
use liandong_store::erasures::registered_in;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{PgPool, SqlitePool};

use crate::aggregate::OpenidBinding;
use crate::IdentityError;

/// Event table of the identity aggregates (the read-model database already owns `events`).
pub const EVENTS_TABLE: &str = "identity_events";
/// Snapshot table of the identity aggregates (created for completeness; the service uses
/// pure event sourcing since each aggregate holds at most one event).
pub const SNAPSHOTS_TABLE: &str = "identity_snapshots";

static PG_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};
static SQLITE_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::PgPool {}
    impl Sealed for sqlx::SqlitePool {}
}

/// A database the identity tables can be created in: `sqlx::PgPool` or `sqlx::SqlitePool`.
pub trait IdentityDatabase: sealed::Sealed + Sync {
    #[doc(hidden)]
    fn create_identity_tables(&self) -> impl Future<Output = Result<(), MigrateError>> + Send;
}

// The migrations share sqlx's `_sqlx_migrations` with the other crates' (the identity store is
// usually the read store): versions 3001… are this crate's, and the others' are not missing.
impl IdentityDatabase for PgPool {
    async fn create_identity_tables(&self) -> Result<(), MigrateError> {
        PG_MIGRATIONS.run(self).await
    }
}

impl IdentityDatabase for SqlitePool {
    async fn create_identity_tables(&self) -> Result<(), MigrateError> {
        SQLITE_MIGRATIONS.run(self).await
    }
}

/// Creates `identity_events` and `identity_snapshots` if they do not exist (Postgres or SQLite),
/// from `migrations/`. Idempotent and safe to race (sqlx's migrator locks the database); the
/// service constructors call it, so explicit calls are only needed by tools.
pub async fn migrate<D: IdentityDatabase>(db: &D) -> Result<(), IdentityError> {
    db.create_identity_tables()
        .await
        .map_err(|e| IdentityError::Unavailable(format!("creating identity tables: {e}")))
}

/// The command side over one of the two supported databases. A batch of `Bind` commands is
/// decided by the aggregate itself ([`OpenidBinding::handle`](cqrs_es::Aggregate::handle)) and
/// persisted in the event table postgres-es / sqlite-es define, in one transaction per batch
/// ([`BatchTx`]): cqrs-es's own repositories commit one aggregate per transaction.
pub(crate) enum Backend {
    Postgres { pool: PgPool },
    Sqlite { pool: SqlitePool },
}

/// An event of [`EVENTS_TABLE`] as read back: its aggregate, sequence and payload.
pub(crate) struct StoredEvent {
    pub aggregate_id: String,
    pub sequence: i64,
    pub payload: serde_json::Value,
}

/// One transaction of a batch of binds: reads the aggregates' events and the erasure registry,
/// writes the new events, all or nothing.
pub(crate) enum BatchTx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// The aggregate type column of every row the service writes or reads.
fn aggregate_type() -> &'static str {
    <OpenidBinding as cqrs_es::Aggregate>::TYPE
}

impl BatchTx {
    /// Which of `hashes` are in the erasure registry: the store's table, read through the
    /// store's own statement ([`liandong_store::erasures::registered_in`]) in this transaction.
    pub(crate) async fn erased(
        &mut self,
        hashes: &[String],
    ) -> Result<BTreeSet<String>, liandong_store::StoreError> {
        let hashes: BTreeSet<String> = hashes.iter().cloned().collect();
        match self {
            BatchTx::Postgres(tx) => registered_in(&mut **tx, &hashes).await,
            BatchTx::Sqlite(tx) => registered_in(&mut **tx, &hashes).await,
        }
    }

    /// Every stored event of the aggregates `ids`, in sequence order per aggregate.
    pub(crate) async fn load(&mut self, ids: &[String]) -> Result<Vec<StoredEvent>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, serde_json::Value)> = match self {
            BatchTx::Postgres(tx) => {
                sqlx::query_as(
                    "SELECT aggregate_id, sequence, payload FROM identity_events
                     WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
                     ORDER BY aggregate_id, sequence",
                )
                .bind(aggregate_type())
                .bind(ids)
                .fetch_all(&mut **tx)
                .await?
            }
            BatchTx::Sqlite(tx) => {
                let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
                sqlx::query_as(
                    "SELECT aggregate_id, sequence, payload FROM identity_events
                     WHERE aggregate_type = $1 AND aggregate_id IN (SELECT value FROM json_each($2))
                     ORDER BY aggregate_id, sequence",
                )
                .bind(aggregate_type())
                .bind(list)
                .fetch_all(&mut **tx)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(aggregate_id, sequence, payload)| StoredEvent {
                aggregate_id,
                sequence,
                payload,
            })
            .collect())
    }

    /// Inserts `events` in one statement; returns the aggregate ids whose event was written. An
    /// event whose `(aggregate, sequence)` is already taken (another process committed it first:
    /// cqrs-es's optimistic lock) is not written and not returned.
    pub(crate) async fn insert(
        &mut self,
        events: &[SerializedEvent],
    ) -> Result<Vec<String>, sqlx::Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // In key order: two batches writing overlapping aggregates then wait on each other's
        // rows in the same order, never in a cycle (a deadlock PostgreSQL would abort).
        let mut sorted: Vec<&SerializedEvent> = events.iter().collect();
        sorted.sort_by(|a, b| (&a.aggregate_id, a.sequence).cmp(&(&b.aggregate_id, b.sequence)));
        let events = sorted;
        let text = |v: &serde_json::Value| v.to_string();
        match self {
            BatchTx::Postgres(tx) => {
                let ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
                let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
                let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
                let versions: Vec<&str> = events.iter().map(|e| e.event_version.as_str()).collect();
                let payloads: Vec<String> = events.iter().map(|e| text(&e.payload)).collect();
                let metadata: Vec<String> = events.iter().map(|e| text(&e.metadata)).collect();
                sqlx::query_scalar(
                    "INSERT INTO identity_events
                         (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                     SELECT $1, t.id, t.seq, t.et, t.ev, t.payload::json, t.metadata::json
                     FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                          AS t(id, seq, et, ev, payload, metadata)
                     ON CONFLICT DO NOTHING
                     RETURNING aggregate_id",
                )
                .bind(aggregate_type())
                .bind(ids)
                .bind(sequences)
                .bind(types)
                .bind(versions)
                .bind(payloads)
                .bind(metadata)
                .fetch_all(&mut **tx)
                .await
            }
            BatchTx::Sqlite(tx) => {
                let rows: Vec<serde_json::Value> = events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "id": e.aggregate_id,
                            "seq": e.sequence,
                            "et": e.event_type,
                            "ev": e.event_version,
                            "payload": text(&e.payload),
                            "metadata": text(&e.metadata),
                        })
                    })
                    .collect();
                // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
                sqlx::query_scalar(
                    "INSERT INTO identity_events
                         (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                     SELECT $1, value ->> '$.id', value ->> '$.seq', value ->> '$.et', value ->> '$.ev',
                            value ->> '$.payload', value ->> '$.metadata'
                     FROM json_each($2) WHERE true
                     ON CONFLICT DO NOTHING
                     RETURNING aggregate_id",
                )
                .bind(aggregate_type())
                .bind(serde_json::Value::Array(rows).to_string())
                .fetch_all(&mut **tx)
                .await
            }
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            BatchTx::Postgres(tx) => tx.commit().await,
            BatchTx::Sqlite(tx) => tx.commit().await,
        }
    }
}

impl Backend {
    pub(crate) fn postgres(pool: PgPool) -> Self {
        Backend::Postgres { pool }
    }

    pub(crate) fn sqlite(pool: SqlitePool) -> Self {
        Backend::Sqlite { pool }
    }

    /// A transaction for a batch of binds. On SQLite it takes the write lock at once, with a
    /// write as its first statement, so what it reads cannot change before it writes;
    /// PostgreSQL's transactions (read committed) see other writers' commits and resolve a lost
    /// race through the primary key instead (see [`BatchTx::insert`]). Not `BEGIN IMMEDIATE`:
    /// sqlx checks a custom `BEGIN` after running it, and a bind cancelled between the two (a
    /// client that hung up) would leave the transaction open on the pooled connection, holding
    /// the write lock for good (`liandong_store::ReadStore::begin` says the same).
    pub(crate) async fn begin(&self) -> Result<BatchTx, sqlx::Error> {
        Ok(match self {
            Backend::Postgres { pool } => BatchTx::Postgres(pool.begin().await?),
            Backend::Sqlite { pool } => {
                let mut tx = pool.begin().await?;
                // An UPDATE takes the write lock even when it matches no row.
                sqlx::query("UPDATE identity_events SET sequence = sequence WHERE false")
                    .execute(&mut *tx)
                    .await?;
                BatchTx::Sqlite(tx)
            }
        })
    }

    /// Deletes the aggregates `ids` (their events and snapshots) in one transaction; returns how
    /// many held a binding. Erasure only: the aggregates' one-event-for-life invariant starts
    /// over for these ids.
    pub(crate) async fn delete(&self, ids: &[String]) -> Result<u64, sqlx::Error> {
        const SNAPSHOTS: &str =
            "DELETE FROM identity_snapshots WHERE aggregate_type = $1 AND aggregate_id = $2";
        const EVENTS: &str =
            "DELETE FROM identity_events WHERE aggregate_type = $1 AND aggregate_id = $2";
        let mut deleted = 0;
        macro_rules! delete_all {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                for id in ids {
                    sqlx::query(SNAPSHOTS)
                        .bind(<OpenidBinding as cqrs_es::Aggregate>::TYPE)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let rows = sqlx::query(EVENTS)
                        .bind(<OpenidBinding as cqrs_es::Aggregate>::TYPE)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    deleted += u64::from(rows > 0);
                }
                tx.commit().await?;
            }};
        }
        match self {
            Backend::Postgres { pool, .. } => delete_all!(pool),
            Backend::Sqlite { pool, .. } => delete_all!(pool),
        }
        Ok(deleted)
    }
}
