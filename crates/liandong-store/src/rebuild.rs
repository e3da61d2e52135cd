//! Blue/green rebuilds of a projection on PostgreSQL.
//!
//! A rebuild (a version bump, or `liandong rebuild`) folds the log from offset 0 into a copy of
//! the projection's tables in a schema of its own, `liandong_build_<projection>`, while the
//! live tables keep answering. Its log positions are a slot of their own,
//! `<projection>#build`, registered in `liandong_projections` like a projection, so the same
//! compare-and-set keeps them exact. Once the build has caught up with the log, one
//! transaction swaps it in: the live tables take the built rows, the live positions take the
//! build's, and the build's schema is dropped. Readers see the old rows until that commit and
//! the new ones after it, never a half-built table; the copy costs one pass over the built
//! rows, at `INSERT … SELECT` speed, and running projectors of the projection wait for it.
//!
//! SQLite, the embedded single-process store, has no schemas to build beside the live tables:
//! it rebuilds in place (see [`crate::reset`]).

use sqlx::PgConnection;

use crate::{ReadStore, StoreError};

/// The positions slot (and registry row) of a projection's rebuild.
pub fn build_slot(projection: &str) -> String {
    format!("{projection}#build")
}

/// Where a builder records the log's end offsets it last saw, for progress reports.
pub fn end_slot(projection: &str) -> String {
    format!("{projection}#end")
}

/// A rebuild under way: the version it builds, its positions, and the log's end offsets its
/// builder last recorded ([`end_slot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub version: i32,
    pub positions: Vec<(i32, i64)>,
    pub ends: Vec<(i32, i64)>,
}

/// The rebuild of `projection` under way, if any, read in one statement: read in several, a
/// swap committing between them showed a build still registered but without positions (its
/// progress dropping to 0 at the very end, in `/v1/status` and `liandong rebuild`'s bar).
pub async fn under_way(store: &ReadStore, projection: &str) -> Result<Option<Build>, StoreError> {
    let (slot, end) = (build_slot(projection), end_slot(projection));
    let rows: Vec<(i32, Option<String>, Option<i32>, Option<i64>)> = store
        .fetch_all(
            "SELECT v.version, p.projection, p.partition, p.next_offset
             FROM liandong_projections v
             LEFT JOIN liandong_positions p ON p.projection IN ($1, $2)
             WHERE v.projection = $1
             ORDER BY p.projection, p.partition",
            &[slot.as_str().into(), end.as_str().into()],
        )
        .await?;
    let Some(&(version, ..)) = rows.first() else {
        return Ok(None);
    };
    let mut build = Build {
        version,
        positions: Vec::new(),
        ends: Vec::new(),
    };
    for (_, of, partition, offset) in rows {
        let (Some(of), Some(partition), Some(offset)) = (of, partition, offset) else {
            continue;
        };
        if of == slot {
            build.positions.push((partition, offset));
        } else {
            build.ends.push((partition, offset));
        }
    }
    Ok(Some(build))
}

/// The schema a projection is rebuilt into.
pub fn build_schema(projection: &str) -> String {
    format!("liandong_build_{projection}")
}

