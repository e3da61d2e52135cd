//! The SQL dialect layer of the read store: the one place that knows how PostgreSQL and the
//! embedded SQLite store differ, for the read models (`liandong-projections`) and the store's
//! own tables (the erasure registry). A statement is written once, as a function of the
//! [`Dialect`], with these helpers for the parts that differ (reading a JSON array as records,
//! writing a time as canonical text, taking a lock); [`Db`] runs it on a connection of either.
//!
//! Every argument is text: a JSON array of records or values, so one statement handles a whole
//! batch in one round trip, whatever its size.

use std::sync::OnceLock;

use crate::{Dialect, StoreError};
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// A statement written once for both dialects; its text is built on first use and kept.
pub struct Statement {
    build: fn(Dialect) -> String,
    texts: [OnceLock<String>; 2],
}

impl Statement {
    pub const fn new(build: fn(Dialect) -> String) -> Statement {
        Statement {
            build,
            texts: [OnceLock::new(), OnceLock::new()],
        }
    }

    pub fn text(&self, d: Dialect) -> &str {
        let slot = match d {
            Dialect::Postgres => &self.texts[0],
            Dialect::Sqlite => &self.texts[1],
        };
        slot.get_or_init(|| (self.build)(d))
    }
}

/// The type of a column read from a JSON record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    /// A time, as canonical RFC 3339 text in JSON (see `liandong_projections::member_profile::ts`).
    Ts,
    Date,
    Bool,
    Int,
    Float,
    /// A JSON value (`jsonb` on PostgreSQL, its text on SQLite).
    Json,
    /// An event id (`uuid` on PostgreSQL, text on SQLite).
    Uuid,
}

impl Ty {
    fn pg(self) -> &'static str {
        match self {
            Ty::Text => "text",
            Ty::Ts => "timestamptz",
            Ty::Date => "date",
            Ty::Bool => "boolean",
            Ty::Int => "bigint",
            Ty::Float => "double precision",
            Ty::Json => "jsonb",
            Ty::Uuid => "uuid",
        }
    }
}

/// Columns of a record set: name and type.
pub type Columns = &'static [(&'static str, Ty)];

/// The JSON array in parameter `$n` as a relation named `alias` with `cols`, for a FROM clause.
pub fn records(d: Dialect, n: usize, alias: &str, cols: Columns) -> String {
    match d {
        Dialect::Postgres => {
            let typed: Vec<String> = cols
                .iter()
                .map(|(c, t)| format!("{c} {}", t.pg()))
                .collect();
            format!(
                "jsonb_to_recordset(${n}::jsonb) AS {alias}({})",
                typed.join(", ")
            )
        }
        Dialect::Sqlite => {
            let values: Vec<String> = cols
                .iter()
                .map(|(c, _)| format!("value ->> '{c}' AS {c}"))
                .collect();
            format!(
                "(SELECT {} FROM json_each(${n})) AS {alias}",
                values.join(", ")
            )
        }
    }
}

/// The JSON array of strings in parameter `$n` as a subquery of values, for `IN`.
pub fn values(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Postgres => format!("(SELECT jsonb_array_elements_text(${n}::jsonb))"),
        Dialect::Sqlite => format!("(SELECT value FROM json_each(${n}))"),
    }
}

/// `INSERT INTO table (cols) SELECT cols FROM <the records in $1>`, without a conflict clause.
pub fn insert(d: Dialect, table: &str, cols: Columns) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    format!(
        "INSERT INTO {table} ({names}) SELECT {names} FROM {} WHERE true",
        records(d, 1, "x", cols),
        names = names.join(", ")
    )
}

/// [`insert`] with `ON CONFLICT (key) DO UPDATE SET` each other column to `set(column)`.
fn insert_or_update(
    d: Dialect,
    table: &str,
    key: &[&str],
    cols: Columns,
    set: impl Fn(&str) -> String,
) -> String {
    let set: Vec<String> = cols
        .iter()
        .filter(|(c, _)| !key.contains(c))
        .map(|(c, _)| set(c))
        .collect();
    format!(
        "{} ON CONFLICT ({}) DO UPDATE SET {}",
        insert(d, table, cols),
        key.join(", "),
        set.join(", ")
    )
}

/// `INSERT … ON CONFLICT (key) DO UPDATE SET` every other column to the new value.
pub fn upsert(d: Dialect, table: &str, key: &[&str], cols: Columns) -> String {
    insert_or_update(d, table, key, cols, |c| format!("{c} = excluded.{c}"))
}

/// `INSERT … ON CONFLICT (key) DO UPDATE SET c = c + excluded.c` for every other column: a
/// commutative update, so concurrent batches may add to the same rows. Rows come sorted by key
/// (the caller's BTreeMap order), so two batches lock shared rows in the same order.
pub fn add_counts(d: Dialect, table: &str, key: &[&str], cols: Columns) -> String {
    insert_or_update(d, table, key, cols, |c| {
        format!("{c} = {table}.{c} + excluded.{c}")
    })
}

