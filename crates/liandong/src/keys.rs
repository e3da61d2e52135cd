//! API keys kept in the read store: `liandong keys create | list | revoke`, and the running
//! server's view of them. The table holds digests only; a new key is printed once, by `create`,
//! and never again. A running process re-reads the table every [`KEY_REFRESH`] (the
//! `key_refresh` setting), so a new key works and a revoked one stops working within that time.
//! Every creation and revocation is recorded in the audit trail with the actor
//! `cli:<OS user>` (role `admin`: whoever can run this against the database holds every key).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;
use liandong_auth::{ApiKeys, Role, StoredKey};
use liandong_store::api_keys::{self, ApiKeyRow, NewApiKey, Revoked};
use liandong_store::audit::{action, AuditEntry};
use liandong_store::ReadStore;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Config;

/// How often a running process re-reads the stored keys: the longest a revoked key still works.
pub const KEY_REFRESH: Duration = Duration::from_secs(5);

/// Longest label accepted.
const MAX_LABEL_CHARS: usize = 200;

/// `liandong keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Makes a key and prints it once; only its SHA-256 digest is stored.
    Create {
        /// ingest (POST /v1/events), client (a public key inside an app: client-observable events only), analyst (metrics), support (member lookup), decide (the apps' real-time decisions: follow prompt, channel, interests) or admin.
        #[arg(long)]
        role: Role,
        /// What the key is for (who holds it), shown by `keys list`.
        #[arg(long)]
        label: Option<String>,
    },
    /// Lists the keys (id, role, label, created, revoked) — never a key.
    List,
    /// Revokes a stored key: running servers refuse it within 5 seconds.
    Revoke {
        /// The key's id, as `keys list` shows it.
        key_id: String,
    },
}

/// The audit trail's name for the command line's user.
pub(crate) fn actor() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .into_iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()));
    format!("cli:{}", user.as_deref().unwrap_or("unknown").trim())
}

