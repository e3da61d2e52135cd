//! API keys and roles. Keys come from `LIANDONG_API_KEYS` (`role:key,role:key`) or the generated
//! key file, and from the read store's `liandong_api_keys` table (keys made with `liandong keys
//! create`, held here as digests only and refreshed by the running server). Each key has exactly
//! one role, and `admin` passes every check. Keys are looked up by their SHA-256 digest, compared
//! in constant time, so neither the lookup's timing nor a log line reveals a key. A key is named
//! in lists and the audit trail by its key id, the first 12 hex digits of that digest.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};

/// The environment variable holding the keys, in the syntax [`ApiKeys::parse`] reads.
pub const ENV_VAR: &str = "LIANDONG_API_KEYS";

/// Shortest key accepted: shorter keys are guessable.
pub const MIN_KEY_LEN: usize = 16;

/// Length of generated keys: 43 alphanumeric characters carry about 256 bits.
const GENERATED_KEY_LEN: usize = 43;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Sends tracking events (`POST /v1/events`, the Sensors intake `/sa`).
    Ingest,
    /// A key that ships inside an app (a Mini Program, an H5 page) and is therefore public: it
    /// sends events like `ingest`, but only the types a client can observe
    /// ([`CLIENT_EVENT_TYPES`]) and never a `unionid`. Everything else it sends is refused event
    /// by event (`403`, in the dead-letter stream).
    Client,
    /// Reads metrics.
    Analyst,
    /// Looks up members, including their personal data.
    Support,
    /// The OA server and the MP backend acting on a member in real time: the decisions (may we
    /// show the follow prompt, which channel reaches the member) and the member's interests.
    /// Never metrics, profiles or personal data.
    Decide,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Ingest,
        Role::Client,
        Role::Analyst,
        Role::Support,
        Role::Decide,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Client => "client",
            Role::Analyst => "analyst",
            Role::Support => "support",
            Role::Decide => "decide",
            Role::Admin => "admin",
        }
    }

    /// True when a key of this role may do something open to `allowed`.
    pub fn may(self, allowed: &[Role]) -> bool {
        self == Role::Admin || allowed.contains(&self)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: widths and alignment (`{:<8}`) apply, as for a `str`.
        f.pad(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}, expected one of ingest, client, analyst, support, decide, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The event types a `client` key may send: what an app or a page can observe by itself.
/// Orders, coupons, activities, template messages, follows and every `member.*` (an erasure!)
/// come from the merchant's server or WeChat's callback, never from a public key.
pub const CLIENT_EVENT_TYPES: [&str; 7] = [
    "mp.visit",
    "mp.page_view",
    "mp.follow_prompt.shown",
    "mp.follow_prompt.click",
    "mp.notify.click",
    "oa.article.read",
    "oa.article.click",
];

/// Hex digits of the SHA-256 digest that make a key id: 48 bits, unique among any realistic
/// number of keys, and too short to help anyone guess a key of 16 or more characters.
const KEY_ID_HEX_LEN: usize = 12;

/// The SHA-256 digest of a key: what is stored and compared, never the key itself.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The public name of the key with this digest: its first 12 hex digits. The same for a key
/// from `LIANDONG_API_KEYS` and one stored by `liandong keys create`.
pub fn key_id(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..KEY_ID_HEX_LEN / 2])
}

/// A fresh random key (43 alphanumeric characters, about 256 bits) from the operating system.
pub fn generate_key() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(GENERATED_KEY_LEN)
        .map(char::from)
        .collect()
}

struct Entry {
    role: Role,
    digest: [u8; 32],
    key_id: String,
    /// Kept only so [`ApiKeys::to_env_string`] can print generated keys; never logged, never
    /// compared (lookups use `digest`). `None` for stored keys: only their digest is known.
    key: Option<String>,
}

impl Entry {
    fn configured(role: Role, key: String) -> Entry {
        let digest = digest(&key);
        Entry {
            role,
            key_id: key_id(&digest),
            digest,
            key: Some(key),
        }
    }
}

