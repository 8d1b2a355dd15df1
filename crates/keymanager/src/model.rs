//! Rows of the key-manager tables and their Barbican JSON shapes. A
//! secret's payload never appears here: it is read only through
//! `GET /v1/secrets/{id}/payload`.

use ferro_common::time::iso_micros;
use serde_json::{json, Value};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Secret {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub creator_id: String,
    pub name: Option<String>,
    pub secret_type: String,
    pub algorithm: Option<String>,
    pub bit_length: Option<i64>,
    pub mode: Option<String>,
    pub expiration: Option<String>,
    /// `text/plain` or `application/octet-stream`; none without a payload.
    pub content_type: Option<String>,
    /// Base64 of the payload's bytes.
    pub payload: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Container {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub creator_id: String,
    pub name: Option<String>,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Barbican's timestamps: no zone letter, microseconds.
fn stamp(micros: i64) -> String {
    iso_micros(micros).trim_end_matches('Z').to_owned()
}

impl Secret {
    pub fn render(&self, base: &str) -> Value {
        let content_types = match &self.content_type {
            Some(t) => json!({ "default": t }),
            None => Value::Null,
        };
        json!({
            "secret_ref": format!("{base}/v1/secrets/{}", self.id),
            "name": self.name, "secret_type": self.secret_type,
            "status": "ACTIVE",
            "algorithm": self.algorithm, "bit_length": self.bit_length, "mode": self.mode,
            "expiration": self.expiration,
            "content_types": content_types,
            "creator_id": self.creator_id,
            "consumers": [],
            "created": stamp(self.created_at), "updated": stamp(self.updated_at),
        })
    }
}

impl Container {
    /// With its (name, secret id) pairs.
    pub fn render(&self, base: &str, secrets: &[(String, String)]) -> Value {
        json!({
            "container_ref": format!("{base}/v1/containers/{}", self.id),
            "name": self.name, "type": self.kind, "status": "ACTIVE",
            "secret_refs": secrets.iter().map(|(name, id)| json!({
                "name": name, "secret_ref": format!("{base}/v1/secrets/{id}"),
            })).collect::<Vec<_>>(),
            "consumers": [],
            "creator_id": self.creator_id,
            "created": stamp(self.created_at), "updated": stamp(self.updated_at),
        })
    }
}
