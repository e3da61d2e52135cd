//! API keys and roles. Keys come from `LIANDONG_API_KEYS` (`role:key,role:key`); each key has
//! exactly one role, and `admin` passes every check. Keys are looked up by their SHA-256 digest,
//! compared in constant time, so neither the lookup's timing nor a log line reveals a key.

use std::fmt;
use std::str::FromStr;

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
    /// Sends tracking events (`POST /v1/events`).
    Ingest,
    /// Reads metrics.
    Analyst,
    /// Looks up members, including their personal data.
    Support,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Ingest, Role::Analyst, Role::Support, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
            Role::Support => "support",
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
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}, expected one of ingest, analyst, support, admin")]
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

struct Entry {
    role: Role,
    digest: [u8; 32],
    /// Kept only so [`ApiKeys::to_env_string`] can print generated keys; never logged, never
    /// compared (lookups use `digest`).
    key: String,
}

/// The configured keys. `Debug` shows roles only, never a key.
pub struct ApiKeys {
    entries: Vec<Entry>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field(
                "roles",
                &self.entries.iter().map(|e| e.role).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
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
            let digest = digest(key);
            if let Some(other) = entries.iter().find(|e| e.digest == digest) {
                return Err(format!(
                    "pair {n} ({shown}): the same key is already given to role {}; a key has exactly one role",
                    other.role
                ));
            }
            entries.push(Entry {
                role,
                digest,
                key: key.to_owned(),
            });
        }
        if entries.is_empty() {
            return Err(
                "no keys: expected comma-separated role:key pairs, e.g. ingest:<key>,admin:<key>"
                    .to_owned(),
            );
        }
        Ok(ApiKeys { entries })
    }

    /// One fresh random key per role, from the operating system's random source.
    pub fn generate() -> ApiKeys {
        let entries = Role::ALL
            .into_iter()
            .map(|role| {
                let key: String = OsRng
                    .sample_iter(&Alphanumeric)
                    .take(GENERATED_KEY_LEN)
                    .map(char::from)
                    .collect();
                Entry {
                    role,
                    digest: digest(&key),
                    key,
                }
            })
            .collect();
        ApiKeys { entries }
    }

    /// The keys in the syntax [`ApiKeys::parse`] reads (for printing generated keys once).
    pub fn to_env_string(&self) -> String {
        self.entries
            .iter()
            .map(|e| format!("{}:{}", e.role, e.key))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The key of `role`, if there is one (the first, when a role has several).
    pub fn key_of(&self, role: Role) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.role == role)
            .map(|e| e.key.as_str())
    }

    /// The role of `key`. Every configured key is compared, each in constant time, so the
    /// answer's timing says nothing about how close a guess was.
    pub fn role_of(&self, key: &str) -> Option<Role> {
        let wanted = digest(key);
        let mut found = None;
        for e in &self.entries {
            if digests_equal(&e.digest, &wanted) {
                found = Some(e.role);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
            AuthError::Missing | AuthError::Unknown => StatusCode::UNAUTHORIZED,
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

/// Checks the request's `Authorization: Bearer <key>` against `keys`: Ok with the key's role
/// when that role is in `allowed` (or is `admin`).
pub fn authorize(keys: &ApiKeys, headers: &HeaderMap, allowed: &[Role]) -> Result<Role, AuthError> {
    let key = bearer(headers).ok_or(AuthError::Missing)?;
    let role = keys.role_of(key).ok_or(AuthError::Unknown)?;
    if role.may(allowed) {
        Ok(role)
    } else {
        Err(AuthError::Forbidden { role })
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
        assert_eq!(
            authorize(&k, &HeaderMap::new(), ingest),
            Err(AuthError::Missing)
        );
        assert_eq!(
            authorize(&k, &headers(&format!("Basic {INGEST_KEY}")), ingest),
            Err(AuthError::Missing)
        );
        assert_eq!(
            authorize(&k, &headers("Bearer "), ingest),
            Err(AuthError::Missing)
        );
        assert_eq!(
            authorize(&k, &headers("Bearer nope-nope-nope-nope"), ingest),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            authorize(&k, &headers(&format!("Bearer {INGEST_KEY}")), ingest),
            Ok(Role::Ingest)
        );
        assert_eq!(
            authorize(&k, &headers(&format!("bearer  {INGEST_KEY}")), ingest),
            Ok(Role::Ingest)
        );
        assert_eq!(
            authorize(&k, &headers(&format!("Bearer {ANALYST_KEY}")), ingest),
            Err(AuthError::Forbidden {
                role: Role::Analyst
            })
        );
        assert_eq!(
            authorize(&k, &headers(&format!("Bearer {ADMIN_KEY}")), ingest),
            Ok(Role::Admin)
        );
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
