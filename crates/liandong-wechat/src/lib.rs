//! WeChat's own push into liandong's log: `GET/POST /v1/wechat/oa/callback` is an OA server
//! address ("服务器地址(URL)") as the OA admin console configures it. WeChat's URL check is
//! answered; its event pushes (follow, unfollow, menu clicks, template delivery results), in
//! plaintext or safe mode, are verified, decrypted, mapped to catalogue events (see
//! [`mapping`]) and handed to ingestion ([`IngestState::ingest_values`]): the same validation,
//! identity binding, dead-lettering and durable append as `POST /v1/events`.
//!
//! Invariants:
//! - a push is acted on only when its signature holds for the configured token;
//! - `success` means the push's event (or its dead letter) is durable in the log;
//! - a push's event id is derived from the push, so WeChat's retries count once;
//! - bad input gets a `4xx` and changes nothing; the memory a request can use is bounded by the
//!   64 KiB body cap (no entity expansion, see [`xml`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use liandong_ingest::IngestState;

pub mod crypto;
mod error;
mod handler;
pub mod mapping;
pub mod menu;
pub mod xml;

pub use crypto::AesKey;
pub use error::WechatError;
pub use menu::MenuConfig;

/// Where WeChat is pointed.
pub const CALLBACK_PATH: &str = "/v1/wechat/oa/callback";
/// Largest push body. WeChat's pushes are well under 4 KiB, encrypted ones included.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a push waits for the log by default: WeChat waits 5 seconds for the answer, and
/// the answer must leave before that for a `503` to be read as "retry".
pub const DEFAULT_APPEND_TIMEOUT: Duration = Duration::from_millis(4500);

/// The callback's settings (`LIANDONG_WECHAT_*`). Its `Debug` shows no secret.
#[derive(Clone)]
pub struct WechatConfig {
    /// The Token of the OA admin console: what signatures are keyed with.
    pub token: String,
    /// The OA's AppID; required for safe mode, where every decrypted push names it.
    pub appid: Option<String>,
    /// Safe mode's keys: the current EncodingAESKey first, then the previous one while a
    /// rotation is under way. Empty: plaintext mode only.
    pub aes_keys: Vec<AesKey>,
    pub menu: MenuConfig,
    pub append_timeout: Duration,
}

impl std::fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatConfig")
            .field("token", &"[redacted]")
            .field("appid", &self.appid)
            .field("aes_keys", &self.aes_keys.len())
            .field("menu", &self.menu)
            .field("append_timeout", &self.append_timeout)
            .finish()
    }
}

impl WechatConfig {
    /// Plaintext mode with `token`, no menu configuration.
    pub fn new(token: impl Into<String>) -> WechatConfig {
        WechatConfig {
            token: token.into(),
            appid: None,
            aes_keys: Vec::new(),
            menu: MenuConfig::default(),
            append_timeout: DEFAULT_APPEND_TIMEOUT,
        }
    }

    /// The OA admin console's rule for a Token: 3 to 32 letters or digits.
    pub fn check_token(token: &str) -> Result<(), String> {
        let n = token.chars().count();
        if !(3..=32).contains(&n) || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "expected the OA admin console's Token: 3 to 32 letters or digits, got {n} characters{}",
                if token.chars().all(|c| c.is_ascii_alphanumeric()) { "" } else { " with other characters" }
            ));
        }
        Ok(())
    }

    /// An AppID as WeChat issues them (`wx` and 16 hex digits); other letters and digits are
    /// accepted too, so a test account's id still fits.
    pub fn check_appid(appid: &str) -> Result<(), String> {
        if appid.is_empty() || appid.len() > 64 || !appid.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "expected the OA's AppID, letters and digits such as wx5823bf96d3bd56c7, got {appid:?}"
            ));
        }
        Ok(())
    }
}

/// The handlers' state: `None` when the callback is not configured (every request: `404`).
#[derive(Clone)]
pub(crate) struct CallbackState {
    config: Option<Arc<WechatConfig>>,
    ingest: IngestState,
}

/// `GET` and `POST` [`CALLBACK_PATH`]. Without a configuration the route answers `404` with a
/// message saying so. The body cap is the handler's own (64 KiB, with our 413 message), so
/// axum's default limit is off.
pub fn router(config: Option<WechatConfig>, ingest: IngestState) -> Router {
    Router::new()
        .route(
            CALLBACK_PATH,
            get(handler::verify_url).post(handler::receive_push),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(CallbackState {
            config: config.map(Arc::new),
            ingest,
        })
}
