//! A server as Nova renders it, as a typed body serialized straight to
//! JSON: a page of 1,000 servers is written without building a
//! `serde_json::Value` tree per server (docs/benchmarks.md).
//!
//! Fields that a microversion or the caller's role hides are `None` and
//! skipped; fields Nova always sends, even as `null`, are plain `Option`s.
//! A gated field that may be `null` is an `Option<Option<_>>`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha224};

use crate::microversion::Version;
use crate::model::{FlavorSnapshot, Server};

/// Everything `server show` and `server list --long` print.
pub struct ServerView<'a> {
    pub server: &'a Server,
    pub version: Version,
    pub admin: bool,
    pub base: &'a str,
    /// `UP`/`DOWN` of the server's host, for admins from 2.16.
    pub host_status: Option<&'a str>,
    /// The server's ports as the network service sees them.
    pub net: Option<&'a ferro_network::service::DeviceNet>,
    /// The server's groups: shown by `show`, `update` and `rebuild` from
    /// 2.71 (not by lists, as in Nova).
    pub server_groups: Option<&'a [String]>,
    /// The server's volumes: (volume id, delete_on_termination).
    pub volumes: &'a [(String, bool)],
}

#[derive(Serialize)]
pub struct Link {
    rel: &'static str,
    href: String,
}

/// `self` and `bookmark` links of a path under the compute API.
pub fn links(base: &str, path: &str) -> [Link; 2] {
    let bookmark = base.trim_end_matches("/v2.1");
    [
        Link {
            rel: "self",
            href: format!("{base}/{path}"),
        },
        Link {
            rel: "bookmark",
            href: format!("{bookmark}/{path}"),
        },
    ]
}

/// One of `os-extended-volumes:volumes_attached` (with
/// `delete_on_termination` from 2.3).
#[derive(Serialize)]
pub struct VolumeAttached<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delete_on_termination: Option<bool>,
}

#[derive(Serialize)]
pub struct ImageRef<'a> {
    id: &'a str,
    links: [Link; 1],
}

/// A server's image: a reference, or `""` for one booted from a volume.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ImageField<'a> {
    Ref(ImageRef<'a>),
    None(&'static str),
}

/// The flavor: embedded from 2.47, a reference before.
#[derive(Serialize)]
#[serde(untagged)]
pub enum FlavorBody {
    Embedded {
        vcpus: i64,
        ram: i64,
        disk: i64,
        ephemeral: i64,
        swap: i64,
        original_name: String,
        extra_specs: Map<String, Value>,
    },
    Ref {
        id: String,
        links: [Link; 1],
    },
    Missing {},
}

#[derive(Serialize)]
pub struct Address<'a> {
    version: u8,
    addr: &'a str,
    #[serde(rename = "OS-EXT-IPS:type")]
    kind: &'static str,
    #[serde(rename = "OS-EXT-IPS-MAC:mac_addr")]
    mac: &'a str,
}

#[derive(Serialize)]
pub struct GroupName {
    name: String,
}

#[derive(Serialize)]
pub struct ServerBody<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    tenant_id: &'a str,
    user_id: &'a str,
    metadata: Map<String, Value>,
    #[serde(rename = "hostId")]
    host_id: String,
    image: ImageField<'a>,
    flavor: FlavorBody,
    created: String,
    updated: String,
    addresses: BTreeMap<&'a str, Vec<Address<'a>>>,
    #[serde(rename = "accessIPv4")]
    access_ipv4: &'a str,
    #[serde(rename = "accessIPv6")]
    access_ipv6: &'a str,
    links: [Link; 2],
    #[serde(rename = "OS-DCF:diskConfig")]
    disk_config: &'a str,
    #[serde(rename = "OS-EXT-AZ:availability_zone")]
    availability_zone: &'a str,
    config_drive: &'static str,
    key_name: Option<&'a str>,
    #[serde(rename = "OS-SRV-USG:launched_at")]
    launched_at: Option<String>,
    #[serde(rename = "OS-SRV-USG:terminated_at")]
    terminated_at: Option<String>,
    #[serde(rename = "OS-EXT-STS:task_state")]
    task_state: Option<&'a str>,
    #[serde(rename = "OS-EXT-STS:vm_state")]
    vm_state: &'a str,
    #[serde(rename = "OS-EXT-STS:power_state")]
    power_state: i64,
    #[serde(rename = "os-extended-volumes:volumes_attached")]
    volumes_attached: Vec<VolumeAttached<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    security_groups: Option<Vec<GroupName>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<Value>,
    #[serde(flatten)]
    admin: Option<AdminFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_image_certificates: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_groups: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_reason: Option<Option<&'a str>>,
}

/// What only admins see (`OS-EXT-SRV-ATTR:*`, `host_status`).
#[derive(Serialize)]
pub struct AdminFields<'a> {
    #[serde(rename = "OS-EXT-SRV-ATTR:host")]
    host: Option<&'a str>,
    #[serde(rename = "OS-EXT-SRV-ATTR:hypervisor_hostname")]
    hypervisor_hostname: Option<&'a str>,
    #[serde(rename = "OS-EXT-SRV-ATTR:instance_name")]
    instance_name: String,
    #[serde(flatten)]
    extended: Option<AdminExtended<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_status: Option<&'a str>,
}

