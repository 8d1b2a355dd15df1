//! The key manager's rules, without HTTP: Barbican's validation of
//! secrets and containers, who may read what, and the certificate bundles
//! load balancers ask for.
//!
//! Secrets and containers belong to the project of the token that made
//! them. A project's readers see their metadata, its members read payloads
//! and make and delete them; another project gets 403, as Barbican answers.
//! Lists show the caller's project only (admins too, as in Barbican).
//! Payloads are kept in the database as they are (base64 of the bytes):
//! unlike Barbican's crypto plugins, nothing encrypts them at rest.

use base64::Engine;
use ferro_common::auth::SharedAuth;
use ferro_common::policy::{self, Rule, Target};
use ferro_common::{ids, time, AuthContext};
use ferro_store::Db;
use serde::Deserialize;

use crate::certificate::{self, CertificateBundle};
use crate::error::{KmError, Result};
use crate::model::{Container, Secret};
use crate::store::{Members, Store};

const SECRET_TYPES: &[&str] = &[
    "symmetric",
    "public",
    "private",
    "passphrase",
    "certificate",
    "opaque",
];
/// Payload types kept as bytes (sent base64-encoded).
const BINARY_TYPES: &[&str] = &[
    "application/octet-stream",
    "application/pkcs8",
    "application/pkix-cert",
];
/// The largest payload, in bytes (room for a certificate, its chain and key).
pub const MAX_PAYLOAD: usize = 20_000;