/// A time column as canonical text (RFC 3339, UTC, microseconds), as the folds parse it.
pub fn ts_text(d: Dialect, col: &str) -> String {
    match d {
        Dialect::Postgres => {
            format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        }
        Dialect::Sqlite => col.to_owned(),
    }
}

/// The larger of two expressions of the same type (a time kept as canonical text on SQLite
/// compares as text).
pub fn greatest(d: Dialect, a: &str, b: &str) -> String {
    match d {
        Dialect::Postgres => format!("GREATEST({a}, {b})"),
        Dialect::Sqlite => format!("max({a}, {b})"),
    }
}

/// A column as text (dates, uuids).
pub fn text(d: Dialect, col: &str) -> String {
    match d {
        Dialect::Postgres => format!("{col}::text"),
        Dialect::Sqlite => col.to_owned(),
    }
}

/// What a row decodes into on both stores (a tuple of `String`, `Option<String>`, `i64`, `bool`).
pub trait Row:
    for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin + 'static
{
}
impl<T> Row for T where
    T: for<'r> sqlx::FromRow<'r, PgRow>
        + for<'r> sqlx::FromRow<'r, SqliteRow>
        + Send
        + Unpin
        + 'static
{
}

/// A connection of either store, inside the projector's transaction.
#[async_trait]
pub trait Db: Send {
    /// Runs `s` with text arguments `$1…`; returns the rows it changed.
    async fn exec(&mut self, s: &Statement, args: &[&str]) -> Result<u64, StoreError>;
    async fn fetch<T: Row>(&mut self, s: &Statement, args: &[&str]) -> Result<Vec<T>, StoreError>;
    /// Runs SQL built at run time that is the same in both dialects (a `DELETE FROM` of a
    /// table named by code), without arguments.
    async fn exec_text(&mut self, sql: &str) -> Result<u64, StoreError>;
    /// Serializes this transaction against every other one that locks any of `keys` (JSON array
    /// of strings), until it ends. The keys are locked in sorted order, so two transactions
    /// that lock overlapping sets in one call each never deadlock on them. No-op on SQLite,
    /// whose transactions already write one at a time.
    async fn lock(&mut self, keys: &str) -> Result<(), StoreError>;
}

static LOCK: Statement = Statement::new(|_| {
    // The subquery sorts; the aggregate forces every lock to be taken before the row returns.
    "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtextextended(k, 7) AS h
        FROM jsonb_array_elements_text($1::jsonb) AS k ORDER BY 1) AS s"
        .to_owned()
});

macro_rules! db {
    ($conn:ty, $dialect:expr) => {
        #[async_trait]
        impl Db for $conn {
            async fn exec(&mut self, s: &Statement, args: &[&str]) -> Result<u64, StoreError> {
                let mut q = sqlx::query(s.text($dialect));
                for a in args {
                    q = q.bind(*a);
                }
                Ok(q.execute(self).await?.rows_affected())
            }
            async fn fetch<T: Row>(
                &mut self,
                s: &Statement,
                args: &[&str],
            ) -> Result<Vec<T>, StoreError> {
                let mut q = sqlx::query_as::<_, T>(s.text($dialect));
                for a in args {
                    q = q.bind(*a);
                }
                Ok(q.fetch_all(self).await?)
            }
            async fn exec_text(&mut self, sql: &str) -> Result<u64, StoreError> {
                Ok(sqlx::query(sql).execute(self).await?.rows_affected())
            }
            async fn lock(&mut self, keys: &str) -> Result<(), StoreError> {
                if $dialect == Dialect::Postgres && keys != "[]" {
                    sqlx::query(LOCK.text($dialect))
                        .bind(keys)
                        .execute(self)
                        .await?;
                }
                Ok(())
            }
        }
    };
}

db!(sqlx::PgConnection, Dialect::Postgres);
db!(sqlx::SqliteConnection, Dialect::Sqlite);

/// A JSON text of `v`. Serializing the plain data structs of the read models cannot fail.
pub fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

/// An argument of a statement run on the pool ([`crate::ReadStore::fetch_all`]): text, an
/// integer, bytes or a time, each possibly NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Option<Vec<u8>>),
    /// A `timestamptz` on PostgreSQL; sqlx's text form of it on SQLite.
    Time(Option<chrono::DateTime<chrono::Utc>>),
}

