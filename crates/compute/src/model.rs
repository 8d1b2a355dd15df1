//! Compute records as stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub ram: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    pub is_public: i64,
    pub disabled: i64,
    pub description: Option<String>,
    pub extra_specs: String,
}

impl Flavor {
    pub fn specs(&self) -> Map<String, Value> {
        serde_json::from_str(&self.extra_specs).unwrap_or_default()
    }

    /// What a server keeps of its flavor (Nova embeds it from 2.47).
    pub fn snapshot(&self) -> FlavorSnapshot {
        FlavorSnapshot {
            id: self.id.clone(),
            original_name: self.name.clone(),
            vcpus: self.vcpus,
            ram: self.ram,
            disk: self.disk,
            ephemeral: self.ephemeral,
            swap: self.swap,
            extra_specs: self.specs(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlavorSnapshot {
    pub id: String,
    pub original_name: String,
    pub vcpus: i64,
    pub ram: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    pub extra_specs: Map<String, Value>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Keypair {
    pub user_id: String,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Server {
    pub id: String,
    pub seq: i64,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub image_id: String,
    pub flavor: String,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    pub config_drive: i64,
    pub metadata: String,
    pub availability_zone: Option<String>,
    pub host: Option<String>,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub desired_power: String,
    pub reboot_seq: i64,
    pub reboot_hard: i64,
    pub rebuild_seq: i64,
    pub applied_seq: String,
    pub networks: String,
    pub security_groups: String,
    pub description: Option<String>,
    pub locked: i64,
    pub locked_reason: Option<String>,
    pub tags: String,
    pub hostname: String,
    pub reservation_id: String,
    pub launch_index: i64,
    pub tried_hosts: String,
    pub fault: Option<String>,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub deleted: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub old_flavor: Option<String>,
    pub resize_seq: i64,
    /// `owner` or `admin`: who may unlock it without the override.
    pub locked_by: Option<String>,
    pub access_ipv4: String,
    pub access_ipv6: String,
    /// `AUTO` or `MANUAL` (Nova's `OS-DCF:diskConfig`).
    pub disk_config: String,
    /// Bumped by every write to the row: what compare-and-set compares.
    pub state_generation: i64,
    /// Shelved: the image of its disk, which an unshelve boots from.
    pub shelved_image_id: Option<String>,
    /// Moving to another host: the host it goes to, while its disk is
    /// copied (it is stopped on its own host meanwhile).
    pub migration_dest: Option<String>,
    /// Moved, until confirmed or reverted: the host it came from, which
    /// keeps its stopped copy.
    pub migration_source: Option<String>,
}

/// Nova's power states.
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const SUSPENDED: i64 = 7;
}

impl Server {
    /// Being deleted: its saga stops the VM, removes its ports, then the row.
    /// (`deleted = 1` marks rows of releases before the delete saga.)
    pub fn deleting(&self) -> bool {
        self.deleted != 0 || self.task_state.as_deref() == Some("deleting")
    }

    pub fn flavor(&self) -> Option<FlavorSnapshot> {
        serde_json::from_str(&self.flavor).ok()
    }

    pub fn meta(&self) -> Map<String, Value> {
        serde_json::from_str(&self.metadata).unwrap_or_default()
    }

    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    /// The ports this server holds.
    pub fn nics(&self) -> Vec<crate::nics::Nic> {
        serde_json::from_str(&self.networks).unwrap_or_default()
    }

    pub fn tried(&self) -> Vec<String> {
        serde_json::from_str(&self.tried_hosts).unwrap_or_default()
    }

    pub fn instance_name(&self) -> String {
        format!("instance-{:08x}", self.seq)
    }

    /// The API status, from vm_state and task_state, as Nova maps them.
    pub fn status(&self) -> &'static str {
        let task = self.task_state.as_deref();
        match self.vm_state.as_str() {
            "building" => "BUILD",
            "active" | "stopped"
                if matches!(
                    task,
                    Some("resize_prep" | "resize_migrating" | "resize_finish")
                ) =>
            {
                "RESIZE"
            }
            "active" | "stopped" | "resized" if task == Some("resize_reverting") => "REVERT_RESIZE",
            "resized" => "VERIFY_RESIZE",
            "active" => match task {
                Some("rebooting") => "REBOOT",
                Some("rebooting_hard") => "HARD_REBOOT",
                Some("rebuilding") => "REBUILD",
                Some("migrating") => "MIGRATING",
                _ => "ACTIVE",
            },
            "stopped" => match task {
                Some("rebuilding") => "REBUILD",
                _ => "SHUTOFF",
            },
            "paused" => "PAUSED",
            "suspended" => "SUSPENDED",
            "shelved" => "SHELVED",
            "shelved_offloaded" => "SHELVED_OFFLOADED",
            "error" => "ERROR",
            "deleted" => "DELETED",
            _ => "UNKNOWN",
        }
    }
}
