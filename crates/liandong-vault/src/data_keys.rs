//! Per-member data keys: envelope encryption of personal data with AES-256-GCM.
//!
//! Each identifier (a member's unionid, else the openid an event names) gets a random 256-bit
//! data key the first time something is sealed for it. The key is stored wrapped (AES-256-GCM
//! under `master.derive(Purpose::DataKeyWrap)`, its reference as associated data) in the read
//! store table `liandong_data_keys`, under `key_ref = keyed_hash(DataKeyRef, identifier)`, so
//! the table names no identifier. Destroying the row is crypto-shredding: every value sealed
//! under that key, wherever it was copied (the event log, backups), is unreadable from then on.
//!
//! A sealed value describes itself: `ld1:<key_ref>:<key_id>:<base64(nonce || ciphertext)>`,
//! with a fresh random 96-bit nonce per seal and everything before the ciphertext as associated
//! data (a value moved under another member's reference does not open). `key_id` tells one
//! key of a reference from the next: after a destroy, a later seal for the same identifier
//! makes a new key, and the values sealed under the destroyed one still open to `None`.
//!
//! Unwrapped keys are cached in memory for [`CACHE_TTL`] (at most [`CACHE_CAPACITY`] of them).
//! [`DataKeys::destroy`] drops them from this process's cache at once; another process may still
//! use a cached copy until its entry expires, so an erasure is complete everywhere
//! [`CACHE_TTL`] after `destroy` returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use liandong_store::sql::Arg;
use liandong_store::{ReadStore, StoreError};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use zeroize::Zeroizing;

use crate::{Purpose, Vault};

/// How long an unwrapped data key stays in a process's memory after it was read.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Most unwrapped data keys a process keeps in memory.
pub const CACHE_CAPACITY: usize = 10_000;

/// The version tag every sealed value starts with.
const PREFIX: &str = "ld1";
const NONCE_LEN: usize = 12;
const KEY_ID_HEX: usize = 16;

/// Why sealing or opening failed. Never carries a plaintext or a key.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The read store did not answer: worth a retry.
    #[error("data keys: {0}")]
    Store(#[from] StoreError),
    /// Not a value [`DataKeys::seal`] made.
    #[error("sealed value: expected ld1:<key_ref>:<key_id>:<base64>, {0}")]
    Malformed(&'static str),
    /// The ciphertext or its header was changed: it does not authenticate under its key.
    #[error("sealed value under data key {key_ref}: does not authenticate (altered or corrupt)")]
    Tampered { key_ref: String },
    /// A stored data key does not unwrap: the master key is not the one it was wrapped with,
    /// or the row was altered.
    #[error("data key {key_ref}: does not unwrap under this LIANDONG_MASTER_KEY (a different master key, or an altered row)")]
    Unwrap { key_ref: String },
    /// The read store's data keys were made under another master key.
    #[error("LIANDONG_MASTER_KEY: not the master key this read store's data keys were made with (its fingerprint is {stored}, this key's is {mine}); with another key every stored personal value is unreadable")]
    MasterKeyMismatch { stored: String, mine: String },
}

impl VaultError {
    /// True when waiting may help (the read store was unavailable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, VaultError::Store(_))
    }
}

/// Creates the vault's tables when missing and checks that `vault`'s master key is the one the
/// store's data keys were made with (the first start records its fingerprint). Called once at
/// start-up, before [`DataKeys::new`]. The tables belong to no projection: rebuilds keep them.
pub async fn migrate(store: &ReadStore, vault: &Vault) -> Result<(), VaultError> {
    static POSTGRES: Migrator = Migrator {
        ignore_missing: true,
        ..sqlx::migrate!("./migrations/postgres")
    };
    static SQLITE: Migrator = Migrator {
        ignore_missing: true,
        ..sqlx::migrate!("./migrations/sqlite")
    };
    store.run_migrations(&POSTGRES, &SQLITE).await?;
    let mine = vault.fingerprint();
    // The first start records its fingerprint; a race of two first starts records one of them,
    // and the other finds it different unless both hold the same key.
    store
        .execute(
            "INSERT INTO liandong_vault (name, value) VALUES ('master_key_fingerprint', $1)
            ON CONFLICT (name) DO NOTHING",
            &[Arg::Text(Some(mine.clone()))],
        )
        .await?;
    let (stored,): (String,) = store
        .fetch_optional(
            "SELECT value FROM liandong_vault WHERE name = 'master_key_fingerprint'",
            &[],
        )
        .await?
        .ok_or_else(|| {
            VaultError::Store(StoreError::Config(
                "liandong_vault lost its master_key_fingerprint row".into(),
            ))
        })?;
    if stored != mine {
        return Err(VaultError::MasterKeyMismatch { stored, mine });
    }
    Ok(())
}

