//! Configuration from the environment, parsed once at start-up. A wrong setting stops start-up
//! with a message that names it; every default is the zero-setup single-node one.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;
use liandong_auth::ApiKeys;

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
    pub kafka: Option<KafkaSettings>,
    pub topic_prefix: String,
    pub timezone: Tz,
    pub api_keys: Option<ApiKeys>,
    /// Most records a projector applies in one transaction.
    pub projector_batch: usize,
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
        let data_dir =
            PathBuf::from(get("LIANDONG_DATA_DIR").unwrap_or_else(|| "liandong-data".into()));
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
        Ok(Config {
            projector_batch,
            listen,
            data_dir,
            database_url,
            kafka,
            topic_prefix,
            timezone,
            api_keys,
        })
    }
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
        assert!(c.kafka.is_none() && c.api_keys.is_none());
        assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(c.topic_prefix, "liandong");
    }

    #[test]
    fn a_wrong_setting_is_named() {
        for (k, v) in [
            ("LIANDONG_LISTEN", "8080"),
            ("LIANDONG_DATABASE_URL", "mysql://x"),
            ("LIANDONG_TIMEZONE", "Mars/Olympus"),
            ("LIANDONG_TOPIC_PREFIX", "a b"),
            ("LIANDONG_API_KEYS", "root:secret"),
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
}
