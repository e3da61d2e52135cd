//! Persistence of `OpenidBinding` in the event and snapshot tables of postgres-es / sqlite-es
//! (same columns, dedicated names), a batch of aggregates per transaction.
//! Invariant: the identity store only ever touches `identity_events` / `identity_snapshots`,
//! never the read model's `events` table, and `migrate` is idempotent and safe to race.
//! Aggregates are only ever deleted by an erasure ([`Backend::delete`]).

use std::collections::BTreeSet;
use std::future::Future;

use cqrs_es::persist::SerializedEvent;
use liandong_store::erasures::registered_in;
use liandong_store::sql::{self, Db, Statement, StoreTx, Ty};
use liandong_store::StoreError;
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
/// writes the new events, all or nothing. Its statements are written once for both dialects
/// on the store's dialect layer ([`liandong_store::sql`]).
pub(crate) struct BatchTx(StoreTx);

/// The aggregate type column of every row the service writes or reads.
fn aggregate_type() -> &'static str {
    <OpenidBinding as cqrs_es::Aggregate>::TYPE
}

static LOAD: Statement = Statement::new(|d| {
    format!(
        "SELECT aggregate_id, sequence, payload FROM identity_events
         WHERE aggregate_type = $1 AND aggregate_id IN {}
         ORDER BY aggregate_id, sequence",
        sql::values(d, 2)
    )
});

static INSERT: Statement = Statement::new(|d| {
    // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
    format!(
        "INSERT INTO identity_events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, t.id, t.seq, t.et, t.ev, t.payload, t.metadata FROM {} WHERE true
         ON CONFLICT DO NOTHING
         RETURNING aggregate_id",
        sql::records(
            d,
            2,
            "t",
            &[
                ("id", Ty::Text),
                ("seq", Ty::Int),
                ("et", Ty::Text),
                ("ev", Ty::Text),
                ("payload", Ty::Json),
                ("metadata", Ty::Json),
            ]
        )
    )
});

static DELETE_SNAPSHOTS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM identity_snapshots WHERE aggregate_type = $1 AND aggregate_id IN {}",
        sql::values(d, 2)
    )
});

static DELETE_EVENTS: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM identity_events WHERE aggregate_type = $1 AND aggregate_id IN {}
         RETURNING aggregate_id",
        sql::values(d, 2)
    )
});

impl BatchTx {
    /// Which of `hashes` are in the erasure registry: the store's table, read through the
    /// store's own statement ([`liandong_store::erasures::registered_in`]) in this transaction.
    pub(crate) async fn erased(
        &mut self,
        hashes: &[String],
    ) -> Result<BTreeSet<String>, StoreError> {
        let hashes: BTreeSet<String> = hashes.iter().cloned().collect();
        registered_in(&mut self.0, &hashes).await
    }

    /// Every stored event of the aggregates `ids`, in sequence order per aggregate.
    pub(crate) async fn load(&mut self, ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, serde_json::Value)> = self
            .0
            .fetch(&LOAD, &[aggregate_type(), &sql::json(ids)])
            .await?;
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
    ) -> Result<Vec<String>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // In key order: two batches writing overlapping aggregates then wait on each other's
        // rows in the same order, never in a cycle (a deadlock PostgreSQL would abort).
        let mut sorted: Vec<&SerializedEvent> = events.iter().collect();
        sorted.sort_by(|a, b| (&a.aggregate_id, a.sequence).cmp(&(&b.aggregate_id, b.sequence)));
        let rows: Vec<serde_json::Value> = sorted
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.aggregate_id,
                    "seq": e.sequence,
                    "et": e.event_type,
                    "ev": e.event_version,
                    "payload": e.payload,
                    "metadata": e.metadata,
                })
            })
            .collect();
        let written: Vec<(String,)> = self
            .0
            .fetch(&INSERT, &[aggregate_type(), &sql::json(&rows)])
            .await?;
        Ok(written.into_iter().map(|(id,)| id).collect())
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await
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
    /// the write lock for good (`liandong_store::ReadStore::begin` says the same; the identity
    /// store may be a database of its own, without the read store's tables).
    pub(crate) async fn begin(&self) -> Result<BatchTx, StoreError> {
        Ok(BatchTx(match self {
            Backend::Postgres { pool } => StoreTx::Postgres(pool.begin().await?),
            Backend::Sqlite { pool } => {
                let mut tx = pool.begin().await?;
                // An UPDATE takes the write lock even when it matches no row.
                sqlx::query("UPDATE identity_events SET sequence = sequence WHERE false")
                    .execute(&mut *tx)
                    .await?;
                StoreTx::Sqlite(tx)
            }
        }))
    }

    /// Deletes the aggregates `ids` (their events and snapshots) in one transaction; returns how
    /// many held a binding. Erasure only: the aggregates' one-event-for-life invariant starts
    /// over for these ids.
    pub(crate) async fn delete(&self, ids: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let ids = sql::json(ids);
        tx.0.exec(&DELETE_SNAPSHOTS, &[aggregate_type(), &ids])
            .await?;
        let deleted: Vec<(String,)> =
            tx.0.fetch(&DELETE_EVENTS, &[aggregate_type(), &ids])
                .await?;
        tx.commit().await?;
        let held: BTreeSet<String> = deleted.into_iter().map(|(id,)| id).collect();
        Ok(held.len() as u64)
    }
}