/// An unwrapped data key and its id.
struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

impl DataKey {
    fn new(key: &[u8; 32]) -> DataKey {
        // The id names the key, not its owner: a truncated hash of a random 256-bit key.
        let digest = Sha256::new()
            .chain_update(b"liandong/data-key-id/v1")
            .chain_update(key)
            .finalize();
        let mut id = String::with_capacity(KEY_ID_HEX);
        for b in &digest[..KEY_ID_HEX / 2] {
            id.push_str(&format!("{b:02x}"));
        }
        DataKey {
            id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }
}

struct Cached {
    key: Arc<DataKey>,
    at: Instant,
}

/// Seals and opens personal data under per-identifier data keys. Cheap to clone (one shared
/// cache).
#[derive(Clone)]
pub struct DataKeys {
    inner: Arc<Inner>,
}

struct Inner {
    store: ReadStore,
    vault: Arc<Vault>,
    wrap: Aes256Gcm,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeys")
            .field("store", &self.inner.store.dialect())
            .finish_non_exhaustive()
    }
}

impl DataKeys {
    /// Data keys kept in `store` (whose tables [`migrate`] made), wrapped under `vault`'s
    /// master key.
    pub fn new(store: ReadStore, vault: Arc<Vault>) -> DataKeys {
        let wrap_key = Zeroizing::new(vault.master().derive(Purpose::DataKeyWrap));
        let wrap = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(wrap_key.as_slice()));
        DataKeys {
            inner: Arc::new(Inner {
                store,
                vault,
                wrap,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The read store the keys are kept in (where the erasure registry lives too).
    pub fn store(&self) -> &ReadStore {
        &self.inner.store
    }

    /// The vault the keys are wrapped under (it also makes the registry's keyed hashes).
    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    /// The reference `identifier`'s data key is stored under.
    pub fn key_ref(&self, identifier: &str) -> String {
        self.inner.vault.keyed_hash(Purpose::DataKeyRef, identifier)
    }

    /// Encrypts `plaintext` under `identifier`'s data key, making the key on first use.
    pub async fn seal(&self, identifier: &str, plaintext: &str) -> Result<String, VaultError> {
        let key_ref = self.key_ref(identifier);
        let key = match self.cached(&key_ref) {
            Some(k) => k,
            None => self.load_or_create(&key_ref).await?,
        };
        let header = format!("{PREFIX}:{key_ref}:{}", key.id);
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: header.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message under 64 GiB");
        let mut body = Vec::with_capacity(NONCE_LEN + ct.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ct);
        Ok(format!("{header}:{}", STANDARD.encode(body)))
    }

    /// Decrypts a value [`seal`](Self::seal) made. `None`: its data key was destroyed.
    pub async fn open(&self, sealed: &str) -> Result<Option<String>, VaultError> {
        let parsed = parse(sealed)?;
        let key = match self.cached(parsed.key_ref) {
            Some(k) if k.id == parsed.key_id => Some(k),
            // Not cached, or a key of the same reference made after the one cached was
            // destroyed elsewhere: the store decides.
            _ => self.load(parsed.key_ref).await?,
        };
        let Some(key) = key.filter(|k| k.id == parsed.key_id) else {
            return Ok(None);
        };
        let (nonce, ciphertext) = parsed.body.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: parsed.header.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Tampered {
                key_ref: parsed.key_ref.to_owned(),
            })?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| VaultError::Tampered {
                key_ref: parsed.key_ref.to_owned(),
            })
    }

    /// Destroys the data keys of `identifiers` (crypto-shredding): what was sealed under them
    /// opens to `None` from now on in this process, and in others once their cache entries
    /// expire ([`CACHE_TTL`]). Returns how many keys existed.
    pub async fn destroy(&self, identifiers: &[&str]) -> Result<u64, VaultError> {
        let refs: Vec<String> = identifiers.iter().map(|i| self.key_ref(i)).collect();
        {
            let mut cache = self.lock();
            for r in &refs {
                cache.remove(r);
            }
        }
        let mut destroyed = 0;
        const Q: &str = "DELETE FROM liandong_data_keys WHERE key_ref = $1";
        for r in &refs {
            destroyed += self.inner.store.execute(Q, &[r.as_str().into()]).await?;
        }
        // A seal or open that read a key before the delete may have cached it again meanwhile.
        let mut cache = self.lock();
        for r in &refs {
            cache.remove(r);
        }
        Ok(destroyed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A panic while holding the lock leaves a usable map: entries are inserted whole.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached(&self, key_ref: &str) -> Option<Arc<DataKey>> {
        let cache = self.lock();
        cache
            .get(key_ref)
            .filter(|c| c.at.elapsed() < CACHE_TTL)
            .map(|c| c.key.clone())
    }

    fn remember(&self, key_ref: &str, key: Arc<DataKey>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_CAPACITY {
                // Still full of live entries: start over rather than track recency.
                cache.clear();
            }
        }
        cache.insert(
            key_ref.to_owned(),
            Cached {
                key,
                at: Instant::now(),
            },
        );
    }

    /// The stored key of `key_ref`, if any.
    async fn load(&self, key_ref: &str) -> Result<Option<Arc<DataKey>>, VaultError> {
        const Q: &str = "SELECT wrapped FROM liandong_data_keys WHERE key_ref = $1";
        let wrapped: Option<(Vec<u8>,)> = self
            .inner
            .store
            .fetch_optional(Q, &[key_ref.into()])
            .await?;
        let Some((wrapped,)) = wrapped else {
            return Ok(None);
        };
        let key = Arc::new(self.unwrap(key_ref, &wrapped)?);
        self.remember(key_ref, key.clone());
        Ok(Some(key))
    }

    /// The key of `key_ref`, made now when there is none. Two processes sealing for the same
    /// identifier at once both insert; the first insert wins and both use the stored key.
    async fn load_or_create(&self, key_ref: &str) -> Result<Arc<DataKey>, VaultError> {
        if let Some(k) = self.load(key_ref).await? {
            return Ok(k);
        }
        let mut fresh = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(fresh.as_mut_slice());
        let wrapped = self.wrap(key_ref, &fresh);
        const Q: &str = "INSERT INTO liandong_data_keys (key_ref, wrapped) VALUES ($1, $2)
            ON CONFLICT (key_ref) DO NOTHING";
        self.inner
            .store
            .execute(Q, &[key_ref.into(), wrapped.as_slice().into()])
            .await?;
        // Re-read: the stored key, ours or the one that won the race, is the key.
        match self.load(key_ref).await? {
            Some(k) => Ok(k),
            // Destroyed between the insert and the read: seal under a key nobody can read,
            // as if the seal had come just before the destroy.
            None => Ok(Arc::new(DataKey::new(&fresh))),
        }
    }

    fn wrap(&self, key_ref: &str, key: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .inner
            .wrap
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key,
                    aad: key_ref.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts a 32-byte key");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    fn unwrap(&self, key_ref: &str, wrapped: &[u8]) -> Result<DataKey, VaultError> {
        let fail = || VaultError::Unwrap {
            key_ref: key_ref.to_owned(),
        };
        if wrapped.len() <= NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let key = Zeroizing::new(
            self.inner
                .wrap
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: key_ref.as_bytes(),
                    },
                )
                .map_err(|_| fail())?,
        );
        let key: &[u8; 32] = key.as_slice().try_into().map_err(|_| fail())?;
        Ok(DataKey::new(key))
    }
}

/// True when `value` has the shape of a sealed value (it may still not open).
pub fn is_sealed(value: &str) -> bool {
    parse(value).is_ok()
}

struct Parsed<'a> {
    header: &'a str,
    key_ref: &'a str,
    key_id: &'a str,
    /// nonce || ciphertext (with its tag).
    body: Vec<u8>,
}

fn parse(sealed: &str) -> Result<Parsed<'_>, VaultError> {
    let (header, body) = sealed
        .rsplit_once(':')
        .ok_or(VaultError::Malformed("got no ':'"))?;
    let mut parts = header.split(':');
    let (Some(PREFIX), Some(key_ref), Some(key_id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VaultError::Malformed("got another header"));
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(key_ref, 64) || !hex(key_id, KEY_ID_HEX) {
        return Err(VaultError::Malformed("got a malformed key reference"));
    }
    let body = STANDARD
        .decode(body)
        .map_err(|_| VaultError::Malformed("got a body that is not base64"))?;
    if body.len() < NONCE_LEN + 16 {
        return Err(VaultError::Malformed(
            "got a body too short for nonce and tag",
        ));
    }
    Ok(Parsed {
        header,
        key_ref,
        key_id,
        body,
    })
}