#[derive(Debug, Default, Deserialize)]
pub struct SecretCreate {
    pub name: Option<String>,
    pub payload: Option<String>,
    pub payload_content_type: Option<String>,
    pub payload_content_encoding: Option<String>,
    pub secret_type: Option<String>,
    pub algorithm: Option<String>,
    pub bit_length: Option<i64>,
    pub mode: Option<String>,
    pub expiration: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SecretRef {
    pub name: Option<String>,
    pub secret_ref: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerCreate {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub secret_refs: Option<Vec<SecretRef>>,
}

/// One page of a list: the rows and how many there are in all.
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Why a load balancer can't have the certificate it names.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no secret or container {0} in this project")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

fn schema(kind: &str, why: impl std::fmt::Display) -> KmError {
    KmError::bad(format!(
        "Provided object does not match schema '{kind}': {why}. Invalid property: '{kind}'"
    ))
}

/// The id at the end of a secret or container URL (or a bare id).
pub fn id_of(reference: &str) -> &str {
    reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

pub struct KeyManager {
    store: Store,
    pub auth: SharedAuth,
    /// `http://host:9311`
    pub base_url: String,
}

impl KeyManager {
    pub fn new(db: Db, auth: SharedAuth, base_url: String) -> Self {
        KeyManager {
            store: Store { db },
            auth,
            base_url,
        }
    }

    fn allowed(ctx: &AuthContext, rule: Rule, project: &str) -> bool {
        policy::allows(
            ctx,
            rule,
            Target {
                project_id: Some(project),
                user_id: None,
            },
        )
    }

    fn project(ctx: &AuthContext) -> Result<&str> {
        ctx.project_id()
            .ok_or_else(|| KmError::bad("A project-scoped token is required."))
    }

    fn may_write(ctx: &AuthContext, action: &str, project: &str) -> Result<()> {
        if Self::allowed(ctx, Rule::ProjectMember, project) {
            return Ok(());
        }
        Err(KmError::Forbidden(format!(
            "{action} attempt not allowed - please review your user/project privileges"
        )))
    }

    /// A secret the caller may see (`rule`): 404 when there is none (or it
    /// has expired), 403 when it is another project's.
    async fn visible_secret(
        &self,
        ctx: &AuthContext,
        id: &str,
        rule: Rule,
        action: &str,
    ) -> Result<Secret> {
        let s = self
            .store
            .secret(id)
            .await?
            .filter(|s| !expired(s))
            .ok_or_else(|| KmError::not_found("secret"))?;
        if !Self::allowed(ctx, rule, &s.project_id) {
            return Err(KmError::Forbidden(format!(
                "{action} attempt not allowed - please review your user/project privileges"
            )));
        }
        Ok(s)
    }

    pub async fn store_secret(&self, ctx: &AuthContext, req: SecretCreate) -> Result<Secret> {
        let project = Self::project(ctx)?.to_owned();
        Self::may_write(ctx, "Secret creation", &project)?;
        if req.name.as_ref().is_some_and(|n| n.len() > 255) {
            return Err(schema("Secret", "name is longer than 255 characters"));
        }
        let secret_type = req.secret_type.unwrap_or_else(|| "opaque".to_owned());
        if !SECRET_TYPES.contains(&secret_type.as_str()) {
            return Err(schema(
                "Secret",
                format!(
                    "secret_type '{secret_type}' is not one of {}",
                    SECRET_TYPES.join(", ")
                ),
            ));
        }
        if let Some(b) = req.bit_length.filter(|b| *b < 1) {
            return Err(schema("Secret", format!("bit_length {b} is less than 1")));
        }
        if let Some(e) = &req.expiration {
            match time::parse_iso(e) {
                None => return Err(KmError::bad(format!("Invalid date for 'expiration': {e}"))),
                Some(t) if t <= time::now_micros() => {
                    return Err(KmError::bad("'expiration' is before current time"))
                }
                _ => {}
            }
        }
        let (content_type, payload) = match (&req.payload, &req.payload_content_type) {
            (None, None) => (None, None),
            (None, Some(_)) => {
                return Err(KmError::bad(
                    "If 'payload_content_type' is specified, 'payload' must be too",
                ))
            }
            (Some(p), _) if p.is_empty() => {
                return Err(schema(
                    "Secret",
                    "If 'payload' specified, must be non empty",
                ))
            }
            (Some(_), None) => {
                return Err(KmError::bad(
                    "If 'payload' is specified, 'payload_content_type' must be too",
                ))
            }
            (Some(p), Some(t)) => {
                let t = normalize_type(t)?;
                let bytes = if t == "text/plain" {
                    if req.payload_content_encoding.is_some() {
                        return Err(KmError::bad(
                            "payload_content_encoding is not allowed for text/plain payloads",
                        ));
                    }
                    p.as_bytes().to_vec()
                } else {
                    if req.payload_content_encoding.as_deref() != Some("base64") {
                        return Err(KmError::bad(format!(
                            "payload_content_encoding must be base64 for {t} payloads"
                        )));
                    }
                    base64::engine::general_purpose::STANDARD
                        .decode(p.trim())
                        .map_err(|_| {
                            KmError::bad("Problem decoding payload: it is not valid base64")
                        })?
                };
                if bytes.len() > MAX_PAYLOAD {
                    return Err(KmError::bad(format!(
                        "Could not add secret data as it was too large: {} bytes (at most {MAX_PAYLOAD})",
                        bytes.len()
                    )));
                }
                (
                    Some(t),
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                )
            }
        };
        let now = time::now_micros();
        let s = Secret {
            id: ids::uuid_id(),
            seq: now,
            project_id: project,
            creator_id: ctx.user_id.clone(),
            name: req.name,
            secret_type,
            algorithm: req.algorithm,
            bit_length: req.bit_length,
            mode: req.mode,
            expiration: req.expiration,
            content_type,
            payload,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_secret(&s).await?;
        tracing::info!(secret_id = %s.id, project_id = %s.project_id, "secret stored");
        Ok(s)
    }

    pub async fn secret(&self, ctx: &AuthContext, id: &str) -> Result<Secret> {
        self.visible_secret(ctx, id, Rule::ProjectReader, "Secret retrieval")
            .await
    }

    /// The payload as (content type, bytes). `accept` must be the
    /// secret's type, `*/*` or absent (406 otherwise).
    pub async fn payload(
        &self,
        ctx: &AuthContext,
        id: &str,
        accept: Option<&str>,
    ) -> Result<(String, Vec<u8>)> {
        let s = self
            .visible_secret(ctx, id, Rule::ProjectMember, "Secret payload retrieval")
            .await?;
        let (Some(t), Some(p)) = (s.content_type, s.payload) else {
            return Err(KmError::NotFound(
                "Not Found. Sorry but your secret has no payload.".into(),
            ));
        };
        if let Some(a) = accept.filter(|a| !a.is_empty() && !a.contains("*/*")) {
            let wanted = normalize_type(a).ok();
            if wanted.as_deref() != Some(t.as_str()) {
                return Err(KmError::NotAcceptable(format!(
                    "Wrong payload content-type: the secret is {t}, {a} was asked for"
                )));
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p)
            .map_err(|e| KmError::Internal(format!("stored payload of {id}: {e}")))?;
        Ok((t, bytes))
    }

    pub async fn list_secrets(
        &self,
        ctx: &AuthContext,
        name: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Page<Secret>> {
        let project = Self::project(ctx)?;
        let (items, total) = self.store.secrets(project, name, limit, offset).await?;
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    pub async fn delete_secret(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let s = self.secret(ctx, id).await?;
        Self::may_write(ctx, "Secret deletion", &s.project_id)?;
        self.store.delete_secret(id).await?;
        tracing::info!(secret_id = id, "secret deleted");
        Ok(())
    }

    pub async fn create_container(
        &self,
        ctx: &AuthContext,
        req: ContainerCreate,
    ) -> Result<(Container, Members)> {
        let project = Self::project(ctx)?.to_owned();
        Self::may_write(ctx, "Container creation", &project)?;
        let kind = req
            .kind
            .ok_or_else(|| schema("Container", "'type' is a required property"))?;
        let (allowed, required): (&[&str], &[&str]) = match kind.as_str() {
            "certificate" => (
                &[
                    "certificate",
                    "private_key",
                    "private_key_passphrase",
                    "intermediates",
                ],
                &["certificate"],
            ),
            "rsa" => (
                &["private_key", "public_key", "private_key_passphrase"],
                &["private_key", "public_key"],
            ),
            "generic" => (&[], &[]),
            other => {
                return Err(schema(
                    "Container",
                    format!("'{other}' is not one of ['generic', 'rsa', 'certificate']"),
                ))
            }
        };
        let mut members: Members = Vec::new();
        for r in req.secret_refs.unwrap_or_default() {
            let name = r.name.unwrap_or_default();
            if kind != "generic" && !allowed.contains(&name.as_str()) {
                return Err(schema(
                    "Container",
                    format!(
                        "a {kind} container can't hold a secret named '{name}' (it takes {})",
                        allowed.join(", ")
                    ),
                ));
            }
            if members.iter().any(|(n, _)| *n == name) {
                return Err(schema(
                    "Container",
                    format!("duplicate secret name '{name}'"),
                ));
            }
            let reference = r
                .secret_ref
                .ok_or_else(|| schema("Container", "'secret_ref' is a required property"))?;
            let id = id_of(&reference).to_owned();
            let found = self.store.secret(&id).await?;
            match found {
                Some(s) if s.project_id == project => members.push((name, id)),
                _ => {
                    return Err(KmError::NotFound(format!(
                        "Secret provided for '{name}' doesn't exist."
                    )))
                }
            }
        }
        for r in required {
            if !members.iter().any(|(n, _)| n == r) {
                return Err(schema(
                    "Container",
                    format!("a {kind} container needs a secret named '{r}'"),
                ));
            }
        }
        let now = time::now_micros();
        let c = Container {
            id: ids::uuid_id(),
            seq: now,
            project_id: project,
            creator_id: ctx.user_id.clone(),
            name: req.name,
            kind,
            created_at: now,
            updated_at: now,
        };
        members.sort();
        self.store.insert_container(&c, &members).await?;
        tracing::info!(container_id = %c.id, kind = %c.kind, "container created");
        Ok((c, members))
    }

    pub async fn container(&self, ctx: &AuthContext, id: &str) -> Result<(Container, Members)> {
        let found = self
            .store
            .container(id)
            .await?
            .ok_or_else(|| KmError::not_found("container"))?;
        if !Self::allowed(ctx, Rule::ProjectReader, &found.0.project_id) {
            return Err(KmError::Forbidden(
                "Container retrieval attempt not allowed - please review your user/project privileges".into(),
            ));
        }
        Ok(found)
    }

    pub async fn list_containers(
        &self,
        ctx: &AuthContext,
        name: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Page<(Container, Members)>> {
        let project = Self::project(ctx)?;
        let (items, total) = self.store.containers(project, name, limit, offset).await?;
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    /// Deletes the container; the secrets it named stay.
    pub async fn delete_container(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let (c, _) = self.container(ctx, id).await?;
        Self::may_write(ctx, "Container deletion", &c.project_id)?;
        self.store.delete_container(id).await?;
        tracing::info!(container_id = id, "container deleted");
        Ok(())
    }

    /// The text of a secret of `project`, for a certificate bundle.
    async fn text_of(&self, project: &str, id: &str, what: &str) -> Result<String, BundleError> {
        let s = self
            .store
            .secret(id)
            .await
            .map_err(|e| BundleError::Failed(e.to_string()))?
            .filter(|s| s.project_id == project && !expired(s))
            .ok_or_else(|| BundleError::Missing(id.to_owned()))?;
        let bytes = s
            .payload
            .as_deref()
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
            .ok_or_else(|| {
                BundleError::Invalid(format!("the {what} secret {id} has no payload"))
            })?;
        String::from_utf8(bytes).map_err(|_| {
            BundleError::Invalid(format!(
                "the {what} secret {id} is not PEM text (PKCS12 is not read here: store the certificate and key as PEM)"
            ))
        })
    }

    /// The certificate `reference` names for a load balancer of `project`:
    /// a certificate container (certificate, private_key, intermediates),
    /// or one secret holding the whole PEM bundle.
    pub async fn bundle(
        &self,
        project: &str,
        reference: &str,
    ) -> Result<CertificateBundle, BundleError> {
        let id = id_of(reference);
        if reference.contains("/containers/") {
            let (c, members) = self
                .store
                .container(id)
                .await
                .map_err(|e| BundleError::Failed(e.to_string()))?
                .filter(|(c, _)| c.project_id == project)
                .ok_or_else(|| BundleError::Missing(id.to_owned()))?;
            if c.kind != "certificate" {
                return Err(BundleError::Invalid(format!(
                    "container {id} is of type {}, not certificate",
                    c.kind
                )));
            }
            let named = |n: &str| members.iter().find(|(m, _)| m == n).map(|(_, s)| s.clone());
            if named("private_key_passphrase").is_some() {
                return Err(BundleError::Invalid(
                    "private keys with a passphrase are not supported: store the key without one"
                        .into(),
                ));
            }
            let cert_id = named("certificate").ok_or_else(|| {
                BundleError::Invalid(format!("container {id} has no certificate"))
            })?;
            let key_id = named("private_key").ok_or_else(|| {
                BundleError::Invalid(format!("container {id} has no private_key"))
            })?;
            let cert = self.text_of(project, &cert_id, "certificate").await?;
            let key = self.text_of(project, &key_id, "private_key").await?;
            let chain = match named("intermediates") {
                Some(i) => Some(self.text_of(project, &i, "intermediates").await?),
                None => None,
            };
            certificate::bundle(&cert, chain.as_deref(), &key)
                .map_err(|e| BundleError::Invalid(e.0))
        } else {
            let text = self.text_of(project, id, "certificate").await?;
            certificate::from_pem_bundle(&text).map_err(|e| BundleError::Invalid(e.0))
        }
    }
}

fn expired(s: &Secret) -> bool {
    s.expiration
        .as_deref()
        .and_then(time::parse_iso)
        .is_some_and(|t| t <= time::now_micros())
}

/// `text/plain` (with or without a charset) or one of the binary types.
fn normalize_type(t: &str) -> Result<String> {
    let base = t
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if base == "text/plain" || BINARY_TYPES.contains(&base.as_str()) {
        return Ok(base);
    }
    Err(KmError::bad(format!(
        "payload_content_type '{t}' is not supported: use text/plain or application/octet-stream"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_end_in_their_id() {
        assert_eq!(id_of("http://h:9311/v1/secrets/abc"), "abc");
        assert_eq!(id_of("http://h:9311/v1/containers/abc/"), "abc");
        assert_eq!(id_of("abc"), "abc");
    }

    #[test]
    fn payload_types_are_text_or_bytes() {
        assert_eq!(
            normalize_type("text/plain; charset=utf-8").unwrap(),
            "text/plain"
        );
        assert_eq!(
            normalize_type("application/octet-stream").unwrap(),
            "application/octet-stream"
        );
        assert!(normalize_type("image/png").is_err());
    }
}
