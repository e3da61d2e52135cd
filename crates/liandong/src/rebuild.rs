//! `liandong rebuild [PROJECTION…]`: rebuilds projections from the start of the log — what a
//! version bump does, without a new binary. After an erasure it shows that the log no longer
//! brings the member back: the erasure registry is no projection's table and stays.
//!
//! On PostgreSQL the rebuild is blue/green: the command registers it, and the running
//! projectors (`serve`, `project`) build the projection into a schema of its own while the live
//! tables keep answering, then swap it in once caught up (see `liandong_store::rebuild`). The
//! command follows the progress with a bar and an ETA until the swap; interrupting it leaves the
//! rebuild to the projectors, and running it again follows it on. A projector killed mid-way
//! resumes the build from its stored positions.
//!
//! On SQLite, the embedded single-process store, the projection is emptied in place and rebuilt
//! when `serve` starts: run it with `serve` stopped.

use std::sync::Arc;

use anyhow::{bail, Context};
use liandong_projections::Projection;
use liandong_store::ReadStore;
use liandong_vault::{MasterKey, Vault};

use crate::Config;

/// What `rebuild` did to a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// PostgreSQL: a build beside the live tables was registered for the projectors.
    Building,
    /// PostgreSQL: a build of this version was under way already; it goes on.
    UnderWay,
    /// SQLite: emptied in place, rebuilt when `serve` starts.
    Emptied,
}

/// Rebuilds the named projections (every one when `only` is empty); returns (name, version,
/// what was done) of each.
pub async fn rebuild(
    cfg: &Config,
    only: &[String],
) -> anyhow::Result<Vec<(String, i32, Requested)>> {
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
        let what = request(&store, p.as_ref()).await?;
        done.push((p.name().to_owned(), p.version(), what));
    }
    Ok(done)
}

async fn request(store: &ReadStore, p: &dyn Projection) -> anyhow::Result<Requested> {
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
            liandong_store::sqlx::query("LOCK TABLE liandong_projections IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let stored: Option<i32> = liandong_store::sqlx::query_scalar(VERSION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            newer(stored)?;
            let what = if stored.is_none() {
                // Never projected: nothing to keep answering; the projectors build it live.
                liandong_store::reset(&mut *tx, name, version, tables).await?;
                Requested::Emptied
            } else if liandong_store::rebuild::begin_build_pg(&mut tx, name, version, tables)
                .await?
            {
                Requested::Building
            } else {
                Requested::UnderWay
            };
            tx.commit().await?;
            Ok(what)
        }
        ReadStore::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let stored: Option<i32> = liandong_store::sqlx::query_scalar(VERSION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            newer(stored)?;
            liandong_store::reset(&mut *tx, name, version, tables).await?;
            tx.commit().await?;
            Ok(Requested::Emptied)
        }
    }
}

/// Where a rebuild stands, as the read store tells it: `None` once it has been swapped in;
/// otherwise the records built and the log's end as the projectors last saw it (0 before a
/// projector has looked).
pub async fn progress(store: &ReadStore, projection: &str) -> anyhow::Result<Option<(u64, u64)>> {
    let Some(build) = liandong_store::rebuild::under_way(store, projection).await? else {
        return Ok(None);
    };
    let ends: std::collections::HashMap<i32, i64> = build.ends.iter().copied().collect();
    let built: i64 = build
        .positions
        .iter()
        .map(|&(p, n)| ends.get(&p).map_or(n, |e| n.min(*e)))
        .sum();
    let end: i64 = ends.values().sum();
    Ok(Some((built.max(0) as u64, end.max(0) as u64)))
}

/// Follows the rebuilds of `names` until each has been swapped in, drawing a progress bar with
/// an ETA per projection.
pub async fn follow(cfg: &Config, names: &[String]) -> anyhow::Result<()> {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let store = ReadStore::connect(&cfg.database_url)
        .await
        .context("LIANDONG_DATABASE_URL: cannot open the read store")?;
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:>8} {bar:40.green/blue} {human_pos}/{human_len} events  {per_sec:.dim}  eta {eta}  {msg}",
    )
    .expect("a valid template")
    .progress_chars("█▉▊▋▌▍▎▏ ");
    let mut pending: Vec<(String, ProgressBar)> = names
        .iter()
        .map(|n| {
            let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
            bar.set_prefix(n.clone());
            bar.set_message("waiting for a projector (liandong serve / project) to build it");
            (n.clone(), bar)
        })
        .collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (name, bar) in pending {
            match progress(&store, &name).await? {
                None => {
                    bar.set_message("swapped in");
                    bar.finish();
                }
                Some((built, end)) => {
                    if end > 0 {
                        bar.set_length(end);
                        bar.set_position(built);
                        bar.set_message(if built >= end { "swapping in" } else { "" });
                    }
                    still.push((name, bar));
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    Ok(())
}
