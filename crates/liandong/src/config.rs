//! The one typed configuration, [`Config`], parsed in one place ([`Config::from_lookup`]).
//! Its sources are the command line and the environment: [`Settings`] is the clap side, one
//! option per setting with its `LIANDONG_…` variable and default, so `liandong serve --help`
//! lists every setting; tests and benchmarks hand `from_lookup` a map instead. A wrong setting
//! stops start-up with a message that names it; every default is the zero-setup single-node one.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;
use liandong_auth::ApiKeys;
use liandong_vault::MasterKey;
use liandong_wechat::{AesKey, MenuConfig, WechatConfig};

/// Defaults shown by `--help` and applied by [`Config::from_lookup`]: one value for both.
pub mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const DATA_DIR: &str = "liandong-data";
    pub const TOPIC_PREFIX: &str = "liandong";
    pub const TIMEZONE: &str = "Asia/Shanghai";
    pub const KAFKA_PARTITIONS: &str = "12";
    pub const KAFKA_REPLICATION_FACTOR: &str = "-1";
    pub const PROJECTOR_BATCH: &str = "2000";
    pub const RATE_LIMIT: &str = "50/s,burst=100";
}

/// Every setting, from the command line or its environment variable (the command line wins).
/// Values stay text here: [`Config::from_lookup`] parses them all, so its messages name the
/// variable whichever way a value came in.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Settings (each also read from its environment variable)")]
pub struct Settings {
    /// HTTP address: ingestion, query API, dashboard, health, /metrics.
    #[arg(long, env = "LIANDONG_LISTEN", value_name = "HOST:PORT", default_value = defaults::LISTEN)]
    pub listen: Option<String>,
    /// Embedded log, generated API keys and master key, and the default SQLite file.
    #[arg(long, env = "LIANDONG_DATA_DIR", value_name = "DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: Option<String>,
    /// Read store (and identity store): postgres://… or sqlite://…. [default: sqlite://<data dir>/liandong.db]
    #[arg(
        long,
        env = "LIANDONG_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Kafka bootstrap servers, e.g. kafka-1:9092,kafka-2:9092. [default: unset, the embedded log]
    #[arg(long, env = "LIANDONG_KAFKA_BROKERS", value_name = "HOST:PORT,…")]
    pub kafka_brokers: Option<String>,
    /// Topics <prefix>.events and <prefix>.dead-letter; consumer groups <prefix>.projector.<projection>.v<version>.
    #[arg(long, env = "LIANDONG_TOPIC_PREFIX", value_name = "PREFIX", default_value = defaults::TOPIC_PREFIX)]
    pub topic_prefix: Option<String>,
    /// IANA time zone of an event's day and of weeks.
    #[arg(long, env = "LIANDONG_TIMEZONE", value_name = "ZONE", default_value = defaults::TIMEZONE)]
    pub timezone: Option<String>,
    /// Comma-separated role:key pairs (roles ingest, client, analyst, support, admin; keys of 16+ characters). Required by ingest and project. Prefer the variable: a command line is visible to other users. [default: unset, serve keeps keys in <data dir>/api-keys]
    #[arg(
        long,
        env = "LIANDONG_API_KEYS",
        value_name = "ROLE:KEY,…",
        hide_env_values = true
    )]
    pub api_keys: Option<String>,
    /// Base64 of 32 bytes (openssl rand -base64 32): wraps the data keys of personal data; the same on every node. Required by ingest and project. Prefer the variable. [default: unset, serve keeps one in <data dir>/master-key]
    #[arg(
        long,
        env = "LIANDONG_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub master_key: Option<String>,
    /// Partitions of the topics liandong creates when missing.
    #[arg(long, env = "LIANDONG_KAFKA_PARTITIONS", value_name = "N", default_value = defaults::KAFKA_PARTITIONS)]
    pub kafka_partitions: Option<String>,
    /// Replication of the topics liandong creates (-1: the broker's default; 3 for a production cluster).
    #[arg(long, env = "LIANDONG_KAFKA_REPLICATION_FACTOR", value_name = "N", default_value = defaults::KAFKA_REPLICATION_FACTOR, allow_hyphen_values = true)]
    pub kafka_replication_factor: Option<String>,
    /// Extra librdkafka settings, key=value,… (e.g. security.protocol=SASL_SSL); those the guarantees rest on cannot be overridden. [default: none]
    #[arg(
        long,
        env = "LIANDONG_KAFKA_OPTIONS",
        value_name = "KEY=VALUE,…",
        hide_env_values = true
    )]
    pub kafka_options: Option<String>,
    /// Most records a projector applies in one transaction (1 to 100000).
    #[arg(long, env = "LIANDONG_PROJECTOR_BATCH", value_name = "N", default_value = defaults::PROJECTOR_BATCH)]
    pub projector_batch: Option<String>,
    /// Each key's request budget for POST /v1/events, /v1/beacon and /sa, e.g. 50/s or 10/s,burst=40; beyond it 429 with Retry-After.
    #[arg(long, env = "LIANDONG_RATE_LIMIT", value_name = "N/s[,burst=M]", default_value = defaults::RATE_LIMIT)]
    pub rate_limit: Option<String>,
    /// Bearer key Prometheus must send to GET /metrics (16+ visible characters). [default: unset, /metrics answers without a key; it holds no member data]
    #[arg(
        long,
        env = "LIANDONG_METRICS_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub metrics_key: Option<String>,
    /// The Token of the OA admin console (3-32 letters or digits): turns on /v1/wechat/oa/callback. [default: unset, the callback answers 404]
    #[arg(
        long,
        env = "LIANDONG_WECHAT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub wechat_token: Option<String>,
    /// The OA's AppID; required with the AES key (every decrypted push names it). [default: unset]
    #[arg(long, env = "LIANDONG_WECHAT_APPID", value_name = "APPID")]
    pub wechat_appid: Option<String>,
    /// The current EncodingAESKey (43 characters) for safe mode. [default: unset, plaintext mode only]
    #[arg(
        long,
        env = "LIANDONG_WECHAT_AES_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub wechat_aes_key: Option<String>,
    /// The EncodingAESKey before the last rotation: pushes sealed with it still open. [default: unset]
    #[arg(
        long,
        env = "LIANDONG_WECHAT_AES_KEY_PREVIOUS",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub wechat_aes_key_previous: Option<String>,
    /// Path of the menu configuration (JSON), validated at start-up. [default: unset, clicks are labelled by their key or URL]
    #[arg(long, env = "LIANDONG_WECHAT_MENU", value_name = "FILE")]
    pub wechat_menu: Option<String>,
    /// Log filter (tracing's EnvFilter syntax). [default: info, with librdkafka, rdkafka and sqlx at warn]
    #[arg(long = "log", env = "RUST_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

