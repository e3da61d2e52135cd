//! `liandong rebuild [PROJECTION…]`: empties projections and forgets their log positions, so they
//! are rebuilt from the start of the log — what a version bump does, without a new binary.
//! After an erasure it shows that the log no longer brings the member back: the erasure
//! registry is no projection's table and stays.
//!
//! Run it with the projectors stopped and start them again: they rebuild from offset 0 while
//! ingestion goes on. (A projector left running notices at its next batch — its stored position
//! moved — and starts over from offset 0 too, but an idle one would wait for that batch.)

use std::sync::Arc;

use anyhow::{bail, Context};
use liandong_projections::Projection;
use liandong_store::ReadStore;
use liandong_vault::{MasterKey, Vault};

use crate::Config;

/// Resets the named projections (every one when `only` is empty); returns (name, version) of
/// each one reset.
pub async fn rebuild(cfg: &Config, only: &[String]) -> anyhow::Result<Vec<(String, i32)>> {
    // Only names, versions and tables are read here: any key will do.
    let projections = crate::projections(cfg, Arc::new(Vault::new(MasterKey::generate())));
    if let Some(unknown) = only
        .iter()
        .find(|n| !projections.iter().any(|p| p.name() == n.as_str()))
    {
        let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
        bail!(
            "no projection {unknown:?} (projections: {})",
            names.join(", ")
        );
    }
    let store = ReadStore::connect(&cfg.database_url)
        .await
        .context("LIANDONG_DATABASE_URL: cannot open the read store")?;
    liandong_projections::migrate(&store)
        .await
        .context("migrating the read store")?;
    let mut done = Vec::new();
    for p in projections
        .iter()
        .filter(|p| only.is_empty() || only.iter().any(|n| n == p.name()))
    {
        reset(&store, p.as_ref()).await?;
        done.push((p.name().to_owned(), p.version()));
    }
    Ok(done)
}

async fn reset(store: &ReadStore, p: &dyn Projection) -> anyhow::Result<()> {
    let (name, version, tables) = (p.name(), p.version(), p.tables());
    let newer = |stored: Option<i32>| -> anyhow::Result<()> {
        match stored {
            Some(v) if v > version => bail!(
                "projection {name}: the read store holds version {v}, this binary has {version}: rebuild it with the newer binary"
            ),
            _ => Ok(()),
        }
    };
    const VERSION: &str = "SELECT version FROM liandong_projections WHERE projection = $1";
    match store {
        ReadStore::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // A batch that has moved its positions already is waited for; one that has not
            // will find them gone (its compare-and-set fails) and roll back.
            liandong_store::sqlx::query("LOCK TABLE liandong_positions IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let stored: Option<i32> = liandong_store::sqlx::query_scalar(VERSION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            newer(stored)?;
            liandong_store::reset_pg(&mut tx, name, version, tables).await?;
            tx.commit().await?;
        }
        ReadStore::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let stored: Option<i32> = liandong_store::sqlx::query_scalar(VERSION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            newer(stored)?;
            liandong_store::reset_sqlite(&mut tx, name, version, tables).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