/// Admin fields from 2.3.
#[derive(Serialize)]
pub struct AdminExtended<'a> {
    #[serde(rename = "OS-EXT-SRV-ATTR:reservation_id")]
    reservation_id: &'a str,
    #[serde(rename = "OS-EXT-SRV-ATTR:launch_index")]
    launch_index: i64,
    #[serde(rename = "OS-EXT-SRV-ATTR:hostname")]
    hostname: &'a str,
    #[serde(rename = "OS-EXT-SRV-ATTR:kernel_id")]
    kernel_id: &'static str,
    #[serde(rename = "OS-EXT-SRV-ATTR:ramdisk_id")]
    ramdisk_id: &'static str,
    #[serde(rename = "OS-EXT-SRV-ATTR:root_device_name")]
    root_device_name: &'static str,
    #[serde(rename = "OS-EXT-SRV-ATTR:user_data")]
    user_data: Option<&'a str>,
}

/// Nova's launched_at format.
fn usg(micros: i64) -> String {
    ferro_common::time::iso_micros(micros)
        .trim_end_matches('Z')
        .to_owned()
}

fn flavor_body(f: Option<FlavorSnapshot>, embedded: bool, base: &str) -> FlavorBody {
    match (f, embedded) {
        (Some(f), true) => FlavorBody::Embedded {
            vcpus: f.vcpus,
            ram: f.ram,
            disk: f.disk,
            ephemeral: f.ephemeral,
            swap: f.swap,
            original_name: f.original_name,
            extra_specs: f.extra_specs,
        },
        (Some(f), false) => FlavorBody::Ref {
            links: [Link {
                rel: "bookmark",
                href: format!("{}/flavors/{}", base.trim_end_matches("/v2.1"), f.id),
            }],
            id: f.id,
        },
        (None, _) => FlavorBody::Missing {},
    }
}

/// The body of one server in the view's microversion.
pub fn server_body<'a>(view: &ServerView<'a>) -> ServerBody<'a> {
    let s: &'a Server = view.server;
    let v = view.version;
    let ts = ferro_common::time::iso_seconds;
    let status = s.status();
    let host_id = match &s.host {
        Some(h) => hex::encode(Sha224::digest(format!("{}{}", s.project_id, h).as_bytes())),
        None => String::new(),
    };
    let mut addresses: BTreeMap<&'a str, Vec<Address<'a>>> = BTreeMap::new();
    for a in view.net.map(|n| n.addresses.as_slice()).unwrap_or(&[]) {
        addresses
            .entry(a.network_name.as_str())
            .or_default()
            .push(Address {
                version: 4,
                addr: &a.addr,
                kind: a.kind,
                mac: &a.mac,
            });
    }
    // A server with ports shows its ports' groups; one without, the names it was created with.
    let groups: Vec<String> = match view.net {
        Some(n) => n.security_groups.clone(),
        None => serde_json::from_str(&s.security_groups).unwrap_or_default(),
    };
    let fault = s
        .fault
        .as_deref()
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        .map(|mut fault| {
            if !view.admin {
                if let Value::Object(m) = &mut fault {
                    m.remove("details");
                }
            }
            fault
        });
    let admin = view.admin.then(|| AdminFields {
        host: s.host.as_deref(),
        hypervisor_hostname: s.host.as_deref(),
        instance_name: s.instance_name(),
        extended: v.at_least(3).then_some(AdminExtended {
            reservation_id: &s.reservation_id,
            launch_index: s.launch_index,
            hostname: &s.hostname,
            kernel_id: "",
            ramdisk_id: "",
            root_device_name: "/dev/vda",
            user_data: s.user_data.as_deref(),
        }),
        host_status: v.at_least(16).then_some(view.host_status.unwrap_or("")),
    });
    ServerBody {
        id: &s.id,
        name: &s.name,
        status,
        tenant_id: &s.project_id,
        user_id: &s.user_id,
        metadata: s.meta(),
        host_id,
        image: if s.image_id.is_empty() {
            ImageField::None("")
        } else {
            ImageField::Ref(ImageRef {
                id: &s.image_id,
                links: [Link {
                    rel: "bookmark",
                    href: format!(
                        "{}/images/{}",
                        view.base.trim_end_matches("/v2.1"),
                        s.image_id
                    ),
                }],
            })
        },
        flavor: flavor_body(s.flavor(), v.at_least(47), view.base),
        created: ts(s.created_at),
        updated: ts(s.updated_at),
        addresses,
        access_ipv4: &s.access_ipv4,
        access_ipv6: &s.access_ipv6,
        links: links(view.base, &format!("servers/{}", s.id)),
        disk_config: &s.disk_config,
        availability_zone: s.availability_zone.as_deref().unwrap_or("nova"),
        config_drive: if s.config_drive != 0 { "True" } else { "" },
        key_name: s.key_name.as_deref(),
        launched_at: s.launched_at.map(usg),
        terminated_at: s.terminated_at.map(usg),
        task_state: s.task_state.as_deref(),
        vm_state: &s.vm_state,
        power_state: s.power_state,
        volumes_attached: view
            .volumes
            .iter()
            .map(|(id, dot)| VolumeAttached {
                id,
                delete_on_termination: v.at_least(3).then_some(*dot),
            })
            .collect(),
        progress: match status {
            "ACTIVE" => Some(100),
            "BUILD" => Some(0),
            _ => None,
        },
        security_groups: (!groups.is_empty())
            .then(|| groups.into_iter().map(|name| GroupName { name }).collect()),
        fault,
        admin,
        locked: v.at_least(9).then_some(s.locked != 0),
        description: v.at_least(19).then_some(s.description.as_deref()),
        tags: v.at_least(26).then(|| s.tag_list()),
        trusted_image_certificates: v.at_least(63).then_some(()),
        server_groups: view.server_groups.filter(|_| v.at_least(71)),
        locked_reason: v.at_least(73).then_some(s.locked_reason.as_deref()),
    }
}