/// The `search_path` of a build's transactions: the build's tables first, then the live schema
/// for everything that is no table of the projection (the erasure registry, functions).
pub async fn build_search_path(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<String, StoreError> {
    let live: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await?;
    Ok(format!(
        "{}, {}",
        quote(&build_schema(projection)),
        quote(&live)
    ))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Starts building `version` of `projection` (whose tables are `tables`, in an order foreign
/// keys allow deleting) beside its live tables, unless a build of that version is under way
/// already (it then resumes where it is). Returns whether a new build began. Run it in a
/// transaction that has locked `liandong_projections`.
pub async fn begin_build_pg(
    conn: &mut PgConnection,
    projection: &str,
    version: i32,
    tables: &[&str],
) -> Result<bool, StoreError> {
    let slot = build_slot(projection);
    let under_way: Option<i32> =
        sqlx::query_scalar("SELECT version FROM liandong_projections WHERE projection = $1")
            .bind(&slot)
            .fetch_optional(&mut *conn)
            .await?;
    if under_way == Some(version) {
        return Ok(false);
    }
    let live: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await?;
    let schema = quote(&build_schema(projection));
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *conn)
        .await?;
    for t in tables {
        // Columns, defaults, checks, indexes and keys; the foreign keys follow.
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{t} (LIKE {}.{t} INCLUDING ALL)",
            quote(&live)
        ))
        .execute(&mut *conn)
        .await?;
    }
    // Foreign keys between the projection's own tables point at the build's copies (a delete
    // cascades inside the build as it does live); the others keep their live target.
    let keys: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, con.conname::text, r.relname::text,
                pg_get_constraintdef(con.oid)
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_class r ON r.oid = con.confrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE con.contype = 'f' AND n.nspname = $1 AND c.relname = ANY($2)",
    )
    .bind(&live)
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    for (table, name, target, def) in keys {
        let Some((cols, rest)) = def.split_once(" REFERENCES ") else {
            continue;
        };
        let Some((_, after)) = rest.split_once('(') else {
            continue;
        };
        let target = if tables.contains(&target.as_str()) {
            format!("{schema}.{}", quote(&target))
        } else {
            format!("{}.{}", quote(&live), quote(&target))
        };
        sqlx::query(&format!(
            "ALTER TABLE {schema}.{table} ADD CONSTRAINT {} {cols} REFERENCES {target}({after}",
            quote(&name)
        ))
        .execute(&mut *conn)
        .await?;
    }
    for slot in [&slot, &end_slot(projection)] {
        sqlx::query("DELETE FROM liandong_positions WHERE projection = $1")
            .bind(slot)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "INSERT INTO liandong_projections (projection, version) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET version = excluded.version",
    )
    .bind(&slot)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Records the log's end offsets a builder saw, so that a progress report knows how far the
/// build has to go without reading the log itself.
pub async fn record_ends_pg(
    conn: &mut PgConnection,
    projection: &str,
    ends: &[(i32, i64)],
) -> Result<(), StoreError> {
    for (partition, end) in ends {
        sqlx::query(
            "INSERT INTO liandong_positions (projection, partition, next_offset)
             VALUES ($1, $2, $3)
             ON CONFLICT (projection, partition) DO UPDATE SET next_offset = excluded.next_offset",
        )
        .bind(end_slot(projection))
        .bind(partition)
        .bind(end)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Swaps a caught-up build in, in one transaction (the caller's): the live tables take the
/// built rows, the live positions the build's, the registry the build's version; the build's
/// schema is dropped. Returns false when there was no build to swap (another process swapped
/// it first).
pub async fn swap_pg(
    conn: &mut PgConnection,
    projection: &str,
    tables: &[&str],
) -> Result<bool, StoreError> {
    // Running projectors of the projection wait here with their positions, then find them
    // moved (their compare-and-set fails) and go on from the build's.
    sqlx::query("LOCK TABLE liandong_positions IN EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    let slot = build_slot(projection);
    let version: Option<i32> = sqlx::query_scalar(
        "SELECT version FROM liandong_projections WHERE projection = $1 FOR UPDATE",
    )
    .bind(&slot)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(version) = version else {
        return Ok(false);
    };
    let live: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await?;
    let schema = quote(&build_schema(projection));
    for t in tables {
        sqlx::query(&format!("DELETE FROM {}.{t}", quote(&live)))
            .execute(&mut *conn)
            .await?;
    }
    for t in tables.iter().rev() {
        // By name: a column a migration added since the build began keeps its default.
        let columns: String = sqlx::query_scalar(
            "SELECT string_agg(quote_ident(b.column_name), ', ' ORDER BY b.ordinal_position)
             FROM information_schema.columns b
             JOIN information_schema.columns l
               ON l.table_name = b.table_name AND l.column_name = b.column_name
              AND l.table_schema = $3
             WHERE b.table_schema = $1 AND b.table_name = $2",
        )
        .bind(build_schema(projection))
        .bind(t)
        .bind(&live)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO {}.{t} ({columns}) SELECT {columns} FROM {schema}.{t}",
            quote(&live)
        ))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM liandong_positions WHERE projection = $1 OR projection = $2")
        .bind(projection)
        .bind(end_slot(projection))
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE liandong_positions SET projection = $1 WHERE projection = $2")
        .bind(projection)
        .bind(&slot)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO liandong_projections (projection, version) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET version = excluded.version",
    )
    .bind(projection)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM liandong_projections WHERE projection = $1")
        .bind(&slot)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut *conn)
        .await?;
    Ok(true)
}
