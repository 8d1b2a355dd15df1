//! The rows of the volume service and their JSON, as Cinder renders them
//! at each microversion.
//!
//! A volume's lifecycle (Cinder's):
//!
//! ```text
//!  creating ──▶ available ◀──────────────────────────┐
//!     │            │ reserve / attachment create      │ detach done
//!     ▼            ▼                                  │
//!   error       reserved ──▶ attaching ──▶ in-use ──▶ detaching
//!                  available ──▶ extending ──▶ available
//!                  available | error ──▶ deleting ──▶ (gone) | error_deleting
//! ```

use std::collections::BTreeMap;

use ferro_common::time;
use serde_json::{json, Map, Value};

/// Microversions of the volume API this service speaks.
pub const MIN_VERSION: (u32, u32) = (3, 0);
pub const MAX_VERSION: (u32, u32) = (3, 71);

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub size: i64,
    pub status: String,
    pub error: Option<String>,
    pub volume_type_id: String,
    pub availability_zone: String,
    pub bootable: i64,
    pub multiattach: i64,
    pub snapshot_id: Option<String>,
    pub source_volid: Option<String>,
    pub image_id: Option<String>,
    pub image_metadata: Option<String>,
    pub metadata: String,
    pub host: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Snapshot {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub size: i64,
    pub status: String,
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: i64,
    pub extra_specs: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Attachment {
    pub id: String,
    pub volume_id: String,
    pub server_id: Option<String>,
    pub host: Option<String>,
    pub device: Option<String>,
    pub status: String,
    pub attach_mode: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub attached_at: Option<i64>,
}

/// Cinder's time format: microseconds, no zone.
pub fn cinder_time(micros: i64) -> String {
    let s = time::iso_micros(micros);
    s.trim_end_matches('Z').to_owned()
}

fn opt_time(t: Option<i64>) -> Value {
    t.map(|t| Value::String(cinder_time(t)))
        .unwrap_or(Value::Null)
}

pub fn json_map(s: &str) -> BTreeMap<String, String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// A microversion, compared as (major, minor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn at_least(self, minor: u32) -> bool {
        self >= Version(3, minor)
    }

    pub fn render(self) -> String {
        format!("{}.{}", self.0, self.1)
    }
}

/// What a caller may see of a volume's backend-side attributes.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub version: Version,
    pub admin: bool,
}

impl Volume {
    pub fn links(&self, base: &str) -> Value {
        json!([
            {"rel": "self", "href": format!("{base}/v3/{}/volumes/{}", self.project_id, self.id)},
            {"rel": "bookmark", "href": format!("{base}/{}/volumes/{}", self.project_id, self.id)},
        ])
    }

    /// A volume as Cinder answers a create or an update: the core view, without
    /// what its show/detail extensions add (tenant, host, migration, image
    /// metadata).
    pub fn render_written(
        &self,
        base: &str,
        type_name: &str,
        attachments: &[Attachment],
        view: View,
    ) -> Value {
        let mut v = self.render(base, type_name, attachments, view);
        if let Value::Object(m) = &mut v {
            m.retain(|k, _| !k.starts_with("os-vol-") && k != "volume_image_metadata");
        }
        v
    }

    pub fn summary(&self, base: &str) -> Value {
        json!({"id": self.id, "name": self.name, "links": self.links(base)})
    }

