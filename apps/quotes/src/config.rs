//! The app's settings, read from environment variables with the seed's names
//! (`DATABASE_URL`, `SECRET_KEY`, `ALGORITHM`, `AWESOME_API_KEY`) and a few of
//! our own, each with a default a deploy rarely needs to change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// Where quotes come from when `AWESOME_API_URL` is not set.
pub const DEFAULT_UPSTREAM: &str = "https://economia.awesomeapi.com.br";

#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL, e.g. `postgresql://cloud:senha@10.0.0.5:5432/cloud`.
    pub database_url: String,
    /// The HMAC key the tokens are signed with.
    pub secret_key: String,
    /// HS256 (the seed's), HS384 or HS512.
    pub algorithm: Algorithm,
    pub token_lifetime: Duration,
    /// Base URL of an AwesomeAPI-shaped service (`/json/last/USD-BRL,EUR-BRL`).
    pub upstream_url: String,
    /// Sent as the `token` query parameter, as AwesomeAPI expects.
    pub upstream_key: Option<String>,
    pub upstream_timeout: Duration,
    /// How long a fetched quote may stand in for an unreachable upstream.
    pub cache_fresh_for: Duration,
    pub listen: SocketAddr,
    /// Put in the `X-Served-By` header of every response.
    pub server_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}={value:?} is not valid: {why}")]
    Invalid {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| {
            get(name)
                .map(str::to_owned)
                .ok_or(ConfigError::Missing(name))
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    value: v.to_owned(),
                    why: "expected a whole number",
                }),
            }
        };
        let algorithm = match get("ALGORITHM").unwrap_or("HS256") {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            other => {
                return Err(ConfigError::Invalid {
                    name: "ALGORITHM",
                    value: other.to_owned(),
                    why: "the app signs with a shared secret: HS256, HS384 or HS512",
                })
            }
        };
        let minutes = number("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?;
        if minutes == 0 {
            return Err(ConfigError::Invalid {
                name: "ACCESS_TOKEN_EXPIRE_MINUTES",
                value: "0".into(),
                why: "a token must live at least a minute",
            });
        }
        let listen_text = get("LISTEN_ADDR").unwrap_or("0.0.0.0:8080");
        let listen = listen_text.parse().map_err(|_| ConfigError::Invalid {
            name: "LISTEN_ADDR",
            value: listen_text.to_owned(),
            why: "expected ADDRESS:PORT",
        })?;
        let upstream_url = get("AWESOME_API_URL")
            .unwrap_or(DEFAULT_UPSTREAM)
            .trim_end_matches('/')
            .to_owned();
        if !(upstream_url.starts_with("http://") || upstream_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "AWESOME_API_URL",
                value: upstream_url,
                why: "expected an http:// or https:// URL",
            });
        }
        Ok(Config {
            database_url: required("DATABASE_URL")?,
            secret_key: required("SECRET_KEY")?,
            algorithm,
            token_lifetime: Duration::from_secs(minutes * 60),
            upstream_url,
            upstream_key: get("AWESOME_API_KEY").map(str::to_owned),
            upstream_timeout: Duration::from_secs(number("AWESOME_API_TIMEOUT_SECONDS", 3)?.max(1)),
            cache_fresh_for: Duration::from_secs(number("QUOTES_CACHE_SECONDS", 300)?),
            listen,
            server_name: get("SERVER_NAME")
                .map(str::to_owned)
                .unwrap_or_else(hostname),
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "quotes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_seeds_env_file_is_enough() {
        let c = Config::from_map(&env(&[
            ("AWESOME_API_KEY", "k"),
            ("SECRET_KEY", "s"),
            ("ALGORITHM", "HS256"),
            (
                "DATABASE_URL",
                "postgresql://cloud:senha@10.0.0.5:5432/cloud",
            ),
            ("SERVER_NAME", "api-1"),
        ]))
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::HS256);
        assert_eq!(c.upstream_url, DEFAULT_UPSTREAM);
        assert_eq!(c.upstream_key.as_deref(), Some("k"));
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.token_lifetime, Duration::from_secs(1800));
        assert_eq!(c.server_name, "api-1");
    }

    #[test]
    fn missing_and_invalid_settings_are_named() {
        let e = Config::from_map(&env(&[("SECRET_KEY", "s")])).unwrap_err();
        assert_eq!(e.to_string(), "DATABASE_URL is not set");
        let e = Config::from_map(&env(&[
            ("SECRET_KEY", "s"),
            ("DATABASE_URL", "x"),
            ("ALGORITHM", "RS256"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ALGORITHM=\"RS256\" is not valid"),
            "{e}"
        );
        let e = Config::from_map(&env(&[
            ("SECRET_KEY", "s"),
            ("DATABASE_URL", "x"),
            ("LISTEN_ADDR", "8080"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("expected ADDRESS:PORT"), "{e}");
    }
}