fn audit_entry(action: &str, command: &str, detail: String) -> AuditEntry {
    AuditEntry {
        key_id: actor(),
        role: Role::Admin.to_string(),
        action: action.to_owned(),
        endpoint: format!("liandong keys {command}"),
        member_ref: None,
        detail: Some(detail),
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Runs a `keys` command against the read store of `cfg`, writing what it shows to `out`
/// (`create` writes the key there, alone on its line, and the rest to `note`).
pub async fn run(
    command: KeysCommand,
    cfg: &Config,
    out: &mut impl Write,
    note: &mut impl Write,
) -> anyhow::Result<()> {
    let store = open_existing(cfg).await?;
    store
        .init()
        .await
        .context("preparing the read store's key and audit tables")?;
    match command {
        KeysCommand::Create { role, label } => {
            let label = label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
            if let Some(l) = &label {
                if l.chars().count() > MAX_LABEL_CHARS || l.chars().any(char::is_control) {
                    bail!("--label: expected at most {MAX_LABEL_CHARS} characters without control characters");
                }
            }
            let key = liandong_auth::generate_key();
            let digest = liandong_auth::digest(&key);
            let new = NewApiKey {
                key_id: liandong_auth::key_id(&digest),
                role: role.to_string(),
                sha256: hex::encode(digest),
                label,
            };
            let detail = format!("key {} (role {role})", new.key_id);
            let row = api_keys::create(
                &store,
                &new,
                &audit_entry(action::KEY_CREATE, "create", detail),
            )
            .await
            .context("storing the key")?;
            writeln!(out, "{key}")?;
            writeln!(
                note,
                "Created key {} with role {}{}. It is shown only this once: liandong keeps only its \
                 SHA-256 digest. Running servers accept it within {} seconds.",
                row.key_id,
                row.role,
                row.label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
                KEY_REFRESH.as_secs()
            )?;
        }
        KeysCommand::List => {
            let rows = api_keys::list(&store).await.context("reading the keys")?;
            writeln!(
                out,
                "KEY_ID        ROLE     SOURCE  CREATED               REVOKED               LABEL"
            )?;
            for (role, key_id) in configured(cfg)? {
                writeln!(
                    out,
                    "{key_id:<13} {role:<8} config  {:<21} {:<21} {}",
                    "-", "-", "LIANDONG_API_KEYS or the key file"
                )?;
            }
            for r in &rows {
                let line = format!(
                    "{:<13} {:<8} stored  {:<21} {:<21} {}",
                    r.key_id,
                    r.role,
                    time(r.created_at),
                    r.revoked_at.map(time).unwrap_or_else(|| "-".into()),
                    r.label.as_deref().unwrap_or("")
                );
                writeln!(out, "{}", line.trim_end())?;
            }
        }
        KeysCommand::Revoke { key_id } => {
            let key_id = key_id.trim().to_ascii_lowercase();
            let entry = audit_entry(action::KEY_REVOKE, "revoke", format!("key {key_id}"));
            match api_keys::revoke(&store, &key_id, &entry)
                .await
                .context("revoking the key")?
            {
                Revoked::Now(row) => writeln!(
                    note,
                    "Revoked key {} (role {}). Running servers refuse it within {} seconds.",
                    row.key_id,
                    row.role,
                    KEY_REFRESH.as_secs()
                )?,
                Revoked::Already(at) => {
                    writeln!(note, "Key {key_id} was revoked already, at {}.", time(at))?
                }
                Revoked::Unknown => {
                    if configured(cfg)?.iter().any(|(_, id)| *id == key_id) {
                        bail!("key {key_id} is configured, not stored: remove it from LIANDONG_API_KEYS (or the key file in the data directory) and restart");
                    }
                    bail!("no stored key has the id {key_id:?} (see `liandong keys list`)");
                }
            }
        }
    }
    Ok(())
}

/// The read store of a server that has run, never a new one: `keys` run in another directory,
/// or without the server's settings, would otherwise make an empty database, store the key
/// there and say it works, while the server goes on answering `401`.
pub(crate) async fn open_existing(cfg: &Config) -> anyhow::Result<ReadStore> {
    let shown = redact_password(&cfg.database_url);
    let hint =
        "Run `liandong keys` with the settings of the server (the same LIANDONG_DATABASE_URL, \
                or the same LIANDONG_DATA_DIR and working directory), after it has started once. \
                Nothing was created.";
    if let Some(rest) = cfg.database_url.strip_prefix("sqlite://") {
        let file = Path::new(rest.split('?').next().unwrap_or(rest));
        if !file.is_file() {
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
            bail!(
                "no liandong read store at {} (looked for {}; chosen by {}). {hint}",
                file.display(),
                absolute.display(),
                cfg.database_origin
            );
        }
    }
    let store = ReadStore::connect(&cfg.database_url)
        .await
        .with_context(|| {
            format!(
                "{}: cannot open the read store {shown}",
                cfg.database_origin
            )
        })?;
    let found = store
        .has_table("liandong_projections")
        .await
        .with_context(|| format!("reading the read store {shown}"))?;
    if !found {
        bail!(
            "{shown} is not a liandong read store: liandong has never run on it (no \
             liandong_projections table; chosen by {}). {hint}",
            cfg.database_origin
        );
    }
    Ok(store)
}

/// A database URL fit for a message: its password replaced by `****`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            let masked = if credentials.contains(':') {
                format!("{user}:****")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The role and id of each configured key, as `serve` would find them — `LIANDONG_API_KEYS`,
/// else the key file — without creating a key file.
fn configured(cfg: &Config) -> anyhow::Result<Vec<(Role, String)>> {
    if let Some(keys) = &cfg.api_keys {
        return Ok(keys.configured());
    }
    let path = cfg.data_dir.join("api-keys");
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(crate::read_key_file(&path)?.configured())
}

/// The unrevoked keys of the table, as `authorize` holds them. A row that does not parse (a
/// role this version does not know) is skipped with a warning, never accepted.
fn stored_keys(rows: Vec<ApiKeyRow>) -> Vec<StoredKey> {
    rows.into_iter()
        .filter_map(|r| {
            let role = r.role.parse::<Role>();
            let digest = hex::decode(&r.sha256)
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok());
            match (role, digest) {
                (Ok(role), Some(digest)) => Some(StoredKey {
                    key_id: r.key_id,
                    role,
                    digest,
                }),
                _ => {
                    warn!(key_id = %r.key_id, role = %r.role, "liandong_api_keys: unusable row skipped (unknown role or malformed digest)");
                    None
                }
            }
        })
        .collect()
}

/// Loads the unrevoked stored keys into `keys`, replacing the ones held before.
pub async fn load_stored(store: &ReadStore, keys: &ApiKeys) -> anyhow::Result<usize> {
    let rows = api_keys::active(store)
        .await
        .context("reading liandong_api_keys")?;
    let stored = stored_keys(rows);
    let n = stored.len();
    keys.set_stored(stored);
    Ok(n)
}

/// Re-reads the stored keys every `every` until `stopped` turns true. When the store does not
/// answer, the keys held last stay in force (a database hiccup does not lock every client out)
/// and the failure is logged.
pub async fn refresh(
    store: ReadStore,
    keys: Arc<ApiKeys>,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut last = None;
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        match load_stored(&store, &keys).await {
            Ok(n) => {
                if last != Some(n) {
                    info!(stored_keys = n, "stored API keys refreshed");
                    last = Some(n);
                }
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "stored API keys not refreshed; the previous ones stay in force")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_a_database_password() {
        assert_eq!(
            redact_password("postgres://liandong:s3cret@db:5432/liandong?sslmode=require"),
            "postgres://liandong:****@db:5432/liandong?sslmode=require"
        );
        assert_eq!(
            redact_password("postgres://liandong@db/liandong"),
            "postgres://liandong@db/liandong"
        );
        assert_eq!(
            redact_password("sqlite://liandong-data/liandong.db"),
            "sqlite://liandong-data/liandong.db"
        );
    }
}