    pub fn render(
        &self,
        base: &str,
        type_name: &str,
        attachments: &[Attachment],
        view: View,
    ) -> Value {
        let atts: Vec<Value> = attachments
            .iter()
            .filter(|a| a.status == "attached" && a.server_id.is_some())
            .map(|a| {
                json!({
                    "id": self.id,
                    "attachment_id": a.id,
                    "volume_id": self.id,
                    "server_id": a.server_id,
                    "host_name": a.host,
                    "device": a.device,
                    "attached_at": opt_time(a.attached_at),
                })
            })
            .collect();
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        put("id", json!(self.id));
        put("name", json!(self.name));
        put("description", json!(self.description));
        put("status", json!(self.status));
        put("size", json!(self.size));
        put("availability_zone", json!(self.availability_zone));
        put("created_at", json!(cinder_time(self.created_at)));
        put("updated_at", opt_time(self.updated_at));
        put("volume_type", json!(type_name));
        put("snapshot_id", json!(self.snapshot_id));
        put("source_volid", json!(self.source_volid));
        put("metadata", json!(json_map(&self.metadata)));
        put(
            "bootable",
            json!(if self.bootable != 0 { "true" } else { "false" }),
        );
        put("encrypted", json!(false));
        put("multiattach", json!(self.multiattach != 0));
        put("attachments", Value::Array(atts));
        put("user_id", json!(self.user_id));
        put("links", self.links(base));
        put("replication_status", Value::Null);
        put("consistencygroup_id", Value::Null);
        if view.admin {
            // Cinder's VolumeTenantAttribute: an admin-only field by default
            put("os-vol-tenant-attr:tenant_id", json!(self.project_id));
        }
        if let Some(meta) = &self.image_metadata {
            put("volume_image_metadata", json!(json_map(meta)));
        }
        if view.admin {
            put("os-vol-host-attr:host", json!(self.host));
            put("os-vol-mig-status-attr:migstat", Value::Null);
            put("os-vol-mig-status-attr:name_id", Value::Null);
        }
        let v = view.version;
        if v.at_least(13) {
            put("group_id", Value::Null);
        }
        if v.at_least(21) && view.admin {
            put("provider_id", Value::Null);
        }
        if v.at_least(48) {
            put("service_uuid", json!(service_uuid(&self.host)));
            put("shared_targets", json!(false));
        }
        if v.at_least(61) && view.admin {
            put("cluster_name", Value::Null);
        }
        if v.at_least(63) {
            put("volume_type_id", json!(self.volume_type_id));
        }
        if v.at_least(65) {
            put("consumes_quota", json!(true));
        }
        Value::Object(m)
    }
}

/// A stable id of the volume service of `host` (Cinder's service uuid).
pub fn service_uuid(host: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, b) in host.bytes().enumerate() {
        bytes[i % 16] = bytes[i % 16].wrapping_mul(31).wrapping_add(b);
    }
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Snapshot {
    pub fn render(&self, view: View) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "volume_id": self.volume_id,
            "status": self.status,
            "size": self.size,
            "created_at": cinder_time(self.created_at),
            "updated_at": opt_time(self.updated_at),
            "metadata": json_map(&self.metadata),
            "os-extended-snapshot-attributes:progress": if self.status == "available" { "100%" } else { "0%" },
            "os-extended-snapshot-attributes:project_id": self.project_id,
        });
        let ver = view.version;
        if ver.at_least(14) {
            v["group_snapshot_id"] = Value::Null;
        }
        if ver.at_least(41) {
            v["user_id"] = json!(self.user_id);
        }
        if ver.at_least(65) {
            v["consumes_quota"] = json!(true);
        }
        v
    }
}

impl VolumeType {
    pub fn render(&self, view: View) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "is_public": self.is_public != 0,
            "os-volume-type-access:is_public": self.is_public != 0,
        });
        if view.admin {
            // (Cinder's access_types_qos_specs_id: admins only)
            v["qos_specs_id"] = Value::Null;
        }
        // Cinder shows extra specs to admins only by default... except the
        // few that users may read (multiattach, RESKEY:availability_zones).
        let specs = json_map(&self.extra_specs);
        let shown: BTreeMap<String, String> = if view.admin {
            specs
        } else {
            specs
                .into_iter()
                .filter(|(k, _)| k == "multiattach" || k.starts_with("RESKEY:"))
                .collect()
        };
        v["extra_specs"] = json!(shown);
        v
    }
}

impl Attachment {
    pub fn render(&self, project_id: &str) -> Value {
        json!({
            "id": self.id,
            "volume_id": self.volume_id,
            "instance": self.server_id,
            "status": self.status,
            "attach_mode": self.attach_mode,
            "attached_at": opt_time(self.attached_at),
            "detached_at": null,
            "connection_info": {},
            "project_id": project_id,
        })
    }
}
