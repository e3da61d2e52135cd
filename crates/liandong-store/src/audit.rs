//! The audit trail: who (which key, of which role) did what (read a member, erased one, made or
//! revoked a key), when, through which endpoint, about which member. The table
//! `liandong_audit` is append-only — triggers refuse UPDATE and DELETE (and TRUNCATE on
//! PostgreSQL) — and it is not a projection: rebuilding the read models never touches it.
//!
//! `member_ref` is always a keyed hash of the member (`Vault::keyed_hash(Purpose::Audit, …)`),
//! never the member's key or an identifier: the trail must not itself hold personal data.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sql::{Arg, StoreTx};
use crate::{ReadStore, StoreError};

/// Actions recorded in the trail.
pub mod action {
    /// A member-level read (`GET /v1/members/{key}`).
    pub const MEMBER_READ: &str = "member.read";
    /// An erasure request (`POST /v1/members/{key}/erase`).
    pub const MEMBER_ERASE: &str = "member.erase";
    /// An export of a segment's member keys (`GET /v1/segments/members`).
    pub const SEGMENT_EXPORT: &str = "segment.export";
    /// `liandong keys create`.
    pub const KEY_CREATE: &str = "key.create";
    /// `liandong keys revoke`.
    pub const KEY_REVOKE: &str = "key.revoke";
}

/// One thing to record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditEntry {
    /// The acting key's public id, or for the command line `cli:<OS user>`.
    pub key_id: String,
    /// The acting key's role (`admin` for the command line, which holds the database).
    pub role: String,
    /// One of [`action`].
    pub action: String,
    /// `GET /v1/members/{member_key}`, `liandong keys create`, …
    pub endpoint: String,
    /// The keyed hash of the member the action was about.
    pub member_ref: Option<String>,
    /// Anything else worth keeping that is not personal data (e.g. `found`, the new key's id).
    pub detail: Option<String>,
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    /// Increasing with time of recording: the newest entry has the largest id.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub key_id: String,
    pub role: String,
    pub action: String,
    pub endpoint: String,
    pub member_ref: Option<String>,
    pub detail: Option<String>,
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// At most this many entries.
    pub limit: u32,
    /// Only entries older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
    pub action: Option<String>,
    pub key_id: Option<String>,
    pub member_ref: Option<String>,
}

impl Default for AuditQuery {
    fn default() -> AuditQuery {
        AuditQuery {
            limit: 100,
            before_id: None,
            action: None,
            key_id: None,
            member_ref: None,
        }
    }
}

const INSERT: &str = "INSERT INTO liandong_audit
    (at, key_id, role, action, endpoint, member_ref, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Appends `entry`, stamped with the current time. A caller that must not act unrecorded (a
/// member read) does not answer when this fails.
pub async fn record(store: &ReadStore, entry: &AuditEntry) -> Result<(), StoreError> {
    store.execute(INSERT, &args(entry, Utc::now())).await?;
    Ok(())
}

/// Appends `entry`, stamped `at`, inside `tx`: recorded if and only if what it records commits.
pub async fn record_in(
    tx: &mut StoreTx,
    entry: &AuditEntry,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(INSERT, &args(entry, at)).await?;
    Ok(())
}

fn args(entry: &AuditEntry, at: DateTime<Utc>) -> [Arg; 7] {
    [
        at.into(),
        entry.key_id.as_str().into(),
        entry.role.as_str().into(),
        entry.action.as_str().into(),
        entry.endpoint.as_str().into(),
        (&entry.member_ref).into(),
        (&entry.detail).into(),
    ]
}

/// The entries `query` selects, newest first.
pub async fn list(store: &ReadStore, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    // PostgreSQL cannot infer the type of a parameter that is only compared with NULL.
    let (id, text) = match store.dialect() {
        crate::Dialect::Postgres => ("::BIGINT", "::TEXT"),
        crate::Dialect::Sqlite => ("", ""),
    };
    let sql = format!(
        "SELECT id, at, key_id, role, action, endpoint, member_ref, detail FROM liandong_audit
         WHERE ($1{id} IS NULL OR id < $1)
           AND ($2{text} IS NULL OR action = $2)
           AND ($3{text} IS NULL OR key_id = $3)
           AND ($4{text} IS NULL OR member_ref = $4)
         ORDER BY id DESC
         LIMIT $5"
    );
    store
        .fetch_all(
            &sql,
            &[
                query.before_id.into(),
                (&query.action).into(),
                (&query.key_id).into(),
                (&query.member_ref).into(),
                i64::from(query.limit).into(),
            ],
        )
        .await
}
