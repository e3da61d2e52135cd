//! API keys made with `liandong keys create`: the table `liandong_api_keys` holds each key's
//! SHA-256 digest (hex), never the key, so a copy of the database lets no one in. A key is
//! revoked by stamping `revoked_at`; rows are never deleted, so `keys list` shows the history.
//! Every creation and revocation is written together with its audit entry, in one transaction.

use chrono::{DateTime, Utc};

use crate::audit::{self, AuditEntry};
use crate::{ReadStore, StoreError};

/// A key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The public id (the first 12 hex digits of the digest).
    pub key_id: String,
    pub role: String,
    /// The key's SHA-256 digest, 64 lowercase hex digits.
    pub sha256: String,
    pub label: Option<String>,
}

/// A stored key, as `keys list` shows it and the server loads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub role: String,
    pub sha256: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What [`revoke`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked now.
    Now(ApiKeyRow),
    /// It was revoked already, at this time; nothing changed and nothing was recorded.
    Already(DateTime<Utc>),
    /// No stored key has this id.
    Unknown,
}

const COLUMNS: &str = "key_id, role, sha256, label, created_at, revoked_at";

/// Stores `key` and records `audit` (action `key.create`) in the same transaction. Fails on a
/// key id or digest already stored.
pub async fn create(
    store: &ReadStore,
    key: &NewApiKey,
    audit: &AuditEntry,
) -> Result<ApiKeyRow, StoreError> {
    let now = Utc::now();
    let sql = format!(
        "INSERT INTO liandong_api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)
         RETURNING {COLUMNS}"
    );
    let mut tx = store.begin().await?;
    let row: ApiKeyRow = tx
        .fetch_one(
            &sql,
            &[
                key.key_id.as_str().into(),
                key.role.as_str().into(),
                key.sha256.as_str().into(),
                (&key.label).into(),
                now.into(),
            ],
        )
        .await?;
    audit::record_in(&mut tx, audit, now).await?;
    tx.commit().await?;
    Ok(row)
}

/// Every stored key, revoked ones included, oldest first.
pub async fn list(store: &ReadStore) -> Result<Vec<ApiKeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM liandong_api_keys ORDER BY created_at, key_id");
    store.fetch_all(&sql, &[]).await
}

/// The keys that are not revoked: what the server accepts.
pub async fn active(store: &ReadStore) -> Result<Vec<ApiKeyRow>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM liandong_api_keys WHERE revoked_at IS NULL ORDER BY key_id");
    store.fetch_all(&sql, &[]).await
}

/// Revokes the key `key_id` and records `audit` (action `key.revoke`) in the same transaction.
pub async fn revoke(
    store: &ReadStore,
    key_id: &str,
    audit: &AuditEntry,
) -> Result<Revoked, StoreError> {
    let now = Utc::now();
    let update = format!(
        "UPDATE liandong_api_keys SET revoked_at = $2
         WHERE key_id = $1 AND revoked_at IS NULL
         RETURNING {COLUMNS}"
    );
    let find = "SELECT revoked_at FROM liandong_api_keys WHERE key_id = $1";
    let mut tx = store.begin().await?;
    let updated: Vec<ApiKeyRow> = tx.fetch_all(&update, &[key_id.into(), now.into()]).await?;
    let outcome = match updated.into_iter().next() {
        Some(row) => {
            audit::record_in(&mut tx, audit, now).await?;
            Revoked::Now(row)
        }
        None => {
            let found: Vec<(Option<DateTime<Utc>>,)> = tx.fetch_all(find, &[key_id.into()]).await?;
            match found.into_iter().next().and_then(|(at,)| at) {
                Some(at) => Revoked::Already(at),
                None => Revoked::Unknown,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}
