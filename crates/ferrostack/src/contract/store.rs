//! The contract's rows: join tokens (kept as their SHA-256 only) and the
//! hosts enrolled with a certificate.

use ferro_common::time;
use ferro_store::{sqlx, Db};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

/// Why a join was refused. Each message is what the joining host is told;
/// none of them says anything about the cloud beyond the refusal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    #[error("the join token is not valid")]
    UnknownToken,
    #[error("the join token was already used")]
    Used,
    #[error("the join token has expired")]
    Expired,
    #[error("the join token was made for another host name")]
    OtherHost,
    #[error("{0}")]
    Bad(String),
    #[error("database: {0}")]
    Db(String),
}

impl From<sqlx::Error> for JoinError {
    fn from(e: sqlx::Error) -> Self {
        JoinError::Db(e.to_string())
    }
}

fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Host names as certificates and the compute API carry them.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && !name.starts_with(['-', '.'])
}

/// Makes a one-time token for `host`, valid for `ttl_secs`.
pub async fn create_token(db: &Db, host: &str, ttl_secs: i64) -> Result<(String, i64), JoinError> {
    if !valid_host_name(host) {
        return Err(JoinError::Bad(format!(
            "{host:?} is not a valid host name (letters, digits, '-', '.', '_'; at most 63)"
        )));
    }
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 40);
    let now = time::now_micros();
    let expires = now + ttl_secs * 1_000_000;
    sqlx::query(
        "INSERT INTO join_tokens (token_sha256, host, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, NULL)",
    )
    .bind(sha(&secret))
    .bind(host)
    .bind(now)
    .bind(expires)
    .execute(db.pool())
    .await?;
    Ok((secret, expires))
}

/// Uses a token up for `host` and records the certificate it enrolled,
/// in one transaction: a token enrols exactly one certificate.
pub async fn consume_token(
    db: &Db,
    secret: &str,
    host: &str,
    cert_sha256: &str,
) -> Result<(), JoinError> {
    let mut tx = db.pool().begin().await?;
    let row: Option<(String, i64, Option<i64>)> =
        sqlx::query_as("SELECT host, expires_at, used_at FROM join_tokens WHERE token_sha256 = $1")
            .bind(sha(secret))
            .fetch_optional(&mut *tx)
            .await?;
    let now = time::now_micros();
    match row {
        None => return Err(JoinError::UnknownToken),
        Some((_, _, Some(_))) => return Err(JoinError::Used),
        Some((_, exp, None)) if exp < now => return Err(JoinError::Expired),
        Some((h, _, None)) if h != host => return Err(JoinError::OtherHost),
        Some(_) => {}
    }
    let used = sqlx::query(
        "UPDATE join_tokens SET used_at = $1 WHERE token_sha256 = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(sha(secret))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if used == 0 {
        return Err(JoinError::Used);
    }
    sqlx::query("DELETE FROM enrolled_hosts WHERE name = $1")
        .bind(host)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO enrolled_hosts (name, cert_sha256, enrolled_at) VALUES ($1, $2, $3)")
        .bind(host)
        .bind(cert_sha256)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The enrolled host a certificate belongs to, if it still is enrolled.
pub async fn host_of_cert(db: &Db, cert_sha256: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT name FROM enrolled_hosts WHERE cert_sha256 = $1")
            .bind(cert_sha256)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|(n,)| n))
}

/// What `ferrostack host remove` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    Done,
    NotFound,
    /// The host still holds these servers.
    Busy(Vec<String>),
}

/// Forgets a host: its enrolment (its certificate is refused from now on),
/// its unused tokens and its compute host row. Refused while servers live on
/// it, unless `force`.
pub async fn remove_host(db: &Db, host: &str, force: bool) -> Result<Removed, sqlx::Error> {
    let servers: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM servers WHERE host = $1 AND deleted = 0 ORDER BY id")
            .bind(host)
            .fetch_all(db.pool())
            .await?;
    if !servers.is_empty() && !force {
        return Ok(Removed::Busy(servers.into_iter().map(|(i,)| i).collect()));
    }
    let mut tx = db.pool().begin().await?;
    let mut n = 0;
    for sql in [
        "DELETE FROM enrolled_hosts WHERE name = $1",
        "DELETE FROM join_tokens WHERE host = $1",
        "DELETE FROM hosts WHERE name = $1",
    ] {
        n += sqlx::query(sql)
            .bind(host)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(if n == 0 {
        Removed::NotFound
    } else {
        Removed::Done
    })
}

/// Every host with an agent endpoint: (name, url).
pub async fn agent_endpoints(db: &Db) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT name, agent_url FROM hosts WHERE agent_url IS NOT NULL ORDER BY name")
        .fetch_all(db.pool())
        .await
}

/// Whether `host` is the cloud's network node: the first host registered
/// with the role (a later one with the flag runs no routers or DHCP, so two
/// hosts never answer for the same router address).
pub async fn is_network_node(db: &Db, host: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT name FROM hosts WHERE network_node <> 0 ORDER BY seq, name LIMIT 1")
            .fetch_optional(db.pool())
            .await?;
    Ok(row.is_some_and(|(n,)| n == host))
}

/// A host as `ferrostack host list` shows it.
pub struct HostLine {
    pub name: String,
    pub up: bool,
    pub disabled: bool,
    pub out_of_sync: Option<String>,
    /// The host's desired-state generation in this database.
    pub generation: i64,
    /// The generation its agent applied last, as it last said.
    pub applied: i64,
    pub agent_url: Option<String>,
}

/// name, heartbeat_at, forced_down, disabled, out_of_sync, agent_generation, agent_url
type HostRow = (String, i64, i64, i64, Option<String>, i64, Option<String>);

pub async fn host_list(db: &Db) -> Result<Vec<HostLine>, sqlx::Error> {
    let rows: Vec<HostRow> = sqlx::query_as(
        "SELECT name, heartbeat_at, forced_down, disabled, out_of_sync, agent_generation, agent_url FROM hosts ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?;
    let generations = ferro_compute::service::host_generations(db.pool()).await?;
    let shared = generations.get("").copied().unwrap_or(0);
    let mut out = Vec::new();
    for (name, heartbeat_at, forced_down, disabled, out_of_sync, applied, agent_url) in rows {
        let generation = generations.get(&name).copied().unwrap_or(shared);
        out.push(HostLine {
            up: ferro_compute::service::host_is_up(heartbeat_at, forced_down),
            disabled: disabled != 0,
            out_of_sync,
            generation,
            applied,
            agent_url,
            name,
        });
    }
    Ok(out)
}
