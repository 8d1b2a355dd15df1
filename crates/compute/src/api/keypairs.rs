//! Key pairs: imported public keys, or generated ones whose private key is
//! returned once.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use ferro_store::sqlx;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::json;

use super::{empty, render, reply, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::model::Keypair;

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 255
        && name.trim() == name
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ComputeError::bad(
            "Keypair data is invalid: Keypair name contains unsafe characters or is not 1 to 255 characters long.",
        ))
    }
}

/// Parses an OpenSSH public key line; returns (normalised key, MD5 fingerprint).
pub fn parse_public_key(text: &str) -> Result<(String, String)> {
    let line = text.trim();
    let key = ssh_key::PublicKey::from_openssh(line).map_err(|_| {
        ComputeError::bad("Keypair data is invalid: failed to generate fingerprint")
    })?;
    let blob = key
        .to_bytes()
        .map_err(|_| ComputeError::bad("Keypair data is invalid"))?;
    let digest = Md5::digest(&blob);
    let fp = digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok((text.to_owned(), fp))
}

/// Whose key pairs a request is about: the caller's, or (admin, 2.10+)
/// the `user_id` named.
fn owner(c: &Ctx, user_id: Option<&str>) -> Result<String> {
    match user_id {
        Some(u) if u != c.auth.user_id => {
            if !c.version.at_least(10) {
                return Err(ComputeError::bad(
                    "user_id is supported from microversion 2.10.",
                ));
            }
            if !c.auth.is_admin() {
                return Err(ComputeError::Denied(ferro_common::Denied {
                    action: "os_compute_api:os-keypairs:index",
                }));
            }
            Ok(u.to_owned())
        }
        _ => Ok(c.auth.user_id.clone()),
    }
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    let user = owner(&c, p.get("user_id"))?;
    let rows: Vec<Keypair> =
        sqlx::query_as("SELECT * FROM keypairs WHERE user_id = $1 ORDER BY name")
            .bind(&user)
            .fetch_all(s.pool())
            .await?;
    let items: Vec<_> = rows
        .iter()
        .map(|k| json!({"keypair": render::keypair(k, c.version, false)}))
        .collect();
    Ok(reply(StatusCode::OK, c.version, json!({"keypairs": items})))
}

async fn get(s: &State, user: &str, name: &str) -> Result<Keypair> {
    let k: Option<Keypair> =
        sqlx::query_as("SELECT * FROM keypairs WHERE user_id = $1 AND name = $2")
            .bind(user)
            .bind(name)
            .fetch_optional(s.pool())
            .await?;
    k.ok_or_else(|| ComputeError::NotFound(format!("Keypair {name} not found for user {user}")))
}

pub async fn show(
    St(s): St<State>,
    c: Ctx,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response> {
    let user = owner(&c, p.get("user_id"))?;
    let k = get(&s, &user, &name).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"keypair": render::keypair(&k, c.version, true)}),
    ))
}

#[derive(Deserialize)]
pub struct CreateBody {
    keypair: CreateFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFields {
    name: String,
    public_key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
}

pub async fn create(St(s): St<State>, c: Ctx, Body(b): Body<CreateBody>) -> Result<Response> {
    let f = b.keypair;
    check_name(&f.name)?;
    let user = owner(&c, f.user_id.as_deref())?;
    let kind = f.kind.unwrap_or_else(|| "ssh".into());
    if kind != "ssh" && kind != "x509" {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute type: use ssh or x509.",
        ));
    }
    if kind == "x509" {
        return Err(ComputeError::bad("x509 key pairs are not supported."));
    }
    if f.public_key.as_ref().is_some_and(|k| k.len() > 16 * 1024) {
        return Err(ComputeError::bad(
            "Keypair data is invalid: the public key is too long.",
        ));
    }
    if let Some(project) = c.auth.project_id() {
        let quota = s
            .quotas(project)
            .await?
            .get("key_pairs")
            .copied()
            .unwrap_or(100);
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM keypairs WHERE user_id = $1")
            .bind(&user)
            .fetch_one(s.pool())
            .await?;
        if quota >= 0 && count >= quota {
            return Err(ComputeError::Forbidden(
                "Quota exceeded, too many key pairs.".into(),
            ));
        }
    }
    if get(&s, &user, &f.name).await.is_ok() {
        return Err(ComputeError::Conflict(format!(
            "Key pair '{}' already exists.",
            f.name
        )));
    }
    let (public_key, fingerprint, private_key) = match f.public_key {
        Some(k) => {
            let (k, fp) = parse_public_key(&k)?;
            (k, fp, None)
        }
        None => {
            let key = ssh_key::PrivateKey::random(
                &mut ssh_key::rand_core::OsRng,
                ssh_key::Algorithm::Ed25519,
            )
            .map_err(|e| ComputeError::Internal(format!("generating a key: {e}")))?;
            let private = key
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| ComputeError::Internal(e.to_string()))?
                .to_string();
            let public = format!(
                "{} Generated-by-ferrostack",
                key.public_key()
                    .to_openssh()
                    .map_err(|e| ComputeError::Internal(e.to_string()))?
            );
            let (k, fp) = parse_public_key(&public)?;
            (k, fp, Some(private))
        }
    };
    let k = Keypair {
        user_id: user,
        name: f.name,
        public_key,
        fingerprint,
        kind,
        created_at: time::now_micros(),
    };
    sqlx::query("INSERT INTO keypairs (user_id, name, public_key, fingerprint, type, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&k.user_id)
        .bind(&k.name)
        .bind(&k.public_key)
        .bind(&k.fingerprint)
        .bind(&k.kind)
        .bind(k.created_at)
        .execute(s.pool())
        .await?;
    let mut body = render::keypair(&k, c.version, false);
    body["user_id"] = json!(k.user_id);
    if let Some(p) = private_key {
        body["private_key"] = json!(p);
    }
    let status = if c.version.at_least(2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply(status, c.version, json!({"keypair": body})))
}

pub async fn delete(
    St(s): St<State>,
    c: Ctx,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response> {
    let user = owner(&c, p.get("user_id"))?;
    get(&s, &user, &name).await?;
    sqlx::query("DELETE FROM keypairs WHERE user_id = $1 AND name = $2")
        .bind(&user)
        .bind(&name)
        .execute(s.pool())
        .await?;
    let status = if c.version.at_least(2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    };
    Ok(empty(status, c.version))
}
