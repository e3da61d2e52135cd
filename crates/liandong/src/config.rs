//! Configuration from the environment, parsed once at start-up. A wrong setting stops start-up
//! with a message that names it; every default is the zero-setup single-node one.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;
use liandong_auth::ApiKeys;
use liandong_vault::MasterKey;
use liandong_wechat::{AesKey, MenuConfig, WechatConfig};

/// Why start-up stopped: the setting and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

/// The Kafka side, when `LIANDONG_KAFKA_BROKERS` is set.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub client_options: Vec<(String, String)>,
}

/// Everything liandong reads from the environment.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Which settings chose `database_url`, in words, for messages about the store.
    pub database_origin: String,
    pub kafka: Option<KafkaSettings>,
    pub topic_prefix: String,
    pub timezone: Tz,
    pub api_keys: Option<ApiKeys>,
    /// How often a running process re-reads the keys stored by `liandong keys` (the longest a
    /// revoked key still works): [`crate::keys::KEY_REFRESH`]; tests shorten it.
    pub key_refresh: std::time::Duration,
    /// `LIANDONG_MASTER_KEY`: wraps the data keys of personal data. Unset: `serve` keeps one in
    /// `<data dir>/master-key`; `ingest` and `project` refuse to start.
    pub master_key: Option<MasterKey>,
    /// Most records a projector applies in one transaction.
    pub projector_batch: usize,
    /// The WeChat OA callback, when `LIANDONG_WECHAT_TOKEN` is set.
    pub wechat: Option<WechatConfig>,
    /// `LIANDONG_RATE_LIMIT`: each key's request budget for ingestion (`POST /v1/events`,
    /// `/v1/beacon`, `/sa`), e.g. `50/s` or `10/s,burst=40`.
    pub rate_limit: liandong_ingest::RateLimit,
}

