//! Identity records as stored, and their Keystone JSON renderings.

use serde_json::{json, Map, Value};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: i64,
    pub extra: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: i64,
    pub tags: String,
    pub extra: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: i64,
    pub password_hash: Option<String>,
    pub default_project_id: Option<String>,
    pub description: String,
    pub extra: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Assignment {
    pub actor_type: String,
    pub actor_id: String,
    pub target_type: String,
    pub target_id: String,
    pub role_id: String,
    pub inherited: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub description: String,
    pub expires_at: Option<i64>,
    pub unrestricted: i64,
    pub roles: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Service {
    pub id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    pub enabled: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub enabled: i64,
}

fn parse_obj(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

fn with_extra(mut base: Value, extra: &str) -> Value {
    if let Value::Object(m) = &mut base {
        for (k, v) in parse_obj(extra) {
            m.entry(k).or_insert(v);
        }
    }
    base
}

/// Links relative to the identity endpoint (`base` ends in `/v3`).
pub fn self_link(base: &str, path: &str) -> Value {
    json!({"self": format!("{base}/{path}")})
}

impl Domain {
    pub fn render(&self, base: &str) -> Value {
        with_extra(
            json!({"id": self.id, "name": self.name, "description": self.description,
                   "enabled": self.enabled != 0, "tags": [], "options": {},
                   "links": self_link(base, &format!("domains/{}", self.id))}),
            &self.extra,
        )
    }
}

impl Project {
    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    pub fn render(&self, base: &str) -> Value {
        with_extra(
            json!({"id": self.id, "name": self.name, "domain_id": self.domain_id,
                   "description": self.description, "enabled": self.enabled != 0,
                   "parent_id": self.parent_id.clone().unwrap_or_else(|| self.domain_id.clone()),
                   "is_domain": false, "tags": self.tags(), "options": {},
                   "links": self_link(base, &format!("projects/{}", self.id))}),
            &self.extra,
        )
    }
}

impl User {
    pub fn render(&self, base: &str) -> Value {
        let mut v = json!({"id": self.id, "name": self.name, "domain_id": self.domain_id,
                           "enabled": self.enabled != 0, "password_expires_at": null, "options": {},
                           "links": self_link(base, &format!("users/{}", self.id))});
        if let Some(p) = &self.default_project_id {
            v["default_project_id"] = json!(p);
        }
        if !self.description.is_empty() {
            v["description"] = json!(self.description);
        }
        with_extra(v, &self.extra)
    }
}

impl Group {
    pub fn render(&self, base: &str) -> Value {
        json!({"id": self.id, "name": self.name, "domain_id": self.domain_id,
               "description": self.description,
               "links": self_link(base, &format!("groups/{}", self.id))})
    }
}

impl Role {
    pub fn domain(&self) -> Option<&str> {
        (!self.domain_id.is_empty()).then_some(self.domain_id.as_str())
    }

    pub fn render(&self, base: &str) -> Value {
        json!({"id": self.id, "name": self.name, "domain_id": self.domain(),
               "description": self.description, "options": {},
               "links": self_link(base, &format!("roles/{}", self.id))})
    }

    pub fn brief(&self, base: &str) -> Value {
        json!({"id": self.id, "name": self.name,
               "links": self_link(base, &format!("roles/{}", self.id))})
    }
}

impl AppCred {
    pub fn role_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.roles).unwrap_or_default()
    }
}

impl Region {
    pub fn render(&self, base: &str) -> Value {
        json!({"id": self.id, "description": self.description,
               "parent_region_id": self.parent_region_id,
               "links": self_link(base, &format!("regions/{}", self.id))})
    }
}

impl Service {
    pub fn render(&self, base: &str) -> Value {
        json!({"id": self.id, "type": self.kind, "name": self.name,
               "description": self.description, "enabled": self.enabled != 0,
               "links": self_link(base, &format!("services/{}", self.id))})
    }
}

impl Endpoint {
    pub fn render(&self, base: &str) -> Value {
        json!({"id": self.id, "service_id": self.service_id, "interface": self.interface,
               "region_id": self.region_id, "region": self.region_id, "url": self.url,
               "enabled": self.enabled != 0,
               "links": self_link(base, &format!("endpoints/{}", self.id))})
    }
}
