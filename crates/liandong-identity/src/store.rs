//! Persistence of `OpenidBinding` through postgres-es / sqlite-es, in dedicated tables.
//! Invariant: the cqrs stores only ever touch `identity_events` / `identity_snapshots`,
//! never the read model's `events` table, and `migrate` is idempotent and safe to race.
//! Aggregates are only ever deleted by an erasure ([`Backend::delete`]).

use std::future::Future;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework, EventStore};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use sqlite_es::{SqliteCqrs, SqliteEventRepository};
use sqlx::{PgPool, SqlitePool};

use crate::aggregate::{BindingCommand, IdentityConflict, OpenidBinding};
use crate::IdentityError;

/// Event table of the identity aggregates (the read-model database already owns `events`).
pub const EVENTS_TABLE: &str = "identity_events";
/// Snapshot table of the identity aggregates (created for completeness; the service uses
/// pure event sourcing since each aggregate holds at most one event).
pub const SNAPSHOTS_TABLE: &str = "identity_snapshots";

// Same columns as postgres-es `db/init.sql`, under our table names.
const PG_DDL: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS identity_events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)",
    "CREATE TABLE IF NOT EXISTS identity_snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
)",
];

// Same columns as sqlite-es `migrations/20221114171845_init.sql`, under our table names.
const SQLITE_DDL: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS identity_events
(
  aggregate_type text                          NOT NULL,
  aggregate_id   text                          NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text                          NOT NULL,
  event_version  text                          NOT NULL,
  payload        text                          NOT NULL,
  metadata       text                          NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT",
    "CREATE TABLE IF NOT EXISTS identity_snapshots
(
  aggregate_type   text                                  NOT NULL,
  aggregate_id     text                                  NOT NULL,
  last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
  payload          text                                  NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT",
];

// Arbitrary constant ("liandong-identity" in spirit): serializes concurrent start-ups, because
// two concurrent `CREATE TABLE IF NOT EXISTS` in Postgres can still fail with a unique
// violation on the catalog.
const PG_MIGRATE_LOCK: i64 = 0x6c69_616e_6964_0001;

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::PgPool {}
    impl Sealed for sqlx::SqlitePool {}
}

/// A database the identity tables can be created in: `sqlx::PgPool` or `sqlx::SqlitePool`.
pub trait IdentityDatabase: sealed::Sealed + Sync {
    #[doc(hidden)]
    fn create_identity_tables(&self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl IdentityDatabase for PgPool {
    async fn create_identity_tables(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        // Transaction-scoped: released by commit or by rollback when `tx` drops on error.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATE_LOCK)
            .execute(&mut *tx)
            .await?;
        for ddl in PG_DDL {
            sqlx::query(ddl).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

impl IdentityDatabase for SqlitePool {
    async fn create_identity_tables(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        for ddl in SQLITE_DDL {
            sqlx::query(ddl).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

/// Creates `identity_events` and `identity_snapshots` if they do not exist (Postgres or SQLite).
/// Idempotent; the service constructors call it, so explicit calls are only needed by tools.
pub async fn migrate<D: IdentityDatabase>(db: &D) -> Result<(), IdentityError> {
    db.create_identity_tables()
        .await
        .map_err(|e| IdentityError::Unavailable(format!("creating identity tables: {e}")))
}

type PgStore = PersistedEventStore<PostgresEventRepository, OpenidBinding>;
type SqliteStore = PersistedEventStore<SqliteEventRepository, OpenidBinding>;
pub(crate) type StoreError = AggregateError<IdentityConflict>;

/// The command side over one of the two supported databases. `store` is a second handle on
/// the same tables, used to read a binding without issuing a command (the framework keeps
/// its own store private).
pub(crate) enum Backend {
    Postgres {
        cqrs: PostgresCqrs<OpenidBinding>,
        store: PgStore,
        pool: PgPool,
    },
    Sqlite {
        cqrs: SqliteCqrs<OpenidBinding>,
        store: SqliteStore,
        pool: SqlitePool,
    },
}

impl Backend {
    pub(crate) fn postgres(pool: PgPool) -> Self {
        let repo = || {
            PostgresEventRepository::new(pool.clone()).with_tables(EVENTS_TABLE, SNAPSHOTS_TABLE)
        };
        Backend::Postgres {
            cqrs: CqrsFramework::new(PersistedEventStore::new_event_store(repo()), vec![], ()),
            store: PersistedEventStore::new_event_store(repo()),
            pool,
        }
    }

    pub(crate) fn sqlite(pool: SqlitePool) -> Self {
        let repo =
            || SqliteEventRepository::new(pool.clone()).with_tables(EVENTS_TABLE, SNAPSHOTS_TABLE);
        Backend::Sqlite {
            cqrs: CqrsFramework::new(PersistedEventStore::new_event_store(repo()), vec![], ()),
            store: PersistedEventStore::new_event_store(repo()),
            pool,
        }
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

    /// Which of `hashes` are in the erasure registry (`liandong_erasures`, in the same database).
    pub(crate) async fn erased(&self, hashes: &[String]) -> Result<Vec<String>, sqlx::Error> {
        let list = serde_json::to_string(hashes).unwrap_or_else(|_| "[]".to_owned());
        match self {
            Backend::Postgres { pool, .. } => {
                sqlx::query_scalar(
                    "SELECT id_hash FROM liandong_erasures
                     WHERE id_hash IN (SELECT jsonb_array_elements_text($1::jsonb))",
                )
                .bind(list)
                .fetch_all(pool)
                .await
            }
            Backend::Sqlite { pool, .. } => {
                sqlx::query_scalar(
                    "SELECT id_hash FROM liandong_erasures
                     WHERE id_hash IN (SELECT value FROM json_each($1))",
                )
                .bind(list)
                .fetch_all(pool)
                .await
            }
        }
    }

    /// The unionid the aggregate `id` is bound to in the database, if any.
    pub(crate) async fn load(&self, id: &str) -> Result<Option<String>, StoreError> {
        let context = match self {
            Backend::Postgres { store, .. } => store.load_aggregate(id).await?,
            Backend::Sqlite { store, .. } => store.load_aggregate(id).await?,
        };
        Ok(context.aggregate.unionid)
    }

    pub(crate) async fn execute(
        &self,
        id: &str,
        command: BindingCommand,
    ) -> Result<(), StoreError> {
        match self {
            Backend::Postgres { cqrs, .. } => cqrs.execute(id, command).await,
            Backend::Sqlite { cqrs, .. } => cqrs.execute(id, command).await,
        }
    }
}