impl Settings {
    /// Every environment variable a setting is read from, in `--help`'s order.
    pub const VARIABLES: &'static [&'static str] = &[
        "LIANDONG_LISTEN",
        "LIANDONG_DATA_DIR",
        "LIANDONG_DATABASE_URL",
        "LIANDONG_KAFKA_BROKERS",
        "LIANDONG_TOPIC_PREFIX",
        "LIANDONG_TIMEZONE",
        "LIANDONG_API_KEYS",
        "LIANDONG_MASTER_KEY",
        "LIANDONG_KAFKA_PARTITIONS",
        "LIANDONG_KAFKA_REPLICATION_FACTOR",
        "LIANDONG_KAFKA_OPTIONS",
        "LIANDONG_PROJECTOR_BATCH",
        "LIANDONG_RATE_LIMIT",
        "LIANDONG_METRICS_KEY",
        "LIANDONG_WECHAT_TOKEN",
        "LIANDONG_WECHAT_APPID",
        "LIANDONG_WECHAT_AES_KEY",
        "LIANDONG_WECHAT_AES_KEY_PREVIOUS",
        "LIANDONG_WECHAT_MENU",
        "RUST_LOG",
    ];

    /// The value of the setting read from environment variable `name` (blank counts as unset).
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match name {
            "LIANDONG_LISTEN" => &self.listen,
            "LIANDONG_DATA_DIR" => &self.data_dir,
            "LIANDONG_DATABASE_URL" => &self.database_url,
            "LIANDONG_KAFKA_BROKERS" => &self.kafka_brokers,
            "LIANDONG_TOPIC_PREFIX" => &self.topic_prefix,
            "LIANDONG_TIMEZONE" => &self.timezone,
            "LIANDONG_API_KEYS" => &self.api_keys,
            "LIANDONG_MASTER_KEY" => &self.master_key,
            "LIANDONG_KAFKA_PARTITIONS" => &self.kafka_partitions,
            "LIANDONG_KAFKA_REPLICATION_FACTOR" => &self.kafka_replication_factor,
            "LIANDONG_KAFKA_OPTIONS" => &self.kafka_options,
            "LIANDONG_PROJECTOR_BATCH" => &self.projector_batch,
            "LIANDONG_RATE_LIMIT" => &self.rate_limit,
            "LIANDONG_METRICS_KEY" => &self.metrics_key,
            "LIANDONG_WECHAT_TOKEN" => &self.wechat_token,
            "LIANDONG_WECHAT_APPID" => &self.wechat_appid,
            "LIANDONG_WECHAT_AES_KEY" => &self.wechat_aes_key,
            "LIANDONG_WECHAT_AES_KEY_PREVIOUS" => &self.wechat_aes_key_previous,
            "LIANDONG_WECHAT_MENU" => &self.wechat_menu,
            "RUST_LOG" => &self.log,
            _ => &None,
        };
        v.clone().filter(|v| !v.trim().is_empty())
    }
}

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
    /// `LIANDONG_METRICS_KEY`: the bearer key `GET /metrics` asks for; `None`: no key.
    pub metrics_key: Option<MetricsKey>,
}

