//! liandong's keys. One secret, the master key (`LIANDONG_MASTER_KEY`, base64 of 32 bytes), from
//! which every other key is derived with HKDF-SHA256, one per purpose, so a hash made for one
//! purpose (the erasure registry, say) can never be matched against one made for another (the
//! analysts' pseudonyms).
//!
//! Keyed hashes are HMAC-SHA256 of the value under the purpose's key, in lowercase hex: stable
//! (the same identifier always gives the same hash, so joins and lookups work) and not
//! reversible without the master key (identifiers are low-entropy, so a plain hash would be).
//!
//! [`DataKeys`] seals personal data under per-member data keys wrapped by the master key.

mod data_keys;

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use data_keys::{is_sealed, migrate, DataKeys, VaultError, CACHE_CAPACITY, CACHE_TTL};

/// The environment variable holding the master key.
pub const ENV_VAR: &str = "LIANDONG_MASTER_KEY";

/// Why a master key was refused. Never echoes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error(
        "expected base64 of 32 bytes (e.g. `openssl rand -base64 32`), got text that is not base64"
    )]
    NotBase64,
    #[error("expected base64 of 32 bytes (e.g. `openssl rand -base64 32`), got {0} bytes")]
    WrongLength(usize),
}

/// The master key. `Debug` never shows it; it is wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads base64 (standard alphabet, padded) of exactly 32 bytes; whitespace around it is
    /// ignored.
    pub fn parse_base64(text: &str) -> Result<MasterKey, MasterKeyError> {
        let mut bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| MasterKeyError::NotBase64)?;
        let key = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| MasterKeyError::WrongLength(bytes.len()));
        bytes.zeroize();
        key.map(MasterKey)
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        MasterKey(key)
    }

    /// The key in the syntax [`MasterKey::parse_base64`] reads.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A key for `purpose`, derived with HKDF-SHA256 (the master key as input keying material,
    /// the purpose's label as info).
    pub fn derive(&self, purpose: Purpose) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; 32];
        hk.expand(purpose.label().as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

/// What a derived key is for. Each purpose has its own key; labels are part of the stored data
/// (hashes and wrapped keys), so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The erasure registry: hashes of erased members' identifiers.
    Erasure,
    /// The analysts' de-identified views: a stable stand-in for a member's identifiers.
    Pseudonym,
    /// The audit trail: which member a read or an erasure was about.
    Audit,
    /// The reference under which a member's data key is stored.
    DataKeyRef,
    /// Wrapping (encrypting) the per-member data keys.
    DataKeyWrap,
}

impl Purpose {
    pub const ALL: [Purpose; 5] = [
        Purpose::Erasure,
        Purpose::Pseudonym,
        Purpose::Audit,
        Purpose::DataKeyRef,
        Purpose::DataKeyWrap,
    ];

    fn label(self) -> &'static str {
        match self {
            Purpose::Erasure => "liandong/erasure-registry/v1",
            Purpose::Pseudonym => "liandong/pseudonym/v1",
            Purpose::Audit => "liandong/audit-member/v1",
            Purpose::DataKeyRef => "liandong/data-key-ref/v1",
            Purpose::DataKeyWrap => "liandong/data-key-wrap/v1",
        }
    }
}

/// The derived keys, made once from the master key. Cheap to share (`Arc<Vault>`).
#[derive(Clone, ZeroizeOnDrop)]
pub struct Vault {
    #[zeroize(skip)]
    master: MasterKey,
    /// One derived key per purpose, in the order of [`Purpose::ALL`].
    keys: [[u8; 32]; Purpose::ALL.len()],
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    pub fn new(master: MasterKey) -> Vault {
        Vault {
            keys: Purpose::ALL.map(|p| master.derive(p)),
            master,
        }
    }

    /// The master key, for deriving further keys (the data-key wrapping key).
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// A short public name of the master key (16 hex digits), recorded in the read store so a
    /// process started with another key is refused. It reveals nothing of the key.
    pub fn fingerprint(&self) -> String {
        // Not an identifier (those never contain '/'): no data key reference can equal it.
        let mut h = self.keyed_hash(Purpose::DataKeyRef, "liandong/master-key-fingerprint");
        h.truncate(16);
        h
    }

    /// HMAC-SHA256 of `value` under `purpose`'s key, as 64 lowercase hex digits.
    pub fn keyed_hash(&self, purpose: Purpose, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keys[purpose as usize])
            .expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn parses_base64_of_32_bytes_only() {
        let k = MasterKey::parse_base64(&format!(" {KEY}\n")).unwrap();
        assert_eq!(k.to_base64(), KEY);
        assert_eq!(
            MasterKey::parse_base64("AAEC").unwrap_err(),
            MasterKeyError::WrongLength(3)
        );
        assert_eq!(
            MasterKey::parse_base64("not base64!").unwrap_err(),
            MasterKeyError::NotBase64
        );
        let generated = MasterKey::generate();
        assert_eq!(
            MasterKey::parse_base64(&generated.to_base64())
                .unwrap()
                .to_base64(),
            generated.to_base64()
        );
        assert!(!format!("{k:?}").contains(KEY));
    }

    #[test]
    fn keyed_hashes_are_stable_per_purpose_and_key() {
        let v = Vault::new(MasterKey::parse_base64(KEY).unwrap());
        let h = v.keyed_hash(Purpose::Erasure, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M");
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            h,
            v.keyed_hash(Purpose::Erasure, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
        );
        let mut seen = std::collections::HashSet::new();
        for p in Purpose::ALL {
            // The derived keys are indexed by discriminant: ALL must list them in order.
            assert_eq!(Purpose::ALL[p as usize], p);
            assert!(seen.insert(v.keyed_hash(p, "same value")), "{p:?}");
        }
        let other = Vault::new(MasterKey::generate());
        assert_ne!(
            h,
            other.keyed_hash(Purpose::Erasure, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
        );
    }
}
