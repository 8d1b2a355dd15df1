//! `/extensions`: Nova's v2.1 extension list. Since v2.1 the API is one
//! piece whose changes are microversions; Nova still answers this list,
//! the same on every cloud, for clients written against v2.0. So does
//! this, less the pieces Nova itself has since removed. It is a name list,
//! not a statement of what this cloud implements (docs/status.md is).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{reply, Ctx};
use crate::error::{ComputeError, Result};

/// (alias, name, what it covers)
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "os-access-ips",
        "AccessIPs",
        "Access IPv4 and IPv6 addresses of a server.",
    ),
    (
        "os-admin-actions",
        "AdminActions",
        "Administrative server actions: reset state, reset network, inject network info.",
    ),
    (
        "os-admin-password",
        "AdminPassword",
        "A server's administrator password set anew.",
    ),
    ("os-aggregates", "Aggregates", "Host aggregates."),
    (
        "os-assisted-volume-snapshots",
        "AssistedVolumeSnapshots",
        "Volume snapshots assisted by the hypervisor.",
    ),
    (
        "os-attach-interfaces",
        "AttachInterfaces",
        "Network interfaces attached to and detached from a server.",
    ),
    (
        "os-availability-zone",
        "AvailabilityZone",
        "Availability zones.",
    ),
    (
        "os-block-device-mapping",
        "BlockDeviceMapping",
        "Servers booted with block device mappings.",
    ),
    ("os-config-drive", "ConfigDrive", "Config drives."),
    (
        "os-console-auth-tokens",
        "ConsoleAuthTokens",
        "Console connection details by token.",
    ),
    (
        "os-console-output",
        "ConsoleOutput",
        "A server's console log.",
    ),
    ("os-consoles", "Consoles", "Interactive consoles."),
    (
        "os-create-backup",
        "CreateBackup",
        "Backups of a server as images, rotated.",
    ),
    (
        "os-deferred-delete",
        "DeferredDelete",
        "Soft-deleted servers restored or deleted at once.",
    ),
    (
        "os-evacuate",
        "Evacuate",
        "Servers rebuilt elsewhere when their host is down.",
    ),
    (
        "os-extended-availability-zone",
        "ExtendedAvailabilityZone",
        "The availability zone of a server.",
    ),
    (
        "os-extended-server-attributes",
        "ExtendedServerAttributes",
        "A server's host, hypervisor name and instance name.",
    ),
    (
        "os-extended-status",
        "ExtendedStatus",
        "A server's vm, task and power states.",
    ),
    (
        "os-extended-volumes",
        "ExtendedVolumes",
        "The volumes attached to a server.",
    ),
    (
        "os-flavor-access",
        "FlavorAccess",
        "Private flavors and who may use them.",
    ),
    (
        "os-flavor-extra-specs",
        "FlavorExtraSpecs",
        "Flavor extra specs.",
    ),
    (
        "os-flavor-manage",
        "FlavorManage",
        "Flavors created and deleted.",
    ),
    ("os-flavor-rxtx", "FlavorRxtx", "A flavor's rxtx factor."),
    (
        "os-floating-ip-pools",
        "FloatingIpPools",
        "Floating IP pools.",
    ),
    ("os-floating-ips", "FloatingIps", "Floating IPs."),
    (
        "os-hide-server-addresses",
        "HideServerAddresses",
        "Server addresses hidden in some states.",
    ),
    ("os-hosts", "Hosts", "Compute hosts and their resources."),
    (
        "os-hypervisors",
        "Hypervisors",
        "Hypervisors and their use.",
    ),
    (
        "os-instance-actions",
        "InstanceActions",
        "What was done to a server, and by whom.",
    ),
    (
        "os-instance-usage-audit-log",
        "OSInstanceUsageAuditLog",
        "The usage audit log of instances.",
    ),
    ("os-keypairs", "Keypairs", "Key pairs."),
    (
        "os-lock-server",
        "LockServer",
        "Servers locked and unlocked.",
    ),
    (
        "os-migrate-server",
        "MigrateServer",
        "Servers migrated, cold or live.",
    ),
    (
        "os-migrations",
        "Migrations",
        "Migrations in progress and done.",
    ),
    (
        "os-multiple-create",
        "MultipleCreate",
        "Several servers made in one request.",
    ),
    (
        "os-networks",
        "Networks",
        "Networks (a proxy to the network service).",
    ),
    (
        "os-pause-server",
        "PauseServer",
        "Servers paused and unpaused.",
    ),
    ("os-quota-class-sets", "ClassQuotas", "Quota classes."),
    ("os-quota-sets", "Quotas", "Quotas."),
    (
        "os-remote-consoles",
        "RemoteConsoles",
        "Remote console connections.",
    ),
    ("os-rescue", "Rescue", "Servers rescued and unrescued."),
    (
        "os-scheduler-hints",
        "SchedulerHints",
        "Scheduler hints on server create.",
    ),
    (
        "os-security-groups",
        "SecurityGroups",
        "Security groups (a proxy to the network service).",
    ),
    (
        "os-server-diagnostics",
        "ServerDiagnostics",
        "A server's diagnostics.",
    ),
    (
        "os-server-external-events",
        "ServerExternalEvents",
        "Events from other services about a server.",
    ),
    (
        "os-server-group-quotas",
        "ServerGroupQuotas",
        "Quotas of server groups.",
    ),
    (
        "os-server-groups",
        "ServerGroups",
        "Server groups and their policies.",
    ),
    (
        "os-server-password",
        "ServerPassword",
        "A server's encrypted password.",
    ),
    (
        "os-server-usage",
        "ServerUsage",
        "When a server was launched and terminated.",
    ),
    ("os-services", "Services", "Compute services."),
    ("os-shelve", "Shelve", "Servers shelved and unshelved."),
    (
        "os-simple-tenant-usage",
        "SimpleTenantUsage",
        "Usage by project.",
    ),
    (
        "os-suspend-server",
        "SuspendServer",
        "Servers suspended and resumed.",
    ),
    (
        "os-tenant-networks",
        "OSTenantNetworks",
        "A project's networks.",
    ),
    ("os-used-limits", "UsedLimits", "Limits with what is used."),
    ("os-user-data", "UserData", "User data on server create."),
    (
        "os-virtual-interfaces",
        "VirtualInterfaces",
        "A server's virtual interfaces.",
    ),
    (
        "os-volumes",
        "Volumes",
        "Volumes and snapshots (a proxy to the block storage service).",
    ),
    (
        "os-volume-attachments",
        "VolumeAttachments",
        "Volumes attached to a server.",
    ),
    ("flavors", "Flavors", "Flavors."),
    ("ips", "Ips", "A server's addresses."),
    ("server-metadata", "ServerMetadata", "A server's metadata."),
    ("servers", "Servers", "Servers."),
    ("versions", "Versions", "API versions."),
    ("images", "Images", "Images (a proxy to the image service)."),
    (
        "image-metadata",
        "ImageMetadata",
        "An image's metadata (a proxy to the image service).",
    ),
];

fn render(alias: &str, name: &str, description: &str) -> Value {
    json!({
        "alias": alias, "name": name, "description": description, "links": [],
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "updated": "2014-12-03T00:00:00Z",
    })
}

pub async fn list(c: Ctx) -> Result<Response> {
    let items: Vec<Value> = EXTENSIONS.iter().map(|(a, n, d)| render(a, n, d)).collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"extensions": items}),
    ))
}

pub async fn show(c: Ctx, Path(alias): Path<String>) -> Result<Response> {
    let (a, n, d) = EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .ok_or_else(|| ComputeError::NotFound("The resource could not be found.".into()))?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"extension": render(a, n, d)}),
    ))
}
