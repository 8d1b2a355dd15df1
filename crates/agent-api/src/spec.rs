//! The contract between the control plane and an agent: desired instance
//! state in, observed state out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The power state the control plane wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    Running,
    Stopped,
    Paused,
    Suspended,
}

impl Power {
    pub fn parse(s: &str) -> Power {
        match s {
            "stopped" => Power::Stopped,
            "paused" => Power::Paused,
            "suspended" => Power::Suspended,
            _ => Power::Running,
        }
    }
}

/// One instance as the control plane wants it on this host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub id: String,
    /// `instance-0000000a`, the hypervisor-level name.
    pub name: String,
    pub display_name: String,
    pub hostname: String,
    pub project_id: String,
    pub image_id: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub key_name: Option<String>,
    pub public_key: Option<String>,
    /// Base64, as the API received it.
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: String,
    pub launch_index: i64,
    pub reservation_id: String,
    pub power: Power,
    pub reboot_seq: i64,
    pub reboot_hard: bool,
    pub rebuild_seq: i64,
    /// Bumped when the flavor changes (resize, revert): restart with it.
    pub resize_seq: i64,
    /// The instance is being deleted: remove everything it owns.
    pub deleted: bool,
    /// It moved here from another host: its root disk is the copy the
    /// control plane holds ([`ControlPlane::migration_disk`]), not a new
    /// one from the image.
    #[serde(default)]
    pub migrated: bool,
    /// Whether it gets a config drive (else the metadata service alone
    /// tells it who it is).
    #[serde(default = "yes")]
    pub config_drive: bool,
    /// Its network interfaces, in order.
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// The volumes it should have plugged in, in attach order.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
}

/// A volume an instance should have: a disk file the host opens (on the
/// volume service's host, for now), shown to the guest as a virtio disk
/// whose serial is the volume id (as Nova's libvirt driver does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub volume_id: String,
    /// `/dev/vdb`, as the API reported it (the guest may name it otherwise);
    /// `/dev/vda` is the volume the instance boots from.
    pub device: String,
    pub path: String,
    pub format: String,
    /// Its size in GiB: a plugged volume smaller than this is grown (an
    /// attached volume extended); 0 when not known.
    #[serde(default)]
    pub size_gb: i64,
}

impl VolumeSpec {
    /// The instance boots from it (it has no root disk of its own).
    pub fn is_root(&self) -> bool {
        self.device == ROOT_DEVICE
    }
}

/// The device name of a boot volume.
pub const ROOT_DEVICE: &str = "/dev/vda";

impl InstanceSpec {
    /// The volume it boots from, if it boots from one.
    pub fn root_volume(&self) -> Option<&VolumeSpec> {
        self.volumes.iter().find(|v| v.is_root())
    }
}

/// One network interface of an instance: a port of the network service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicSpec {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub mtu: i64,
}

/// An instance as the metadata service describes it to itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetadataTarget {
    pub spec: InstanceSpec,
    pub fixed_ip: String,
    pub floating_ip: Option<String>,
    pub flavor_name: String,
    pub security_groups: Vec<String>,
    /// The password the instance posted (`openstack/<version>/password`).
    #[serde(default)]
    pub password: String,
}

/// What became of a password an instance posted to the metadata service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordPost {
    Stored,
    /// The server has one already: a guest sets it once (Nova's 409).
    AlreadySet,
    /// No instance holds that address on that network.
    Unknown,
}

/// Everything a host should run, at a generation.
///
/// The generation only grows with the controller database's history: an
/// agent that applied generation N refuses anything older (the controller
/// runs on an older copy of the database) and keeps its instances.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DesiredState {
    pub generation: i64,
    pub instances: Vec<InstanceSpec>,
    #[serde(default)]
    pub network: crate::netspec::HostNetwork,
    /// Instances that moved to another host and may come back (a resize
    /// not yet confirmed): kept here, stopped, with their disks.
    #[serde(default)]
    pub retained: Vec<String>,
    /// Instances being live-migrated to or from this host: the migration
    /// drives them, the reconciler neither converges nor removes them.
    #[serde(default)]
    pub hands_off: Vec<String>,
    /// Set when the controller found this host ahead of its database: the
    /// agent applies nothing until an operator resyncs the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_sync: Option<String>,
}

/// What the agent sees of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    Running,
    Paused,
    Suspended,
    Shutdown,
    /// No trace of it on the host.
    Absent,
    /// The last operation failed; the message says why.
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    /// The desired-state generation this report answers.
    #[serde(default)]
    pub generation: i64,
    pub observed: Observed,
    pub applied_reboot_seq: i64,
    pub applied_rebuild_seq: i64,
    pub applied_resize_seq: i64,
    /// The volumes plugged in now (ids); for an instance that is shut
    /// down, those it will start with.
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// What a host offers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostInfo {
    pub name: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub host_ip: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// Where the host's agent serves its controllers (console logs,
    /// wake-ups), for a host joined over the network; none in process.
    #[serde(default)]
    pub agent_url: Option<String>,
    /// The host runs routers, DHCP and metadata for the cloud.
    #[serde(default)]
    pub network_node: bool,
    /// Where the host's VXLAN tunnels start and end (its underlay
    /// address); none: `host_ip`.
    #[serde(default)]
    pub tunnel_ip: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// The control plane as an agent sees it: in process for `ferrostack up`'s