/// A key of the read store's `liandong_api_keys` table, as the server holds it: no key, only its
/// digest.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: String,
    pub role: Role,
    pub digest: [u8; 32],
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("key_id", &self.key_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Who made a request: the role and the public id of the key it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The key's id ([`key_id`]), safe to show and to record in the audit trail.
    pub key_id: String,
}

/// The keys a process accepts: the configured ones (fixed for its lifetime) and the stored ones
/// (replaced as a whole by [`ApiKeys::set_stored`] whenever the server re-reads the table).
/// `Debug` shows roles and key ids only, never a key.
pub struct ApiKeys {
    entries: Vec<Entry>,
    /// Swapped, never edited in place: a lookup clones the `Arc` and reads without holding the
    /// lock, so a refresh never waits for requests nor requests for a refresh.
    stored: RwLock<Arc<Vec<Entry>>>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stored = self.stored_entries();
        f.debug_struct("ApiKeys")
            .field(
                "configured",
                &self
                    .entries
                    .iter()
                    .map(|e| (e.role, e.key_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field(
                "stored",
                &stored
                    .iter()
                    .map(|e| (e.role, e.key_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Equality of two digests whose running time does not depend on where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Keys travel in an HTTP header and in a comma-separated list: visible ASCII, no comma.
fn valid_key_char(c: char) -> bool {
    c.is_ascii_graphic() && c != ','
}

impl ApiKeys {
    /// Reads `role:key,role:key,...`. Whitespace around pairs, roles and keys is trimmed; empty
    /// pairs (a trailing comma) are skipped. A role may have several keys (rotation); a key has
    /// exactly one role. Errors name the pair by position and role and never echo the key.
    pub fn parse(s: &str) -> Result<ApiKeys, String> {
        let pairs: Vec<&str> = s.split(',').map(str::trim).collect();
        let mut entries: Vec<Entry> = Vec::new();
        for (i, pair) in pairs.iter().enumerate() {
            if pair.is_empty() {
                continue;
            }
            let n = i + 1;
            let Some((role, key)) = pair.split_once(':') else {
                return Err(format!(
                    "pair {n} (<{} characters>): expected role:key, e.g. ingest:<key>",
                    pair.chars().count()
                ));
            };
            let (role, key) = (role.trim(), key.trim());
            let shown = format!("{role:?}:<{} characters>", key.chars().count());
            let role: Role = role
                .parse()
                .map_err(|e: UnknownRole| format!("pair {n} ({shown}): {e}"))?;
            if key.chars().count() < MIN_KEY_LEN {
                return Err(format!(
                    "pair {n} ({shown}): expected a key of at least {MIN_KEY_LEN} characters"
                ));
            }
            if !key.chars().all(valid_key_char) {
                return Err(format!(
                    "pair {n} ({shown}): expected a key of visible ASCII characters without spaces or commas"
                ));
            }
            let entry = Entry::configured(role, key.to_owned());
            if let Some(other) = entries.iter().find(|e| e.digest == entry.digest) {
                return Err(format!(
                    "pair {n} ({shown}): the same key is already given to role {}; a key has exactly one role",
                    other.role
                ));
            }
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(
                "no keys: expected comma-separated role:key pairs, e.g. ingest:<key>,admin:<key>"
                    .to_owned(),
            );
        }
        Ok(ApiKeys::from_entries(entries))
    }

    fn from_entries(entries: Vec<Entry>) -> ApiKeys {
        ApiKeys {
            entries,
            stored: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// One fresh random key per role, from the operating system's random source.
    pub fn generate() -> ApiKeys {
        ApiKeys::from_entries(
            Role::ALL
                .into_iter()
                .map(|role| Entry::configured(role, generate_key()))
                .collect(),
        )
    }

    /// The configured keys in the syntax [`ApiKeys::parse`] reads (for printing generated keys
    /// once). Stored keys are not known in full and are not part of it.
    pub fn to_env_string(&self) -> String {
        self.entries
            .iter()
            .filter_map(|e| Some(format!("{}:{}", e.role, e.key.as_deref()?)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The configured key of `role`, if there is one (the first, when a role has several).
    pub fn key_of(&self, role: Role) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.role == role)
            .find_map(|e| e.key.as_deref())
    }

    /// The role and key id of each configured key (from the environment or the key file).
    pub fn configured(&self) -> Vec<(Role, String)> {
        self.entries
            .iter()
            .map(|e| (e.role, e.key_id.clone()))
            .collect()
    }

    /// Replaces the stored keys with `keys` (the unrevoked rows of `liandong_api_keys`): a key
    /// missing from `keys` is refused from now on.
    pub fn set_stored(&self, keys: Vec<StoredKey>) {
        let entries = keys
            .into_iter()
            .map(|k| Entry {
                role: k.role,
                digest: k.digest,
                key_id: k.key_id,
                key: None,
            })
            .collect();
        *self.stored.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(entries);
    }

    fn stored_entries(&self) -> Arc<Vec<Entry>> {
        self.stored
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The role and key id of `key`. Every key is compared, each in constant time, so the
    /// answer's timing says nothing about how close a guess was.
    pub fn caller_of(&self, key: &str) -> Option<Caller> {
        let wanted = digest(key);
        let stored = self.stored_entries();
        let mut found = None;
        for e in self.entries.iter().chain(stored.iter()) {
            if digests_equal(&e.digest, &wanted) {
                found = Some(e);
            }
        }
        found.map(|e| Caller {
            role: e.role,
            key_id: e.key_id.clone(),
        })
    }

    /// The role of `key` ([`ApiKeys::caller_of`] without the key id).
    pub fn role_of(&self, key: &str) -> Option<Role> {
        self.caller_of(key).map(|c| c.role)
    }

    /// How many keys are accepted now, configured and stored.
    pub fn len(&self) -> usize {
        self.entries.len() + self.stored_entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for ApiKeys {
    type Err = String;

    fn from_str(s: &str) -> Result<ApiKeys, String> {
        ApiKeys::parse(s)
    }
}

/// Why a request was refused. Its `IntoResponse` is the only place these become status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer <key>` header (or one that is not a Bearer credential).
    #[error("missing API key: expected an Authorization: Bearer <key> header")]
    Missing,
    /// No key in the URL, where a client that cannot set headers (the Sensors SDKs) puts it.
    #[error("missing API key: expected the key in the URL's token parameter, e.g. /sa?project=default&token=<key>")]
    MissingUrlKey,
    /// A Bearer key that is not configured.
    #[error("unknown API key")]
    Unknown,
    /// A valid key whose role may not do this.
    #[error("a key with role {role} may not do this")]
    Forbidden { role: Role },
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::MissingUrlKey | AuthError::Unknown => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 7235: a 401 names the scheme the client should use.
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The Bearer key of a request, if it carries one. The scheme is case-insensitive (RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// Checks the request's `Authorization: Bearer <key>` against `keys`: Ok with the caller (the
/// key's role and id) when that role is in `allowed` (or is `admin`). Synchronous and cheap: a
/// digest and a comparison per key, no IO.
pub fn authorize(
    keys: &ApiKeys,
    headers: &HeaderMap,
    allowed: &[Role],
) -> Result<Caller, AuthError> {
    let key = bearer(headers).ok_or(AuthError::Missing)?;
    let caller = keys.caller_of(key).ok_or(AuthError::Unknown)?;
    if caller.role.may(allowed) {
        Ok(caller)
    } else {
        Err(AuthError::Forbidden { role: caller.role })
    }
}

/// Checks a key that came in the URL (`?token=<key>`) against `keys`, like [`authorize`] does
/// a Bearer key. For clients that cannot set headers; the key is then as public as the URL.
pub fn authorize_url_key(
    keys: &ApiKeys,
    key: Option<&str>,
    allowed: &[Role],
) -> Result<Caller, AuthError> {
    let key = key
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::MissingUrlKey)?;
    let caller = keys.caller_of(key).ok_or(AuthError::Unknown)?;
    if caller.role.may(allowed) {
        Ok(caller)
    } else {
        Err(AuthError::Forbidden { role: caller.role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INGEST_KEY: &str = "ingest-key-0123456789";
    const ANALYST_KEY: &str = "analyst-key-0123456789";
    const ADMIN_KEY: &str = "admin-key-0123456789ab";

    fn keys() -> ApiKeys {
        ApiKeys::parse(&format!(
            " ingest:{INGEST_KEY} , analyst : {ANALYST_KEY},admin:{ADMIN_KEY},"
        ))
        .expect("valid keys")
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("header"),
        );
        h
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert_eq!(format!("[{:<8}]", Role::Admin), "[admin   ]");
        assert_eq!("Admin".parse::<Role>(), Err(UnknownRole("Admin".into())));
    }

    #[test]
    fn parse_trims_and_looks_keys_up() {
        let k = keys();
        assert_eq!(k.len(), 3);
        assert_eq!(k.role_of(INGEST_KEY), Some(Role::Ingest));
        assert_eq!(k.role_of(ANALYST_KEY), Some(Role::Analyst));
        assert_eq!(k.role_of(ADMIN_KEY), Some(Role::Admin));
        assert_eq!(k.role_of("ingest-key-0123456788"), None);
        assert_eq!(k.role_of(""), None);
    }

    #[test]
    fn parse_errors_name_the_pair_and_never_the_key() {
        let long = "x".repeat(20);
        let cases = [
            (
                format!("ingest:{long},{long}"),
                "pair 2 (<20 characters>): expected role:key",
            ),
            (
                format!("ingst:{long}"),
                "pair 1 (\"ingst\":<20 characters>): unknown role \"ingst\"",
            ),
            (
                "analyst:short".to_owned(),
                "pair 1 (\"analyst\":<5 characters>): expected a key of at least 16",
            ),
            (
                format!("ingest:{long} x"),
                "expected a key of visible ASCII",
            ),
            (
                format!("ingest:{long},admin:{long}"),
                "pair 2 (\"admin\":<20 characters>): the same key is already given to role ingest",
            ),
            (" , ".to_owned(), "no keys"),
        ];
        for (input, expected) in cases {
            let err = ApiKeys::parse(&input).expect_err(&input);
            assert!(err.contains(expected), "{input:?}: {err}");
            assert!(!err.contains(&long), "{err} leaks the key");
        }
    }

    #[test]
    fn generated_keys_parse_back() {
        let g = ApiKeys::generate();
        assert_eq!(g.len(), Role::ALL.len());
        let env = g.to_env_string();
        let parsed = ApiKeys::parse(&env).expect("generated keys parse");
        for role in Role::ALL {
            let key = g.key_of(role).expect("one key per role");
            assert!(
                key.len() >= 32 && key.chars().all(|c| c.is_ascii_alphanumeric()),
                "{key}"
            );
            assert_eq!(parsed.role_of(key), Some(role));
        }
        assert_ne!(ApiKeys::generate().to_env_string(), env, "keys are random");
    }

    #[test]
    fn debug_does_not_show_keys() {
        let shown = format!("{:?}", keys());
        assert!(!shown.contains(INGEST_KEY), "{shown}");
    }

    #[test]
    fn authorize_decides_by_role() {
        let k = keys();
        let ingest = &[Role::Ingest];
        let role = |auth: &str| authorize(&k, &headers(auth), ingest).map(|c| c.role);
        assert_eq!(
            authorize(&k, &HeaderMap::new(), ingest),
            Err(AuthError::Missing)
        );
        assert_eq!(
            role(&format!("Basic {INGEST_KEY}")),
            Err(AuthError::Missing)
        );
        assert_eq!(role("Bearer "), Err(AuthError::Missing));
        assert_eq!(role("Bearer nope-nope-nope-nope"), Err(AuthError::Unknown));
        assert_eq!(role(&format!("Bearer {INGEST_KEY}")), Ok(Role::Ingest));
        assert_eq!(role(&format!("bearer  {INGEST_KEY}")), Ok(Role::Ingest));
        assert_eq!(
            role(&format!("Bearer {ANALYST_KEY}")),
            Err(AuthError::Forbidden {
                role: Role::Analyst
            })
        );
        assert_eq!(role(&format!("Bearer {ADMIN_KEY}")), Ok(Role::Admin));
    }

    #[test]
    fn the_caller_carries_the_key_id_and_never_the_key() {
        let k = keys();
        let caller = authorize(&k, &headers(&format!("Bearer {ADMIN_KEY}")), &[]).unwrap();
        // The first 12 hex digits of SHA-256("admin-key-0123456789ab").
        let full = hex::encode(Sha256::digest(ADMIN_KEY.as_bytes()));
        assert_eq!(caller.key_id, full[..12]);
        assert_eq!(caller.key_id, key_id(&digest(ADMIN_KEY)));
        assert_ne!(
            caller.key_id,
            authorize(
                &k,
                &headers(&format!("Bearer {INGEST_KEY}")),
                &[Role::Ingest]
            )
            .unwrap()
            .key_id
        );
        assert!(k
            .configured()
            .contains(&(Role::Admin, caller.key_id.clone())));
    }

    #[test]
    fn stored_keys_are_accepted_until_they_are_replaced() {
        let k = keys();
        let fresh = generate_key();
        assert_eq!(k.caller_of(&fresh), None);
        let stored = StoredKey {
            key_id: key_id(&digest(&fresh)),
            role: Role::Support,
            digest: digest(&fresh),
        };
        k.set_stored(vec![stored.clone()]);
        assert_eq!(k.len(), 4);
        let caller = authorize(&k, &headers(&format!("Bearer {fresh}")), &[Role::Support]);
        assert_eq!(
            caller,
            Ok(Caller {
                role: Role::Support,
                key_id: stored.key_id.clone()
            })
        );
        assert_eq!(
            authorize(&k, &headers(&format!("Bearer {fresh}")), &[Role::Analyst]),
            Err(AuthError::Forbidden {
                role: Role::Support
            })
        );
        // Configured keys stay whatever the table holds; a key left out of a refresh (revoked)
        // is unknown from then on.
        k.set_stored(Vec::new());
        assert_eq!(
            authorize(&k, &headers(&format!("Bearer {fresh}")), &[Role::Support]),
            Err(AuthError::Unknown)
        );
        assert_eq!(k.role_of(INGEST_KEY), Some(Role::Ingest));
        assert!(!k.to_env_string().contains(&fresh));
        let shown = format!("{k:?} {stored:?}");
        assert!(
            !shown.contains(&fresh) && !shown.contains(INGEST_KEY),
            "{shown}"
        );
    }

    #[test]
    fn url_keys_are_checked_like_bearer_keys() {
        let k = ApiKeys::parse(&format!(
            "ingest:{INGEST_KEY},client:client-key-0123456789,analyst:{ANALYST_KEY}"
        ))
        .expect("keys");
        let allowed = &[Role::Ingest, Role::Client];
        assert_eq!(
            authorize_url_key(&k, None, allowed),
            Err(AuthError::MissingUrlKey)
        );
        assert_eq!(
            authorize_url_key(&k, Some(" "), allowed),
            Err(AuthError::MissingUrlKey)
        );
        assert_eq!(
            authorize_url_key(&k, Some("nope-nope-nope-nope"), allowed),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            authorize_url_key(&k, Some("client-key-0123456789"), allowed).map(|c| c.role),
            Ok(Role::Client)
        );
        assert_eq!(
            authorize_url_key(&k, Some(ANALYST_KEY), allowed),
            Err(AuthError::Forbidden {
                role: Role::Analyst
            })
        );
        assert!(AuthError::MissingUrlKey.to_string().contains("token"));
    }

    #[test]
    fn responses_carry_status_and_challenge() {
        let r = AuthError::Missing.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
        let r = AuthError::Unknown.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
        let r = AuthError::Forbidden {
            role: Role::Analyst,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    }
}