fn err(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        message: message.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let listen = match get("LIANDONG_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.trim().parse().map_err(|_| {
                err(
                    "LIANDONG_LISTEN",
                    format!("expected host:port such as 127.0.0.1:8080 or 0.0.0.0:8080, got {v:?}"),
                )
            })?,
        };
        let data_dir_set = get("LIANDONG_DATA_DIR");
        let data_dir = PathBuf::from(
            data_dir_set
                .clone()
                .unwrap_or_else(|| "liandong-data".into()),
        );
        let database_origin = match (get("LIANDONG_DATABASE_URL"), &data_dir_set) {
            (Some(_), _) => "LIANDONG_DATABASE_URL".to_owned(),
            (None, Some(d)) => {
                format!("LIANDONG_DATA_DIR ({d}), LIANDONG_DATABASE_URL being unset")
            }
            (None, None) => "the defaults: LIANDONG_DATABASE_URL and LIANDONG_DATA_DIR unset, so \
                 liandong-data/ under the current directory"
                .to_owned(),
        };
        let database_url = match get("LIANDONG_DATABASE_URL") {
            None => format!("sqlite://{}/liandong.db", data_dir.display()),
            Some(v)
                if v.starts_with("postgres://")
                    || v.starts_with("postgresql://")
                    || v.starts_with("sqlite://") =>
            {
                v
            }
            Some(v) => {
                return Err(err(
                    "LIANDONG_DATABASE_URL",
                    format!("expected a postgres://… or sqlite://… URL, got {v:?}"),
                ))
            }
        };
        let topic_prefix = get("LIANDONG_TOPIC_PREFIX").unwrap_or_else(|| "liandong".into());
        if !topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            || topic_prefix.len() > 200
        {
            return Err(err("LIANDONG_TOPIC_PREFIX", format!(
                "expected letters, digits, '.', '_' or '-' (a Kafka topic name prefix), got {topic_prefix:?}")));
        }
        let timezone = match get("LIANDONG_TIMEZONE") {
            None => chrono_tz::Asia::Shanghai,
            Some(v) => v.trim().parse().map_err(|_| {
                err(
                    "LIANDONG_TIMEZONE",
                    format!("expected an IANA time zone such as Asia/Shanghai, got {v:?}"),
                )
            })?,
        };
        let api_keys = get("LIANDONG_API_KEYS")
            .map(|v| ApiKeys::parse(&v).map_err(|m| err("LIANDONG_API_KEYS", m)))
            .transpose()?;
        let master_key = get("LIANDONG_MASTER_KEY")
            .map(|v| {
                MasterKey::parse_base64(&v).map_err(|e| err("LIANDONG_MASTER_KEY", e.to_string()))
            })
            .transpose()?;
        let kafka = match get("LIANDONG_KAFKA_BROKERS") {
            None => None,
            Some(brokers) => {
                let int =
                    |name: &'static str, default: i32, min: i32| -> Result<i32, ConfigError> {
                        match get(name) {
                            None => Ok(default),
                            Some(v) => v
                                .trim()
                                .parse::<i32>()
                                .ok()
                                .filter(|n| *n >= min)
                                .ok_or_else(|| {
                                    err(name, format!("expected an integer >= {min}, got {v:?}"))
                                }),
                        }
                    };
                let mut client_options = Vec::new();
                for pair in get("LIANDONG_KAFKA_OPTIONS")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                {
                    let (k, v) = pair.split_once('=').ok_or_else(|| {
                        err("LIANDONG_KAFKA_OPTIONS", format!("expected comma-separated key=value librdkafka settings, got {pair:?}"))
                    })?;
                    client_options.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                Some(KafkaSettings {
                    brokers,
                    partitions: int("LIANDONG_KAFKA_PARTITIONS", 12, 1)?,
                    replication_factor: int("LIANDONG_KAFKA_REPLICATION_FACTOR", -1, -1)?,
                    client_options,
                })
            }
        };
        let projector_batch = match get("LIANDONG_PROJECTOR_BATCH") {
            None => 2000,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    err(
                        "LIANDONG_PROJECTOR_BATCH",
                        format!("expected an integer from 1 to 100000, got {v:?}"),
                    )
                })?,
        };
        let wechat = wechat(&get)?;
        let rate_limit = match get("LIANDONG_RATE_LIMIT") {
            None => liandong_ingest::RateLimit::DEFAULT,
            Some(v) => {
                liandong_ingest::RateLimit::parse(&v).map_err(|m| err("LIANDONG_RATE_LIMIT", m))?
            }
        };
        Ok(Config {
            rate_limit,
            projector_batch,
            wechat,
            listen,
            data_dir,
            database_url,
            database_origin,
            kafka,
            topic_prefix,
            timezone,
            api_keys,
            key_refresh: crate::keys::KEY_REFRESH,
            master_key,
        })
    }
}

