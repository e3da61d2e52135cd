//! The read store: one PostgreSQL (production) or SQLite (embedded default) database reached
//! through sqlx, and the bookkeeping every projector keeps in it — the next log offset of each
//! partition and the version of each projection. Positions move only inside the transaction that
//! applies the events before them, which is what makes the projectors' effects exactly-once.

pub mod api_keys;
pub mod audit;
pub mod dead_letters;
pub mod erasures;
pub mod rebuild;
pub mod sql;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use sqlx;

/// Errors of the read store. Every one is worth a retry except `Config`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("LIANDONG_DATABASE_URL: {0}")]
    Config(String),
    #[error("read store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("read store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another projector instance moved a position this one expected to move (a rebalance in
    /// flight): the batch was rolled back and must be re-read from the stored positions.
    #[error("projection {projection}: partition {partition} was advanced by another projector")]
    PositionMoved { projection: String, partition: i32 },
    /// A newer version of the projection runs elsewhere; this process must stop projecting it.
    #[error("projection {projection}: version {mine} is superseded by version {stored}")]
    Superseded {
        projection: String,
        mine: i32,
        stored: i32,
    },
}

/// Which database a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// A connection pool to the read store.
#[derive(Clone, Debug)]
pub enum ReadStore {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl ReadStore {
    /// Connects to `postgres://…` or `sqlite://…` (the SQLite file and its folder are created).
    pub async fn connect(url: &str) -> Result<ReadStore, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("not a PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(ReadStore::Postgres(pool))
        } else if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or(rest);
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            // WAL lets the query API read while a projector writes; NORMAL synchronous is safe
            // in WAL mode (a crash loses at most the last transactions, never consistency), and
            // the log, not this store, is the durable record.
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("not an SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await?;
            Ok(ReadStore::Sqlite(pool))
        } else {
            Err(StoreError::Config(format!(
                "expected a postgres:// or sqlite:// URL, got {url:?}"
            )))
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            ReadStore::Postgres(_) => Dialect::Postgres,
            ReadStore::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Creates or upgrades the store's own tables (`migrations/`): the bookkeeping, the audit
    /// trail ([`audit`]), the stored API keys ([`api_keys`]) and the dead-letter replays
    /// ([`dead_letters`]). Idempotent and safe to race (sqlx's migrator locks the database).
    pub async fn init(&self) -> Result<(), StoreError> {
        static POSTGRES: Migrator = Migrator {
            ignore_missing: true,
            ..sqlx::migrate!("./migrations/postgres")
        };
        static SQLITE: Migrator = Migrator {
            ignore_missing: true,
            ..sqlx::migrate!("./migrations/sqlite")
        };
        self.run_migrations(&POSTGRES, &SQLITE).await
    }

    /// Runs the migrator of this store's dialect. Each crate that owns tables in the read store
    /// keeps its migrations (both dialects) in its own `migrations/` and its own range of
    /// versions — the read models 1…999, `liandong-store` 1001…, `liandong-vault` 2001… — so
    /// the migrators share sqlx's `_sqlx_migrations` table and must set `ignore_missing`
    /// (the versions of the other crates are not missing, only not theirs).
    pub async fn run_migrations(
        &self,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<(), StoreError> {
        debug_assert!(postgres.ignore_missing && sqlite.ignore_missing);
        match self {
            ReadStore::Postgres(p) => postgres.run(p).await?,
            ReadStore::Sqlite(p) => sqlite.run(p).await?,
        }
        Ok(())
    }

    /// The stored version of a projection, if it was ever projected.
    pub async fn projection_version(&self, projection: &str) -> Result<Option<i32>, StoreError> {
        let row: Option<(i32,)> = self
            .fetch_optional(
                PROJECTION_VERSION.text(self.dialect()),
                &[projection.into()],
            )
            .await?;
        Ok(row.map(|(v,)| v))
    }

    /// The next offset to read of every partition a projection has positions for.
    pub async fn positions(&self, projection: &str) -> Result<Vec<(i32, i64)>, StoreError> {
        const Q: &str = "SELECT partition, next_offset FROM liandong_positions
                         WHERE projection = $1 ORDER BY partition";
        self.fetch_all(Q, &[projection.into()]).await
    }

    /// The next offset to read of one partition (0 when none is stored).
    pub async fn position(&self, projection: &str, partition: i32) -> Result<i64, StoreError> {
        const Q: &str =
            "SELECT next_offset FROM liandong_positions WHERE projection = $1 AND partition = $2";
        let row: Option<(i64,)> = self
            .fetch_optional(Q, &[projection.into(), partition.into()])
            .await?;
        Ok(row.map_or(0, |(v,)| v))
    }
}

/// One partition's move within a batch: from the position the projector read to the one after
/// the batch's last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    pub partition: i32,
    pub from: i64,
    pub to: i64,
}

static PROJECTION_VERSION: sql::Statement = sql::Statement::new(|_| {
    "SELECT version FROM liandong_projections WHERE projection = $1".to_owned()
});
static SET_VERSION: sql::Statement = sql::Statement::new(|d| {
    let v = match d {
        Dialect::Postgres => "$2::integer",
        Dialect::Sqlite => "CAST($2 AS INTEGER)",
    };
    format!(
        "INSERT INTO liandong_projections (projection, version) VALUES ($1, {v})
         ON CONFLICT (projection) DO UPDATE SET version = excluded.version"
    )
});
static FIRST_ADVANCE: sql::Statement = sql::Statement::new(|d| {
    let (p, n) = match d {
        Dialect::Postgres => ("$2::integer", "$3::bigint"),
        Dialect::Sqlite => ("CAST($2 AS INTEGER)", "CAST($3 AS INTEGER)"),
    };
    format!(
        "INSERT INTO liandong_positions (projection, partition, next_offset) VALUES ($1, {p}, {n})
         ON CONFLICT (projection, partition) DO UPDATE SET next_offset = excluded.next_offset
         WHERE liandong_positions.next_offset = 0"
    )
});
static ADVANCE: sql::Statement = sql::Statement::new(|d| {
    let (p, from, to) = match d {
        Dialect::Postgres => ("$2::integer", "$3::bigint", "$4::bigint"),
        Dialect::Sqlite => (
            "CAST($2 AS INTEGER)",
            "CAST($3 AS INTEGER)",
            "CAST($4 AS INTEGER)",
        ),
    };
    format!(
        "UPDATE liandong_positions SET next_offset = {to}
         WHERE projection = $1 AND partition = {p} AND next_offset = {from}"
    )
});
static FORGET_POSITIONS: sql::Statement =
    sql::Statement::new(|_| "DELETE FROM liandong_positions WHERE projection = $1".to_owned());

/// Moves a projection's positions by compare-and-set, inside the transaction that applied the
/// batch: each partition must still be where the batch began (`from`), or another projector
/// moved it first ([`StoreError::PositionMoved`]); the projection must still be of `version`
/// ([`StoreError::Superseded`]).
pub async fn advance<C: sql::Db + ?Sized>(
    conn: &mut C,
    projection: &str,
    version: i32,
    advances: &[Advance],
) -> Result<(), StoreError> {
    let stored: Vec<(i32,)> = conn.fetch(&PROJECTION_VERSION, &[projection]).await?;
    match stored.first() {
        Some((v,)) if *v == version => {}
        other => {
            return Err(StoreError::Superseded {
                projection: projection.to_owned(),
                mine: version,
                stored: other.map_or(-1, |(v,)| *v),
            })
        }
    }
    for a in advances {
        let (partition, from, to) = (
            a.partition.to_string(),
            a.from.to_string(),
            a.to.to_string(),
        );
        let moved = if a.from == 0 {
            conn.exec(&FIRST_ADVANCE, &[projection, &partition, &to])
                .await?
        } else {
            conn.exec(&ADVANCE, &[projection, &partition, &from, &to])
                .await?
        };
        if moved != 1 {
            return Err(StoreError::PositionMoved {
                projection: projection.to_owned(),
                partition: a.partition,
            });
        }
    }
    Ok(())
}

/// Empties a projection's tables (in the order given, which foreign keys must allow), forgets
/// its positions and records `version`: it is rebuilt from the start of the log.
pub async fn reset<C: sql::Db + ?Sized>(
    conn: &mut C,
    projection: &str,
    version: i32,
    tables: &[&str],
) -> Result<(), StoreError> {
    for t in tables {
        // Table names come from the projections' code, never from input.
        conn.exec_text(&format!("DELETE FROM {t}")).await?;
    }
    conn.exec(&FORGET_POSITIONS, &[projection]).await?;
    conn.exec(&SET_VERSION, &[projection, &version.to_string()])
        .await?;
    Ok(())
}
