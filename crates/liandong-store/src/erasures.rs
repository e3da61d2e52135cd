//! The erasure registry, `liandong_erasures`: a keyed hash of each erased identifier (in its
//! member-key form — `<unionid>`, `oa:<openid>`, `mp:<openid>` — never the identifier itself)
//! and when it was erased. Like the audit trail and the API keys it is the store's own table, no
//! projection's: a rebuild never empties it, so every projection, live or rebuilding, skips the
//! events of erased members wherever they lie in the log.
//!
//! The callers make the hashes (the vault's erasure key); this module only keeps them. Its
//! statements run on a pool ([`register`], [`registered`]) or inside a caller's transaction
//! ([`register_in`], [`registered_in`], the projector's batch).

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::sql::{self, Db, Statement};
use crate::{ReadStore, StoreError};

static REGISTERED: Statement = Statement::new(|d| {
    format!(
        "SELECT id_hash FROM liandong_erasures WHERE id_hash IN {}",
        sql::values(d, 1)
    )
});

static REGISTER: Statement = Statement::new(|d| {
    let (hashes, at) = match d {
        crate::Dialect::Postgres => (
            "jsonb_array_elements_text($1::jsonb) AS h(value)",
            "$2::timestamptz",
        ),
        crate::Dialect::Sqlite => ("json_each($1) AS h", "$2"),
    };
    format!(
        "INSERT INTO liandong_erasures (id_hash, erased_at) SELECT h.value, {at} FROM {hashes}
         WHERE true ON CONFLICT (id_hash) DO NOTHING"
    )
});

fn at_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Records `hashes` as erased at `at` (idempotent: a hash registered before keeps its time).
pub async fn register_in<C: Db + ?Sized>(
    db: &mut C,
    hashes: &BTreeSet<String>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if hashes.is_empty() {
        return Ok(());
    }
    db.exec(&REGISTER, &[&sql::json(hashes), &at_text(&at)])
        .await
        .map(drop)
}

/// Which of `hashes` are registered.
pub async fn registered_in<C: Db + ?Sized>(
    db: &mut C,
    hashes: &BTreeSet<String>,
) -> Result<BTreeSet<String>, StoreError> {
    if hashes.is_empty() {
        return Ok(BTreeSet::new());
    }
    let found: Vec<(String,)> = db.fetch(&REGISTERED, &[&sql::json(hashes)]).await?;
    Ok(found.into_iter().map(|(h,)| h).collect())
}

/// [`register_in`] on a connection of the store's pool.
pub async fn register(
    store: &ReadStore,
    hashes: &BTreeSet<String>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if hashes.is_empty() {
        return Ok(());
    }
    let args = [sql::json(hashes).into(), at_text(&at).into()];
    store
        .execute(REGISTER.text(store.dialect()), &args)
        .await
        .map(drop)
}

/// [`registered_in`] on a connection of the store's pool.
pub async fn registered(
    store: &ReadStore,
    hashes: &BTreeSet<String>,
) -> Result<BTreeSet<String>, StoreError> {
    // Nothing to look up needs no connection (a batch without identifiers to check goes on
    // while the store is down).
    if hashes.is_empty() {
        return Ok(BTreeSet::new());
    }
    let found: Vec<(String,)> = store
        .fetch_all(
            REGISTERED.text(store.dialect()),
            &[sql::json(hashes).into()],
        )
        .await?;
    Ok(found.into_iter().map(|(h,)| h).collect())
}
