//! Image records and their Glance v2 JSON (a bare object, no envelope).

use serde_json::{json, Map, Value};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub visibility: String,
    pub protected: i64,
    pub os_hidden: i64,
    pub owner: String,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub tags: String,
    pub properties: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Attributes that are not free-form properties.
pub const CORE: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "min_disk",
    "min_ram",
    "tags",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "locations",
    "direct_url",
    "stores",
];

/// Attributes a client may never set.
pub const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "owner",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "locations",
    "direct_url",
    "stores",
];

impl Image {
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    pub fn props(&self) -> Map<String, Value> {
        serde_json::from_str(&self.properties).unwrap_or_default()
    }

    pub fn render(&self) -> Value {
        let ts = ferro_common::time::iso_seconds;
        let mut v = json!({
            "id": self.id, "name": self.name, "status": self.status, "visibility": self.visibility,
            "protected": self.protected != 0, "os_hidden": self.os_hidden != 0, "owner": self.owner,
            "disk_format": self.disk_format, "container_format": self.container_format,
            "size": self.size, "virtual_size": self.virtual_size, "checksum": self.checksum,
            "os_hash_algo": self.os_hash_algo, "os_hash_value": self.os_hash_value,
            "min_disk": self.min_disk, "min_ram": self.min_ram, "tags": self.tag_list(),
            "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "self": format!("/v2/images/{}", self.id), "file": format!("/v2/images/{}/file", self.id),
            "schema": "/v2/schemas/image",
        });
        if let Value::Object(m) = &mut v {
            for (k, val) in self.props() {
                m.entry(k).or_insert(val);
            }
        }
        v
    }
}

impl Member {
    pub fn render(&self) -> Value {
        let ts = ferro_common::time::iso_seconds;
        json!({"image_id": self.image_id, "member_id": self.member_id, "status": self.status,
               "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
               "schema": "/v2/schemas/member"})
    }
}