/// The key of `/metrics`. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsKey(pub String);

impl std::fmt::Debug for MetricsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetricsKey(<{} characters>)", self.0.chars().count())
    }
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

    /// Reads the settings of the command line (each falling back to its variable, then its
    /// default, as clap resolved them).
    pub fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| settings.get(k))
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let listen = get("LIANDONG_LISTEN").unwrap_or_else(|| defaults::LISTEN.into());
        let listen: SocketAddr = {
            let v = &listen;
            v.trim().parse().map_err(|_| {
                err(
                    "LIANDONG_LISTEN",
                    format!("expected host:port such as 127.0.0.1:8080 or 0.0.0.0:8080, got {v:?}"),
                )
            })?
        };
        // The default directory given explicitly (clap fills defaults in) is still the default.
        let data_dir_set = get("LIANDONG_DATA_DIR").filter(|d| d != defaults::DATA_DIR);
        let data_dir = PathBuf::from(
            data_dir_set
                .clone()
                .unwrap_or_else(|| defaults::DATA_DIR.into()),
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
        let topic_prefix =
            get("LIANDONG_TOPIC_PREFIX").unwrap_or_else(|| defaults::TOPIC_PREFIX.into());
        if !topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            || topic_prefix.len() > 200
        {
            return Err(err("LIANDONG_TOPIC_PREFIX", format!(
                "expected letters, digits, '.', '_' or '-' (a Kafka topic name prefix), got {topic_prefix:?}")));
        }
        let timezone: Tz = match get("LIANDONG_TIMEZONE") {
            None => defaults::TIMEZONE.parse().expect("the default time zone"),
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
                    |name: &'static str, default: &str, min: i32| -> Result<i32, ConfigError> {
                        let v = get(name).unwrap_or_else(|| default.to_owned());
                        v.trim()
                            .parse::<i32>()
                            .ok()
                            .filter(|n| *n >= min)
                            .ok_or_else(|| {
                                err(name, format!("expected an integer >= {min}, got {v:?}"))
                            })
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
                    partitions: int("LIANDONG_KAFKA_PARTITIONS", defaults::KAFKA_PARTITIONS, 1)?,
                    replication_factor: int(
                        "LIANDONG_KAFKA_REPLICATION_FACTOR",
                        defaults::KAFKA_REPLICATION_FACTOR,
                        -1,
                    )?,
                    client_options,
                })
            }
        };
        let projector_batch = {
            let v = get("LIANDONG_PROJECTOR_BATCH")
                .unwrap_or_else(|| defaults::PROJECTOR_BATCH.to_owned());
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    err(
                        "LIANDONG_PROJECTOR_BATCH",
                        format!("expected an integer from 1 to 100000, got {v:?}"),
                    )
                })?
        };
        let wechat = wechat(&get)?;
        let rate_limit = liandong_ingest::RateLimit::parse(
            &get("LIANDONG_RATE_LIMIT").unwrap_or_else(|| defaults::RATE_LIMIT.into()),
        )
        .map_err(|m| err("LIANDONG_RATE_LIMIT", m))?;
        let metrics_key = match get("LIANDONG_METRICS_KEY") {
            None => None,
            Some(v) => {
                let v = v.trim().to_owned();
                if v.chars().count() < 16 || !v.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(err(
                        "LIANDONG_METRICS_KEY",
                        format!(
                            "expected a key of at least 16 visible ASCII characters without spaces, got <{} characters>",
                            v.chars().count()
                        ),
                    ));
                }
                Some(MetricsKey(v))
            }
        };
        Ok(Config {
            metrics_key,
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
    fn the_defaults_shown_are_the_defaults_applied() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        // No variable and no option: clap's defaults, as `--help` shows them.
        let shown = Cli::try_parse_from(["liandong"]).unwrap().settings;
        let from_clap = Config::from_lookup(|k| shown.get(k)).unwrap();
        let unset = cfg(&[]).unwrap();
        assert_eq!(format!("{from_clap:?}"), format!("{unset:?}"));
        assert_eq!(from_clap.database_origin, unset.database_origin);
        assert_eq!(
            liandong_ingest::RateLimit::parse(defaults::RATE_LIMIT).unwrap(),
            liandong_ingest::RateLimit::DEFAULT
        );
        // An option wins over the default and reaches the same parser, which names the variable.
        let set = Cli::try_parse_from(["liandong", "--listen", "8080"])
            .unwrap()
            .settings;
        assert_eq!(
            Config::from_lookup(|k| set.get(k)).unwrap_err().name,
            "LIANDONG_LISTEN"
        );
    }

    #[test]
    fn every_variable_read_is_a_setting() {
        use std::cell::RefCell;
        let asked = RefCell::new(std::collections::BTreeSet::new());
        // With the broker and the WeChat token set, every optional group is read.
        let _ = Config::from_lookup(|k| {
            asked.borrow_mut().insert(k.to_owned());
            match k {
                "LIANDONG_KAFKA_BROKERS" => Some("k:9092".into()),
                "LIANDONG_WECHAT_TOKEN" => Some("QDG6eK".into()),
                _ => None,
            }
        });
        let asked = asked.into_inner();
        let settings: std::collections::BTreeSet<String> = Settings::VARIABLES
            .iter()
            .filter(|v| **v != "RUST_LOG")
            .map(|v| v.to_string())
            .collect();
        assert_eq!(asked, settings);
        // And each variable is the `env` of its option.
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let envs: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(envs, Settings::VARIABLES);
        let every = Settings {
            listen: Some("1".into()),
            data_dir: Some("2".into()),
            database_url: Some("3".into()),
            kafka_brokers: Some("4".into()),
            topic_prefix: Some("5".into()),
            timezone: Some("6".into()),
            api_keys: Some("7".into()),
            master_key: Some("8".into()),
            kafka_partitions: Some("9".into()),
            kafka_replication_factor: Some("10".into()),
            kafka_options: Some("11".into()),
            projector_batch: Some("12".into()),
            rate_limit: Some("13".into()),
            metrics_key: Some("14".into()),
            wechat_token: Some("15".into()),
            wechat_appid: Some("16".into()),
            wechat_aes_key: Some("17".into()),
            wechat_aes_key_previous: Some("18".into()),
            wechat_menu: Some("19".into()),
            log: Some("20".into()),
        };
        let values: Vec<String> = Settings::VARIABLES
            .iter()
            .map(|v| every.get(v).unwrap())
            .collect();
        let expected: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
        assert_eq!(
            values, expected,
            "get() maps each variable to its own option"
        );
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
            ("LIANDONG_METRICS_KEY", "short"),
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
