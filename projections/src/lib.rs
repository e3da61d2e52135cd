//! The read models of liandong. Each projection is a fold of the event log into tables of the
//! read store: its pure logic and its SQL (for PostgreSQL and for the embedded SQLite store)
//! live side by side here; the projector runtime (`liandong-projector`) feeds it batches and
//! moves the log positions in the same transaction.

pub mod ab;
pub mod ab_readout;
pub mod activity;
pub mod core;
pub mod erasure;
pub mod linkage;
pub mod member_interest;
pub mod member_personal;
pub mod member_profile;
mod members;
pub mod messages;
pub mod orders;
pub mod read;
pub mod retention_follower;
pub mod retention_repurchase;
pub mod retention_weekly;
pub mod segments;
pub(crate) use liandong_store::sql;
pub mod time;
mod traffic;

use async_trait::async_trait;
use liandong_event::Event;
use liandong_store::{Dialect, ReadStore, StoreError};
use sqlx::migrate::Migrator;

pub use crate::core::CoreProjection;

/// The relations an analyst may read: the metric relations of METRICS.md (counts that name no
/// member) and the de-identified `analyst_*` views, where `member_ref`, a keyed hash of the
/// member key, stands for every identifier. Every other relation of the read store holds
/// identifiers (`events`, `member_profile`, `member_identity`, the `fact_*` tables,
/// `member_pseudonym`), personal data, or liandong's own bookkeeping.
pub const ANALYST_RELATIONS: &[&str] = &[
    "metric_menu_entry_daily",
    "metric_article_daily",
    "metric_linkage_daily",
    "retention_repurchase_30d",
    "retention_follower_30d",
    "retention_weekly",
    "ab_readout",
    "metric_message_daily",
    "metric_activity",
    "analyst_events",
    "analyst_member_profile",
    "analyst_fact_member_day",
    "analyst_fact_conversion",
    "analyst_fact_follower",
    "analyst_fact_member_week",
    "analyst_fact_experiment",
    "analyst_fact_message",
    "analyst_fact_activity",
];

// Versions 1…999; the store's own tables (1001…) and the vault's (2001…) share
// `_sqlx_migrations` (see `ReadStore::run_migrations`).
static PG_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};
static SQLITE_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};

/// Creates or upgrades every read model's tables, and the store's own (the runtime's
/// bookkeeping among them).
pub async fn migrate(store: &ReadStore) -> Result<(), StoreError> {
    store.init().await?;
    store
        .run_migrations(&PG_MIGRATIONS, &SQLITE_MIGRATIONS)
        .await
}

/// An open read-store transaction, of either dialect.
pub enum Tx<'a> {
    Postgres(&'a mut sqlx::PgConnection),
    Sqlite(&'a mut sqlx::SqliteConnection),
}

impl<'a> From<&'a mut liandong_store::sql::StoreTx> for Tx<'a> {
    fn from(tx: &'a mut liandong_store::sql::StoreTx) -> Tx<'a> {
        match tx {
            liandong_store::sql::StoreTx::Postgres(t) => Tx::Postgres(t),
            liandong_store::sql::StoreTx::Sqlite(t) => Tx::Sqlite(t),
        }
    }
}

impl Tx<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Postgres(_) => Dialect::Postgres,
            Tx::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// A read model maintained from the log.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name; the consumer group and the stored positions are keyed by it.
    fn name(&self) -> &'static str;
    /// Bumping the version rebuilds the projection from the start of the log.
    fn version(&self) -> i32;
    /// The tables it owns, emptied before a rebuild (in an order foreign keys allow).
    fn tables(&self) -> &'static [&'static str];
    /// Applies a batch of events inside the runtime's transaction. The batch may hold events
    /// already applied (a redelivery) and events in any order; the result must be the same.
    async fn apply(&self, tx: Tx<'_>, events: &[Event]) -> Result<(), StoreError>;
}

/// Records the configured time zone where the read models' views find it ("today" of the
/// retention views). SQLite has no zone database: it gets the zone's current UTC offset, which
/// the caller refreshes now and then (a zone with daylight saving changes it twice a year).
pub async fn set_timezone(store: &ReadStore, tz: chrono_tz::Tz) -> Result<(), StoreError> {
    use chrono::Offset;
    let offset = chrono::Utc::now()
        .with_timezone(&tz)
        .offset()
        .fix()
        .local_minus_utc();
    const UPSERT: &str = "INSERT INTO liandong_settings (key, value) VALUES ($1, $2)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    for (k, v) in [
        ("timezone", tz.name().to_owned()),
        ("utc_offset", format!("{offset:+} seconds")),
    ] {
        store.execute(UPSERT, &[k.into(), v.into()]).await?;
    }
    Ok(())
}