/// own host, over mutual TLS for a joined host.
#[async_trait::async_trait]
pub trait ControlPlane: Send + Sync + 'static {
    async fn register(&self, host: &HostInfo) -> Result<(), LinkError>;
    async fn heartbeat(&self, host: &str) -> Result<(), LinkError>;
    /// The host's desired state; `applied` is the generation the host
    /// applied last (0 before its first).
    async fn desired(&self, host: &str, applied: i64) -> Result<DesiredState, LinkError>;
    async fn report(&self, host: &str, reports: Vec<Report>) -> Result<(), LinkError>;
    /// What the host's load balancers run and how their members are.
    async fn report_balancers(
        &self,
        host: &str,
        reports: Vec<crate::balancer::BalancerReport>,
    ) -> Result<(), LinkError>;
    /// A local file holding the image's data.
    async fn image_file(&self, image_id: &str) -> Result<(PathBuf, String), LinkError>;
    /// A local file holding the root disk (qcow2) of an instance that moved
    /// to this host.
    async fn migration_disk(&self, server_id: &str) -> Result<PathBuf, LinkError>;
    /// The host is done with a file [`ControlPlane::migration_disk`] gave:
    /// a fetched copy is removed (the controller's own is left alone).
    async fn done_with(&self, _file: &std::path::Path) {}
    /// The instance holding `ip` on `network_id`, for the metadata service.
    async fn instance_at(
        &self,
        network_id: &str,
        ip: &str,
    ) -> Result<Option<MetadataTarget>, LinkError>;
    /// The instance holding `ip` on `network_id` posts its (encrypted)
    /// password, as cloud-init's and cloudbase-init's password modules do.
    async fn post_password(
        &self,
        network_id: &str,
        ip: &str,
        password: &str,
    ) -> Result<PasswordPost, LinkError> {
        let _ = (network_id, ip, password);
        Err(LinkError(
            "posting a password is not offered by this link".into(),
        ))
    }
}

/// Where a host waits for a live migration: the NBD server its new disk is
/// exported on (for the source's mirror) and the port its QEMU listens on
/// for the migration stream, both on `ip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    pub ip: String,
    pub nbd_port: u16,
    pub migration_port: u16,
}

/// How a live migration went, as QEMU reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStats {
    /// From the start of the disk mirror to the end of the migration.
    pub total_ms: i64,
    /// QEMU's own measure of the time the guest was stopped.
    pub downtime_ms: i64,
    /// Memory transferred.
    pub ram_bytes: i64,
}

/// What the control plane asks of an agent directly.
#[async_trait::async_trait]
pub trait HostAgent: Send + Sync + 'static {
    async fn console_log(&self, id: &str, lines: Option<usize>) -> Result<String, LinkError>;
    /// The instances the host's hypervisor has (running or not), by id:
    /// what a leak check compares with the control plane's servers.
    async fn instances(&self) -> Result<Vec<String>, LinkError>;
    /// The desired state changed: reconcile now rather than at the next tick.
    fn wake(&self);
    /// Writes a consistent qcow2 copy of the instance's root disk to `to`,
    /// a path on the caller's host (a joined host's agent streams it).
    async fn snapshot(&self, id: &str, to: &std::path::Path) -> Result<(), LinkError>;
    /// Live migration, destination side: starts the instance paused,
    /// waiting for its memory (QEMU `-incoming`), with a new disk on the
    /// same image exported over NBD on `listen_ip` for the source's mirror.
    async fn prepare_incoming(
        &self,
        spec: &InstanceSpec,
        listen_ip: &str,
    ) -> Result<Incoming, LinkError>;
    /// Live migration, source side: mirrors the disk to `to`'s NBD export,
    /// then migrates the running guest; returns once the destination has it
    /// (the source's copy stopped).
    async fn migrate_out(&self, id: &str, to: &Incoming) -> Result<LiveStats, LinkError>;
    /// Live migration, destination side, after the source finished: the
    /// export ends and the guest runs here.
    async fn finish_incoming(&self, id: &str) -> Result<(), LinkError>;
    /// A live migration was given up: the source's guest runs on (the
    /// mirror and migration cancelled), or the destination's copy goes.
    async fn cancel_migration(&self, id: &str) -> Result<(), LinkError>;
}

fn yes() -> bool {
    true
}