/// The `LIANDONG_WECHAT_*` settings. Without a token there is no callback, and any other
/// WeChat setting is a mistake worth stopping for (it would silently do nothing).
fn wechat(get: &impl Fn(&str) -> Option<String>) -> Result<Option<WechatConfig>, ConfigError> {
    let value = |name: &str| get(name).map(|v| v.trim().to_owned());
    let appid = value("LIANDONG_WECHAT_APPID");
    let key = value("LIANDONG_WECHAT_AES_KEY");
    let previous = value("LIANDONG_WECHAT_AES_KEY_PREVIOUS");
    let menu = value("LIANDONG_WECHAT_MENU");
    let Some(token) = value("LIANDONG_WECHAT_TOKEN") else {
        for (name, v) in [
            ("LIANDONG_WECHAT_APPID", &appid),
            ("LIANDONG_WECHAT_AES_KEY", &key),
            ("LIANDONG_WECHAT_AES_KEY_PREVIOUS", &previous),
            ("LIANDONG_WECHAT_MENU", &menu),
        ] {
            if v.is_some() {
                return Err(err(
                    name,
                    "set, but LIANDONG_WECHAT_TOKEN is not: the WeChat callback is off without its Token",
                ));
            }
        }
        return Ok(None);
    };
    WechatConfig::check_token(&token).map_err(|m| err("LIANDONG_WECHAT_TOKEN", m))?;
    if let Some(a) = &appid {
        WechatConfig::check_appid(a).map_err(|m| err("LIANDONG_WECHAT_APPID", m))?;
    }
    let mut aes_keys = Vec::new();
    if let Some(k) = &key {
        aes_keys
            .push(AesKey::from_encoding_aes_key(k).map_err(|m| err("LIANDONG_WECHAT_AES_KEY", m))?);
        if appid.is_none() {
            return Err(err(
                "LIANDONG_WECHAT_APPID",
                "required with LIANDONG_WECHAT_AES_KEY: every decrypted push names the AppID it is for, and it is checked",
            ));
        }
    }
    if let Some(p) = &previous {
        if key.is_none() {
            return Err(err(
                "LIANDONG_WECHAT_AES_KEY_PREVIOUS",
                "set, but LIANDONG_WECHAT_AES_KEY is not: the previous key only helps during a rotation to a current one",
            ));
        }
        aes_keys.push(
            AesKey::from_encoding_aes_key(p)
                .map_err(|m| err("LIANDONG_WECHAT_AES_KEY_PREVIOUS", m))?,
        );
    }
    let menu = match &menu {
        None => MenuConfig::default(),
        Some(path) => MenuConfig::load(std::path::Path::new(path))
            .map_err(|m| err("LIANDONG_WECHAT_MENU", m))?,
    };
    Ok(Some(WechatConfig {
        appid,
        aes_keys,
        menu,
        ..WechatConfig::new(token)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_zero_setup_ones() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://liandong-data/liandong.db");
        assert!(c.kafka.is_none() && c.api_keys.is_none() && c.master_key.is_none());
        assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(c.topic_prefix, "liandong");
        assert!(c.wechat.is_none());
    }

    #[test]
    fn a_wrong_setting_is_named() {
        for (k, v) in [
            ("LIANDONG_LISTEN", "8080"),
            ("LIANDONG_DATABASE_URL", "mysql://x"),
            ("LIANDONG_TIMEZONE", "Mars/Olympus"),
            ("LIANDONG_TOPIC_PREFIX", "a b"),
            ("LIANDONG_RATE_LIMIT", "lots"),
            ("LIANDONG_API_KEYS", "root:secret"),
            ("LIANDONG_MASTER_KEY", "not base64!"),
            (
                "LIANDONG_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AAQ==",
            ),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err();
            assert_eq!(e.name, k, "{e}");
        }
        let e = cfg(&[
            ("LIANDONG_KAFKA_BROKERS", "k:9092"),
            ("LIANDONG_KAFKA_PARTITIONS", "0"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "LIANDONG_KAFKA_PARTITIONS");
        let e = cfg(&[
            ("LIANDONG_KAFKA_BROKERS", "k:9092"),
            ("LIANDONG_KAFKA_OPTIONS", "acks"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "LIANDONG_KAFKA_OPTIONS");
    }

    #[test]
    fn master_key() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let c = cfg(&[("LIANDONG_MASTER_KEY", key)]).unwrap();
        assert_eq!(
            c.master_key.as_ref().map(|k| k.to_base64()).as_deref(),
            Some(key)
        );
        assert!(!format!("{c:?}").contains(key), "the key stays out of logs");
        let e = cfg(&[("LIANDONG_MASTER_KEY", "AAEC")]).unwrap_err();
        assert_eq!(e.name, "LIANDONG_MASTER_KEY");
        assert!(
            e.message.contains("32 bytes") && e.message.contains("got 3 bytes"),
            "{e}"
        );
    }

    #[test]
    fn kafka_settings() {
        let c = cfg(&[
            ("LIANDONG_KAFKA_BROKERS", "k1:9092,k2:9092"),
            (
                "LIANDONG_KAFKA_OPTIONS",
                "session.timeout.ms=6000, client.id=x",
            ),
        ])
        .unwrap();
        let k = c.kafka.unwrap();
        assert_eq!(k.partitions, 12);
        assert_eq!(
            k.client_options,
            vec![
                ("session.timeout.ms".into(), "6000".into()),
                ("client.id".into(), "x".into())
            ]
        );
    }

    const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    #[test]
    fn wechat_settings() {
        let c = cfg(&[("LIANDONG_WECHAT_TOKEN", "QDG6eK")]).unwrap();
        let w = c.wechat.unwrap();
        assert!(w.aes_keys.is_empty() && w.appid.is_none());
        assert!(
            !format!("{w:?}").contains("QDG6eK"),
            "the token stays out of logs"
        );

        let c = cfg(&[
            ("LIANDONG_WECHAT_TOKEN", "QDG6eK"),
            ("LIANDONG_WECHAT_APPID", "wx5823bf96d3bd56c7"),
            ("LIANDONG_WECHAT_AES_KEY", AES_KEY),
            ("LIANDONG_WECHAT_AES_KEY_PREVIOUS", &"A".repeat(43)),
        ])
        .unwrap();
        assert_eq!(c.wechat.unwrap().aes_keys.len(), 2);

        let dir = tempfile::tempdir().unwrap();
        let menu = dir.path().join("menu.json");
        std::fs::write(&menu, r#"{"menus": [{"key": "K", "label": "立即点餐"}]}"#).unwrap();
        let menu = menu.display().to_string();
        assert!(cfg(&[
            ("LIANDONG_WECHAT_TOKEN", "QDG6eK"),
            ("LIANDONG_WECHAT_MENU", &menu)
        ])
        .is_ok());
    }

    #[test]
    fn a_wrong_wechat_setting_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad_menu = dir.path().join("menu.json");
        std::fs::write(&bad_menu, r#"{"menus": [{"key": "K"}]}"#).unwrap();
        let bad_menu = bad_menu.display().to_string();
        let token = ("LIANDONG_WECHAT_TOKEN", "QDG6eK");
        let appid = ("LIANDONG_WECHAT_APPID", "wx5823bf96d3bd56c7");
        for (pairs, name, says) in [
            (
                vec![("LIANDONG_WECHAT_TOKEN", "a b")],
                "LIANDONG_WECHAT_TOKEN",
                "3 to 32 letters or digits",
            ),
            (
                vec![appid],
                "LIANDONG_WECHAT_APPID",
                "LIANDONG_WECHAT_TOKEN is not",
            ),
            (
                vec![token, ("LIANDONG_WECHAT_APPID", "wx-1")],
                "LIANDONG_WECHAT_APPID",
                "AppID",
            ),
            (
                vec![token, appid, ("LIANDONG_WECHAT_AES_KEY", &AES_KEY[..42])],
                "LIANDONG_WECHAT_AES_KEY",
                "43-character",
            ),
            (
                vec![token, ("LIANDONG_WECHAT_AES_KEY", AES_KEY)],
                "LIANDONG_WECHAT_APPID",
                "required with LIANDONG_WECHAT_AES_KEY",
            ),
            (
                vec![token, appid, ("LIANDONG_WECHAT_AES_KEY_PREVIOUS", AES_KEY)],
                "LIANDONG_WECHAT_AES_KEY_PREVIOUS",
                "LIANDONG_WECHAT_AES_KEY is not",
            ),
            (
                vec![token, ("LIANDONG_WECHAT_MENU", "/nonexistent/menu.json")],
                "LIANDONG_WECHAT_MENU",
                "cannot read /nonexistent/menu.json",
            ),
            (
                vec![token, ("LIANDONG_WECHAT_MENU", &bad_menu)],
                "LIANDONG_WECHAT_MENU",
                "missing field `label`",
            ),
        ] {
            let e = cfg(&pairs).unwrap_err();
            assert_eq!(e.name, name, "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
}