impl From<chrono::DateTime<chrono::Utc>> for Arg {
    fn from(v: chrono::DateTime<chrono::Utc>) -> Arg {
        Arg::Time(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}
impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Arg {
        Arg::Text(v.clone())
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Arg {
        Arg::Bytes(Some(v.to_owned()))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::Int(Some(v.into()))
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Arg {
        Arg::Int(Some(v.into()))
    }
}

/// `args` bound to `$1…` of a query of either store.
macro_rules! bind {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Int(v) => q.bind(*v),
                Arg::Bytes(v) => q.bind(v.clone()),
                Arg::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Statements run on the pool, outside a projector's transaction: the reads of the query API
/// and the writes of the store's own small tables. `sql` is the text for [`ReadStore::dialect`]
/// (a [`Statement`]'s, or one that is the same in both).
impl crate::ReadStore {
    pub async fn fetch_all<T: Row>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            crate::ReadStore::Postgres(p) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_all(p)
                    .await?
            }
            crate::ReadStore::Sqlite(p) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_all(p)
                    .await?
            }
        })
    }

    pub async fn fetch_optional<T: Row>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<T>, StoreError> {
        Ok(match self {
            crate::ReadStore::Postgres(p) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_optional(p)
                    .await?
            }
            crate::ReadStore::Sqlite(p) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_optional(p)
                    .await?
            }
        })
    }

    /// Whether the store has a table named `name` (in any schema).
    pub async fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        let sql = match self.dialect() {
            Dialect::Postgres => "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = $1",
            Dialect::Sqlite => {
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = $1"
            }
        };
        let found: Vec<(i64,)> = self.fetch_all(sql, &[name.into()]).await?;
        Ok(found.first().is_some_and(|(n,)| *n > 0))
    }

    /// Runs `sql`; the rows it changed.
    pub async fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(match self {
            crate::ReadStore::Postgres(p) => bind!(sqlx::query(sql), args)
                .execute(p)
                .await?
                .rows_affected(),
            crate::ReadStore::Sqlite(p) => bind!(sqlx::query(sql), args)
                .execute(p)
                .await?
                .rows_affected(),
        })
    }
}

/// A transaction of the read store, of either dialect ([`crate::ReadStore::begin`]). Runs
/// statements like the pool does ([`Arg`]s), and is a [`Db`] for the read models' folds.
pub enum StoreTx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl crate::ReadStore {
    /// Begins a transaction that writes. On SQLite its first statement is a write, which takes
    /// the write lock at once, waiting out the busy timeout while another connection writes: a
    /// transaction that read first could not take it once another writer had committed (SQLite
    /// refuses that at once, "database is locked"), and its whole work would be retried.
    /// Not `BEGIN IMMEDIATE`: sqlx checks a custom `BEGIN` after running it, and a future
    /// dropped between the two leaves the transaction open on the pooled connection, holding
    /// the write lock for good (`cancelled_anywhere_applies_each_record_exactly_once` in the
    /// projector's tests hangs on it).
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        Ok(match self {
            crate::ReadStore::Postgres(p) => StoreTx::Postgres(p.begin().await?),
            crate::ReadStore::Sqlite(p) => {
                let mut tx = p.begin().await?;
                // An UPDATE takes the write lock even when it matches no row.
                sqlx::query("UPDATE liandong_projections SET version = version WHERE false")
                    .execute(&mut *tx)
                    .await?;
                StoreTx::Sqlite(tx)
            }
        })
    }
}

impl StoreTx {
    pub fn dialect(&self) -> Dialect {
        match self {
            StoreTx::Postgres(_) => Dialect::Postgres,
            StoreTx::Sqlite(_) => Dialect::Sqlite,
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            StoreTx::Postgres(t) => t.commit().await?,
            StoreTx::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn fetch_all<T: Row>(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            StoreTx::Postgres(t) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_all(&mut **t)
                    .await?
            }
            StoreTx::Sqlite(t) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_all(&mut **t)
                    .await?
            }
        })
    }

    /// The one row `sql` returns; an error if it returns none.
    pub async fn fetch_one<T: Row>(&mut self, sql: &str, args: &[Arg]) -> Result<T, StoreError> {
        Ok(match self {
            StoreTx::Postgres(t) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_one(&mut **t)
                    .await?
            }
            StoreTx::Sqlite(t) => {
                bind!(sqlx::query_as::<_, T>(sql), args)
                    .fetch_one(&mut **t)
                    .await?
            }
        })
    }

    /// Runs `sql`; the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(match self {
            StoreTx::Postgres(t) => bind!(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            StoreTx::Sqlite(t) => bind!(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }
}

#[async_trait]
impl Db for StoreTx {
    async fn exec(&mut self, s: &Statement, args: &[&str]) -> Result<u64, StoreError> {
        match self {
            StoreTx::Postgres(t) => (**t).exec(s, args).await,
            StoreTx::Sqlite(t) => (**t).exec(s, args).await,
        }
    }
    async fn fetch<T: Row>(&mut self, s: &Statement, args: &[&str]) -> Result<Vec<T>, StoreError> {
        match self {
            StoreTx::Postgres(t) => (**t).fetch(s, args).await,
            StoreTx::Sqlite(t) => (**t).fetch(s, args).await,
        }
    }
    async fn exec_text(&mut self, sql: &str) -> Result<u64, StoreError> {
        match self {
            StoreTx::Postgres(t) => (**t).exec_text(sql).await,
            StoreTx::Sqlite(t) => (**t).exec_text(sql).await,
        }
    }
    async fn lock(&mut self, keys: &str) -> Result<(), StoreError> {
        match self {
            StoreTx::Postgres(t) => (**t).lock(keys).await,
            StoreTx::Sqlite(t) => (**t).lock(keys).await,
        }
    }
}
