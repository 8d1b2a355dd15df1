//! Servers: create (the boot saga starts here), list, show, update, delete,
//! actions, console output and instance actions.

use std::collections::HashMap;

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use ferro_common::{ids, time};
use ferro_store::sqlx;
use serde_json::{json, Map, Value};

use super::render;
use super::server_body::{server_body, ServerBody, ServerView};
use super::{check_name, empty, flavors, reply, require_admin, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::executor::Ended;
use crate::model::Server;
use crate::nics;
use crate::server_create::{NewServer, Plan, VolumeRequest};
use crate::server_resize::ResizePlan;
use crate::service::{host_is_up, stale_unless, ComputeService};
use crate::volumes::NewVolume;

const CREATE_KEYS: &[&str] = &[
    "name",
    "imageRef",
    "flavorRef",
    "key_name",
    "networks",
    "security_groups",
    "user_data",
    "config_drive",
    "metadata",
    "availability_zone",
    "min_count",
    "max_count",
    "block_device_mapping_v2",
    "description",
    "tags",
    "adminPass",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "return_reservation_id",
    "host",
    "hypervisor_hostname",
];

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::bad(m)
}

/// A DNS-safe hostname from a display name, as Nova makes it.
pub fn hostname_of(name: &str) -> String {
    let mut h: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    h = h.trim_matches('-').to_owned();
    h.truncate(63);
    if h.is_empty() {
        "server".into()
    } else {
        h
    }
}

fn id_from_ref(r: &str) -> &str {
    r.trim_end_matches('/').rsplit('/').next().unwrap_or(r)
}

/// `accessIPv4`/`accessIPv6`: absent, empty, or an address of that family.
fn access_ip(v: Option<&Value>, field: &str, v6: bool) -> Result<Option<String>> {
    let ok = |a: &str| {
        if v6 {
            a.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            a.parse::<std::net::Ipv4Addr>().is_ok()
        }
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(a)) if a.is_empty() => Ok(None),
        // (kept as the address's canonical text, as Nova's IP fields do)
        Some(Value::String(a)) if ok(a) => Ok(Some(
            a.parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|_| a.clone()),
        )),
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute {field}. Value: {other}. '{}' is not a '{}'",
            other.as_str().unwrap_or_default(),
            if v6 { "ipv6" } else { "ipv4" }
        ))),
    }
}

/// The key pair a request names (of the caller): its name and public key.
async fn key_pair(
    s: &ComputeService,
    c: &Ctx,
    v: Option<&Value>,
) -> Result<(Option<String>, Option<String>)> {
    match v {
        None | Some(Value::Null) => Ok((None, None)),
        Some(Value::String(k)) => {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT public_key FROM keypairs WHERE user_id = $1 AND name = $2")
                    .bind(&c.auth.user_id)
                    .bind(k)
                    .fetch_optional(s.pool())
                    .await?;
            let (data,) = row.ok_or_else(|| bad("Invalid key_name provided."))?;
            Ok((Some(k.clone()), Some(data)))
        }
        Some(_) => Err(bad("Invalid input for field/attribute key_name.")),
    }
}

/// The `user_data` of a request: base64 of at most 65535 bytes.
fn user_data_of(v: Option<&Value>) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(u)) => {
            if u.len() > 65535 {
                return Err(bad("User data too large. User data must be no larger than 65535 bytes once base64 encoded."));
            }
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .map_err(|_| bad("User data needs to be valid base 64."))?;
            Ok(Some(u.clone()))
        }
        Some(_) => Err(bad("Invalid input for field/attribute user_data.")),
    }
}

/// `OS-DCF:diskConfig` of a request: `AUTO`, `MANUAL`, or absent.
fn disk_config(v: Option<&Value>) -> Result<Option<&'static str>> {
    match v {
        None => Ok(None),
        Some(Value::String(d)) if d == "AUTO" => Ok(Some("AUTO")),
        Some(Value::String(d)) if d == "MANUAL" => Ok(Some("MANUAL")),
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute OS-DCF:diskConfig. Value: {other}. {other} is not one of ['AUTO', 'MANUAL']"
        ))),
    }
}

/// The `adminPass` of a request, if it gives one.
fn admin_pass(v: Option<&Value>) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(Value::String(p)) => Ok(Some(p.clone())),
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute adminPass. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

/// Records `OS-DCF:diskConfig` of an update, rebuild or resize.
async fn set_disk_config(s: &ComputeService, id: &str, d: Option<&str>) -> Result<()> {
    if let Some(d) = d {
        sqlx::query("UPDATE servers SET disk_config = $1 WHERE id = $2")
            .bind(d)
            .bind(id)
            .execute(s.pool())
            .await?;
    }
    Ok(())
}

/// The `group` scheduler hint of a create body, if any.
fn scheduler_group(body: &Value) -> Result<Option<String>> {
    let hints = body
        .get("os:scheduler_hints")
        .or_else(|| body.get("OS-SCH-HNT:scheduler_hints"));
    let Some(group) = hints.and_then(|h| h.get("group")) else {
        return Ok(None);
    };
    // Nova takes a list of one as well.
    let g = match group {
        Value::String(g) => Some(g.as_str()),
        Value::Array(a) if a.len() == 1 => a[0].as_str(),
        _ => None,
    };
    match g.filter(|g| uuid::Uuid::parse_str(g).is_ok()) {
        Some(g) => Ok(Some(g.to_owned())),
        None => Err(bad(format!(
            "Invalid input for field/attribute group. Value: {group}. It must be a server group UUID."
        ))),
    }
}

fn count(v: Option<&Value>, field: &str) -> Result<i64> {
    match v {
        None => Ok(1),
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| (1..=1000).contains(&n)) => {
            Ok(n.as_i64().unwrap_or(1))
        }
        Some(Value::String(s)) if s.parse::<i64>().is_ok_and(|n| (1..=1000).contains(&n)) => {
            Ok(s.parse().unwrap_or(1))
        }
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute {field}. Value: {other}."
        ))),
    }
}

pub(super) fn check_metadata(v: &Value, limit: i64) -> Result<Map<String, Value>> {
    let m = v
        .as_object()
        .ok_or_else(|| bad("Invalid input for field/attribute metadata: an object is required."))?;
    if limit >= 0 && m.len() as i64 > limit {
        return Err(ComputeError::Forbidden(format!(
            "Quota exceeded for metadata_items: too many metadata items ({} > {limit}).",
            m.len()
        )));
    }
    for (k, val) in m {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(bad(
                "Invalid input for field/attribute metadata: keys are 1 to 255 characters.",
            ));
        }
        if val.as_str().is_none_or(|s| s.chars().count() > 255) {
            return Err(bad(format!("Invalid input for field/attribute metadata. Value of {k} must be a string of at most 255 characters.")));
        }
    }
    Ok(m.clone())
}

/// What `check_image` needs of a flavor (a flavor row, or a server's
/// snapshot of one).
struct Size {
    ram: i64,
    disk: i64,
}

/// Checks the image against the flavor's size; returns the image id.
async fn check_image(s: &ComputeService, c: &Ctx, image_id: &str, flavor: Size) -> Result<String> {
    let img = s
        .images
        .visible(&c.auth, image_id)
        .await
        .map_err(|_| bad(format!("Image {image_id} could not be found.")))?;
    if img.status != "active" {
        return Err(bad(format!("Image {image_id} is not active.")));
    }
    if flavor.ram < img.min_ram {
        return Err(bad("Flavor's memory is too small for requested image."));
    }
    if flavor.disk > 0 {
        if flavor.disk < img.min_disk {
            return Err(bad("Flavor's disk is too small for requested image."));
        }
        let vsize = img.virtual_size.or(img.size).unwrap_or(0);
        if (flavor.disk << 30) < vsize {
            return Err(bad(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {} bytes, image is {vsize} bytes.",
                flavor.disk << 30
            )));
        }
    }
    Ok(img.id)
}

/// One entry of `block_device_mapping_v2`: the image booted onto the local
/// disk, or a volume.
enum BlockDevice {
    Image(String),
    Volume(VolumeRequest),
}

fn boot_index_zero(b: &Value) -> bool {
    b.get("boot_index")
        .map(|v| v.as_i64() == Some(0) || v.as_str() == Some("0"))
        .unwrap_or(false)
}

/// Reads one block device mapping as Nova does (the kinds this cloud has).
fn block_device(b: &Value) -> Result<BlockDevice> {
    let invalid = |why: &str| bad(format!("Block Device Mapping is Invalid: {why}"));
    let boot = boot_index_zero(b);
    let source = b["source_type"].as_str().unwrap_or("");
    let uuid = b["uuid"].as_str().map(str::to_owned);
    let dest =
        b["destination_type"]
            .as_str()
            .unwrap_or(if source == "image" || source == "blank" {
                "local"
            } else {
                "volume"
            });
    let size = match b.get("volume_size") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n) if n >= 1 => Some(n),
            _ => {
                return Err(bad(format!(
                    "Invalid input for field/attribute volume_size. Value: {v}."
                )))
            }
        },
    };
    let delete_on_termination = match b.get("delete_on_termination") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(v)) => *v,
        Some(Value::String(v)) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        Some(_) => {
            return Err(bad(
                "Invalid input for field/attribute delete_on_termination.",
            ))
        }
    };
    let need_uuid = || {
        uuid.clone()
            .ok_or_else(|| invalid("a uuid is required for this source."))
    };
    let volume = |existing: Option<String>, make: Option<NewVolume>| {
        BlockDevice::Volume(VolumeRequest {
            existing,
            make,
            size,
            boot,
            delete_on_termination,
        })
    };
    Ok(match (source, dest) {
        ("image", "local") if boot => BlockDevice::Image(need_uuid()?),
        ("image", "volume") => volume(None, Some(NewVolume::Image(need_uuid()?))),
        ("snapshot", "volume") => volume(None, Some(NewVolume::Snapshot(need_uuid()?))),
        ("volume", "volume") => volume(Some(need_uuid()?), None),
        ("blank", "volume") if size.is_some() => volume(None, Some(NewVolume::Blank)),
        ("blank", "volume") => return Err(invalid("a blank volume needs a volume_size.")),
        ("blank", "local") | ("image", "local") => {
            return Err(bad("Block Device Mapping is Invalid: ephemeral and swap disks are not supported by this cloud."))
        }
        (s, d) => return Err(invalid(&format!("source_type '{s}' with destination_type '{d}' is not supported."))),
    })
}

/// The volumes an image's block device mapping asks for (`bdm_v2`, as a
/// snapshot of a server booted from a volume has); none for other images.
async fn image_block_devices(
    s: &ComputeService,
    c: &Ctx,
    image: &str,
) -> Result<Vec<VolumeRequest>> {
    let Ok(img) = s.images.visible(&c.auth, image).await else {
        return Ok(Vec::new());
    };
    let props = img.props();
    let Some(mapping) = props.get("block_device_mapping") else {
        return Ok(Vec::new());
    };
    let entries: Vec<Value> = match mapping {
        Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for mut e in entries {
        if e.get("uuid").is_none_or(Value::is_null) {
            let id = ["snapshot_id", "volume_id", "image_id"]
                .iter()
                .find_map(|k| e.get(*k).and_then(Value::as_str).map(str::to_owned));
            e["uuid"] = id.map(Value::from).unwrap_or(Value::Null);
        }
        if let BlockDevice::Volume(v) = block_device(&e)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Checks a create's volumes before anything is written: the user's
/// volumes exist, are theirs to use and available (and are not asked for
/// by several servers at once); images to make volumes from are usable.
async fn check_block_devices(
    s: &ComputeService,
    c: &Ctx,
    disks: &[VolumeRequest],
    max_count: Option<&Value>,
) -> Result<()> {
    if disks.is_empty() {
        return Ok(());
    }
    let api = s.volume_api()?;
    for d in disks {
        if let Some(id) = &d.existing {
            if max_count.and_then(Value::as_i64).unwrap_or(1) > 1 {
                return Err(bad("Block Device Mapping is Invalid: a volume can't be attached to several servers made at once."));
            }
            let v = api.volume(&c.auth, id).await.map_err(|_| {
                bad(format!(
                    "Block Device Mapping is Invalid: failed to get volume {id}."
                ))
            })?;
            if v.status != "available" {
                return Err(bad(format!(
                    "Invalid volume: volume '{id}' status must be 'available'. Currently in '{}'",
                    v.status
                )));
            }
        }
        if let Some(NewVolume::Image(img)) = &d.make {
            let i = s
                .images
                .visible(&c.auth, img)
                .await
                .map_err(|_| bad(format!("Image {img} could not be found.")))?;
            if i.status != "active" {
                return Err(bad(format!("Image {img} is not active.")));
            }
        }
    }
    Ok(())
}

pub async fn create(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    let project = c
        .auth
        .project_id()
        .ok_or_else(|| {
            ComputeError::Forbidden(
                "Servers belong to projects: use a project-scoped token.".into(),
            )
        })?
        .to_owned();
    if !c.auth.is_admin() && !c.auth.has_role("member") {
        return Err(ComputeError::Denied(ferro_common::Denied {
            action: "os_compute_api:servers:create",
        }));
    }
    let srv = body
        .get("server")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad("Invalid input for field/attribute server. 'server' is a required property.")
        })?;
    for k in srv.keys() {
        let since_2_74 = k == "host" || k == "hypervisor_hostname";
        if !CREATE_KEYS.contains(&k.as_str()) || (since_2_74 && !c.version.at_least(74)) {
            return Err(bad(format!("Invalid input for field/attribute server. Additional properties are not allowed ('{k}' was unexpected)")));
        }
    }
    let name = srv.get("name").and_then(Value::as_str).ok_or_else(|| {
        bad("Invalid input for field/attribute name. 'name' is a required property.")
    })?;
    check_name("name", name)?;
    let flavor_ref = srv
        .get("flavorRef")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Invalid input for field/attribute flavorRef."))?;
    let flavor = flavors::find(&s, &c, id_from_ref(flavor_ref))
        .await
        .map_err(|_| bad(format!("Flavor {flavor_ref} could not be found.")))?;
    if flavor.disabled != 0 {
        return Err(bad(format!("Flavor {} is disabled.", flavor.id)));
    }
    // The image: imageRef, or a block device mapping that boots an image
    // locally; or a boot volume (block device mappings onto volumes).
    let mut image_ref = srv
        .get("imageRef")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut disks: Vec<VolumeRequest> = Vec::new();
    let mut local_boot = false;
    if let Some(bdms) = srv.get("block_device_mapping_v2") {
        let bdms = bdms
            .as_array()
            .ok_or_else(|| bad("Invalid input for field/attribute block_device_mapping_v2."))?;
        for b in bdms {
            match block_device(b)? {
                BlockDevice::Image(id) => {
                    local_boot = true;
                    image_ref = Some(id)
                }
                BlockDevice::Volume(v) => disks.push(v),
            }
        }
    }
    // An image made from a server booted from a volume carries its
    // mapping: the server boots from a new volume made from the snapshot.
    // As in Nova, the image's boot volume replaces the request's mapping
    // of the image onto the local disk (the CLI always sends one).
    if let (Some(r), false) = (&image_ref, disks.iter().any(|d| d.boot)) {
        let from_image = image_block_devices(&s, &c, id_from_ref(r)).await?;
        if from_image.iter().any(|d| d.boot) {
            local_boot = false;
        }
        disks.splice(0..0, from_image);
    }
    let boot_volumes = disks.iter().filter(|d| d.boot).count();
    if boot_volumes > 1 || (boot_volumes == 1 && local_boot) {
        return Err(bad("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."));
    }
    let size = Size {
        ram: flavor.ram,
        disk: flavor.disk,
    };
    let image_id = if boot_volumes == 1 {
        // Booted from a volume: the server has no image (Nova shows "").
        String::new()
    } else {
        let image_ref = image_ref.ok_or_else(|| {
            bad("Invalid input for field/attribute imageRef: an image is required.")
        })?;
        check_image(&s, &c, id_from_ref(&image_ref), size).await?
    };
    check_block_devices(&s, &c, &disks, srv.get("max_count")).await?;

    let nic_requests =
        nics::requests(&s, &c.auth, srv.get("networks"), c.version.at_least(37)).await?;
    let mut security_groups = Vec::new();
    if let Some(sg) = srv.get("security_groups") {
        for g in sg
            .as_array()
            .ok_or_else(|| bad("Invalid input for field/attribute security_groups."))?
        {
            let n = g["name"]
                .as_str()
                .filter(|n| !n.is_empty() && n.len() <= 255)
                .ok_or_else(|| bad("Invalid input for field/attribute security_groups."))?;
            security_groups.push(n.to_owned());
        }
    }
    let group_ids = nics::groups(&s, &project, &security_groups).await?;
    if nic_requests
        .iter()
        .filter(|r| matches!(r, nics::NicRequest::Port { .. }))
        .count()
        > 0
        && srv.get("max_count").and_then(Value::as_i64).unwrap_or(1) > 1
    {
        return Err(bad("Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports."));
    }
    let (key_name, key_data) = key_pair(&s, &c, srv.get("key_name")).await?;
    let user_data = user_data_of(srv.get("user_data"))?;
    let quotas = s.quotas(&project).await?;
    let metadata = match srv.get("metadata") {
        None => Map::new(),
        Some(v) => check_metadata(v, quotas.get("metadata_items").copied().unwrap_or(128))?,
    };
    // `zone:host` (any version) or `host` (2.74) puts the server on one
    // host, for admins only, as Nova's policies have it.
    let mut forced_host: Option<String> = None;
    let zone = match srv.get("availability_zone") {
        Some(Value::String(z)) if z.contains(':') => {
            let mut parts = z.splitn(3, ':');
            let zone = parts.next().unwrap_or_default();
            forced_host = parts.next().filter(|h| !h.is_empty()).map(str::to_owned);
            (!zone.is_empty()).then(|| Value::String(zone.to_owned()))
        }
        other => other.cloned(),
    };
    for key in ["host", "hypervisor_hostname"] {
        match srv.get(key) {
            None => {}
            Some(Value::String(h)) if !h.is_empty() && h.len() <= 255 => {
                if forced_host.as_ref().is_some_and(|f| f != h) {
                    return Err(bad(format!(
                        "The requested {key} {h} is not the host the availability zone names."
                    )));
                }
                forced_host = Some(h.clone());
            }
            Some(_) => return Err(bad(format!("Invalid input for field/attribute {key}."))),
        }
    }
    if let Some(h) = &forced_host {
        if !c.auth.is_admin() {
            return Err(ComputeError::Forbidden(
                "Policy doesn't allow compute:servers:create:requested_destination to be performed."
                    .into(),
            ));
        }
        let known: Option<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE name = $1")
            .bind(h)
            .fetch_optional(s.pool())
            .await?;
        if known.is_none() {
            return Err(bad(format!("Compute host {h} could not be found.")));
        }
    }
    let az = match zone.as_ref() {
        None | Some(Value::Null) => None,
        Some(Value::String(z)) => {
            let zones: Vec<(String,)> =
                sqlx::query_as("SELECT DISTINCT availability_zone FROM hosts")
                    .fetch_all(s.pool())
                    .await?;
            if !zones.iter().any(|(x,)| x == z) {
                return Err(bad(format!(
                    "The requested availability zone is not available: {z}"
                )));
            }
            Some(z.clone())
        }
        Some(_) => return Err(bad("Invalid input for field/attribute availability_zone.")),
    };
    let config_drive = match srv.get("config_drive") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(v)) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        Some(_) => return Err(bad("Invalid input for field/attribute config_drive.")),
    };
    let description =
        match srv.get("description") {
            Some(_) if !c.version.at_least(19) => return Err(bad(
                "Invalid input for field/attribute server. 'description' needs microversion 2.19.",
            )),
            Some(Value::String(d)) if d.chars().count() <= 255 => Some(d.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(bad("Invalid input for field/attribute description.")),
        };
    let tags: Vec<String> = match srv.get("tags") {
        None => Vec::new(),
        Some(Value::Array(a)) if c.version.at_least(52) && a.len() <= 50 => a
            .iter()
            .map(|t| {
                t.as_str()
                    .filter(|t| !t.is_empty() && t.len() <= 60 && !t.contains(['/', ',']))
                    .map(str::to_owned)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("Invalid input for field/attribute tags."))?,
        Some(_) => return Err(bad("Invalid input for field/attribute tags.")),
    };
    let min = count(srv.get("min_count"), "min_count")?;
    let max = match srv.get("max_count") {
        None => min,
        given => count(given, "max_count")?,
    };
    if min > max {
        return Err(bad("min_count must be <= max_count"));
    }
    let access_ipv4 = access_ip(srv.get("accessIPv4"), "accessIPv4", false)?;
    let access_ipv6 = access_ip(srv.get("accessIPv6"), "accessIPv6", true)?;
    let disk = disk_config(srv.get("OS-DCF:diskConfig"))?.unwrap_or("MANUAL");
    let given_pass = admin_pass(srv.get("adminPass"))?;
    let group = match scheduler_group(&body)? {
        Some(g) => {
            let g = s
                .visible_server_group(&c.auth, &g)
                .await
                .map_err(|_| bad(format!("Invalid input for field/attribute group. Instance group {g} could not be found.")))?;
            s.check_group_room(&g, max).await?;
            Some(g.id)
        }
        None => None,
    };
    let n = match s.check_quota(&project, max, flavor.vcpus, flavor.ram).await {
        Ok(()) => max,
        Err(e) if min < max => {
            s.check_quota(&project, min, flavor.vcpus, flavor.ram)
                .await
                .map_err(|_| e)?;
            min
        }
        Err(e) => return Err(e),
    };

    let reservation_id = format!("r-{}", &ids::hex_id()[..8]);
    let snapshot = serde_json::to_string(&flavor.snapshot()).unwrap_or_default();
    let metadata = serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into());
    let sg_names = serde_json::to_string(&security_groups).unwrap_or_else(|_| "[]".into());
    let tags = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
    // Each server: row and saga first, then its ports (here, so that a port
    // the network refuses is this request's 4xx); scheduling runs after the
    // answer. A refusal undoes the servers of the request already accepted.
    let mut created: Vec<(String, String)> = Vec::new();
    for i in 0..n {
        let display = if n > 1 {
            format!("{name}-{}", i + 1)
        } else {
            name.to_owned()
        };
        let id = ids::uuid_id();
        let hostname = hostname_of(&display);
        let plan = Plan::new(&c.auth, &hostname, &nic_requests, &group_ids, &disks);
        let new = NewServer {
            id: &id,
            name: &display,
            project_id: &project,
            image_id: &image_id,
            flavor_snapshot: &snapshot,
            key_name: key_name.as_deref(),
            key_data: key_data.as_deref(),
            user_data: user_data.as_deref(),
            config_drive,
            metadata: &metadata,
            availability_zone: az.as_deref(),
            security_group_names: &sg_names,
            description: description.as_deref(),
            tags: &tags,
            hostname: &hostname,
            reservation_id: &reservation_id,
            launch_index: i,
            access_ipv4: access_ipv4.as_deref(),
            access_ipv6: access_ipv6.as_deref(),
            disk_config: disk,
            server_group: group.as_deref(),
            forced_host: forced_host.as_deref(),
            request_id: &c.request_id,
        };
        let saga_id = s.accept_server(&new, &plan).await?;
        let refused = match s.drive(&saga_id, Some("schedule")).await? {
            Ended::Undone(e) => Some(e),
            _ => None,
        };
        if let Some(e) = refused {
            for (done, _) in &created {
                s.undo_create(done, &e.to_string()).await?;
            }
            return Err(e);
        }
        created.push((saga_id, id));
    }
    for (saga_id, _) in &created {
        s.kick(saga_id.clone());
    }
    if srv.get("return_reservation_id").and_then(Value::as_bool) == Some(true) {
        return Ok(reply(
            StatusCode::ACCEPTED,
            c.version,
            json!({"reservation_id": reservation_id}),
        ));
    }
    let first = &created[0].1;
    let admin_pass: String = given_pass.unwrap_or_else(|| ids::hex_id()[..12].to_owned());
    let mut out = json!({"id": first, "links": [{"rel": "self", "href": format!("{}/servers/{first}", s.base_url)}],
                         "OS-DCF:diskConfig": disk, "adminPass": admin_pass});
    if !security_groups.is_empty() {
        out["security_groups"] = json!(security_groups
            .iter()
            .map(|n| json!({"name": n}))
            .collect::<Vec<_>>());
    }
    Ok(reply(
        StatusCode::ACCEPTED,
        c.version,
        json!({"server": out}),
    ))
}

/// `UP`/`DOWN` of every compute host, read once per request (admins see
/// `host_status`; hosts are few, servers many).
async fn host_statuses(s: &ComputeService, c: &Ctx) -> Result<HashMap<String, &'static str>> {
    if !c.auth.is_admin() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT name, heartbeat_at, forced_down FROM hosts")
            .fetch_all(s.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, hb, forced)| (name, if host_is_up(hb, forced) { "UP" } else { "DOWN" }))
        .collect())
}

async fn view(s: &ComputeService, c: &Ctx, srv: &Server) -> Result<Value> {
    let mut nets = s
        .network
        .devices(Some(std::slice::from_ref(&srv.id)))
        .await
        .map_err(nics::from_network)?;
    let hosts = host_statuses(s, c).await?;
    let net = nets.remove(&srv.id);
    let groups = s.groups_of(&srv.id).await?;
    let vols = crate::volumes::attached_to(s.pool(), std::slice::from_ref(&srv.id)).await?;
    let body = view_with(s, c, srv, net.as_ref(), &hosts, Some(&groups), &vols);
    Ok(serde_json::to_value(body).unwrap_or_default())
}

fn view_with<'a>(
    s: &'a ComputeService,
    c: &Ctx,
    srv: &'a Server,
    net: Option<&'a ferro_network::service::DeviceNet>,
    hosts: &HashMap<String, &'static str>,
    server_groups: Option<&'a [String]>,
    volumes: &'a HashMap<String, Vec<(String, bool)>>,
) -> ServerBody<'a> {
    let hs = match (c.auth.is_admin(), srv.host.as_deref()) {
        (true, Some(h)) => Some(hosts.get(h).copied().unwrap_or("UNKNOWN")),
        _ => None,
    };
    server_body(&ServerView {
        server: srv,
        version: c.version,
        admin: c.auth.is_admin(),
        base: &s.base_url,
        host_status: hs,
        net,
        server_groups,
        volumes: volumes.get(&srv.id).map(Vec::as_slice).unwrap_or(&[]),
    })
}

/// A bind argument of a list query.
enum Arg {
    Text(String),
    Int(i64),
}

/// The conditions of a list query and their numbered arguments.
struct Where {
    cond: Vec<String>,
    args: Vec<Arg>,
}

impl Default for Where {
    fn default() -> Self {
        Where {
            cond: vec!["deleted = 0".to_owned()],
            args: Vec::new(),
        }
    }
}

impl Where {
    /// Adds a condition written with `$1..` for its own arguments.
    fn add(&mut self, sql: &str, args: Vec<Arg>) {
        let mut sql = sql.to_owned();
        // Renumber from the last placeholder down so $1 doesn't hit $10.
        for i in (1..=args.len()).rev() {
            sql = sql.replace(&format!("${i}"), &format!("${}", self.args.len() + i));
        }
        self.args.extend(args);
        self.cond.push(sql);
    }

    fn sql(&self) -> String {
        self.cond.join(" AND ")
    }

    /// A query for servers with these arguments bound in order.
    fn servers<'q>(
        &self,
        sql: &'q str,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, Server, sqlx::any::AnyArguments<'q>> {
        let mut q = sqlx::query_as::<_, Server>(sql);
        for a in &self.args {
            q = match a {
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// One page of servers, newest first, and the page size it was cut to.
///
/// Nova pages every list: without `limit` (or with one above the cloud's
/// `max_limit`) a page holds `max_limit` servers, and a full page carries a
/// `next` link with the last server as marker. Project, host and marker go
/// to SQL (keyset paging on `created_at, id`); the other filters are applied
/// to the rows, so with one of them the query reads every row after the
/// marker.
async fn listed(s: &ComputeService, c: &Ctx, p: &Params) -> Result<(Vec<Server>, usize)> {
    let all_tenants = p.get("all_tenants").is_some_and(|v| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "f" | "off" | "no"
        )
    });
    let limit = match p.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| bad("limit must be a non-negative integer"))?
            .min(s.max_limit),
        None => s.max_limit,
    };
    let mut w = Where::default();
    if !(c.auth.is_admin() && all_tenants) {
        let project = c.auth.project_id().unwrap_or("").to_owned();
        w.add("project_id = $1", vec![Arg::Text(project)]);
    }
    if c.auth.is_admin() {
        if let Some(t) = p.get("project_id").or_else(|| p.get("tenant_id")) {
            w.add("project_id = $1", vec![Arg::Text(t.to_owned())]);
        }
        if let Some(h) = p.get("host").or_else(|| p.get("node")) {
            w.add("host = $1", vec![Arg::Text(h.to_owned())]);
        }
    }
    if let Some(m) = p.get("marker") {
        let visible = format!(
            "SELECT * FROM servers WHERE {} AND id = ${}",
            w.sql(),
            w.args.len() + 1
        );
        let at = w
            .servers(&visible)
            .bind(m)
            .fetch_optional(s.pool())
            .await?
            .ok_or_else(|| bad(format!("marker [{m}] not found")))?
            .created_at;
        w.add(
            "(created_at < $1 OR (created_at = $2 AND id < $3))",
            vec![Arg::Int(at), Arg::Int(at), Arg::Text(m.to_owned())],
        );
    }
    // `changes-since` / `changes-before` (2.66): by last update, in SQL.
    let since = time_filter(p, "changes-since")?;
    let before = if c.version.at_least(66) {
        time_filter(p, "changes-before")?
    } else {
        None
    };
    if let (Some(a), Some(b)) = (since, before) {
        if a > b {
            return Err(bad(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
    }
    if let Some(t) = since {
        w.add("updated_at >= $1", vec![Arg::Int(t)]);
    }
    if let Some(t) = before {
        w.add("updated_at <= $1", vec![Arg::Int(t)]);
    }
    // Nova's `name`, `ip` and `ip6` are regular expressions, searched
    // anywhere in the value.
    let name = regex_filter(p, "name")?;
    let ip = regex_filter(p, "ip")?;
    let ip6 = regex_filter(p, "ip6")?;
    let status = p.get("status").map(str::to_ascii_uppercase);
    let image = p.get("image").map(id_from_ref);
    let flavor = p.get("flavor").map(id_from_ref);
    let zone = p.get("availability_zone");
    let filtered = name.is_some()
        || ip.is_some()
        || ip6.is_some()
        || status.is_some()
        || image.is_some()
        || flavor.is_some()
        || zone.is_some();
    let mut sql = format!(
        "SELECT * FROM servers WHERE {} ORDER BY created_at DESC, id DESC",
        w.sql()
    );
    if !filtered {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let mut rows = w.servers(&sql).fetch_all(s.pool()).await?;
    if filtered {
        rows.retain(|r| {
            name.as_ref().is_none_or(|n| n.is_match(&r.name))
                && status.as_deref().is_none_or(|st| r.status() == st)
                && image.is_none_or(|i| r.image_id == i)
                && flavor.is_none_or(|f| r.flavor().is_some_and(|x| x.id == f))
                && zone.is_none_or(|z| r.availability_zone.as_deref().unwrap_or("nova") == z)
        });
        if ip.is_some() || ip6.is_some() {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let nets = s
                .network
                .devices(Some(&ids))
                .await
                .map_err(nics::from_network)?;
            let matches = |id: &str, re: &regex::Regex, v6: bool| {
                nets.get(id).is_some_and(|n| {
                    n.addresses
                        .iter()
                        .any(|a| a.addr.contains(':') == v6 && re.is_match(&a.addr))
                })
            };
            rows.retain(|r| {
                ip.as_ref().is_none_or(|re| matches(&r.id, re, false))
                    && ip6.as_ref().is_none_or(|re| matches(&r.id, re, true))
            });
        }
        rows.truncate(limit);
    }
    Ok((rows, limit))
}

/// A query parameter taken as a regular expression; a bad one is 400.
fn regex_filter(p: &Params, key: &str) -> Result<Option<regex::Regex>> {
    p.get(key)
        .map(|v| {
            regex::RegexBuilder::new(v)
                .size_limit(1 << 20)
                .build()
                .map_err(|_| bad(format!("Invalid regular expression for filter {key}: {v}")))
        })
        .transpose()
}

/// A query parameter taken as an ISO 8601 time (µs); a bad one is 400.
fn time_filter(p: &Params, key: &str) -> Result<Option<i64>> {
    p.get(key)
        .map(|v| super::query_time(v).ok_or_else(|| bad(format!("Invalid filter field: {key}."))))
        .transpose()
}

/// Nova's `servers_links`: a `next` link when the page is full, with the
/// request's own parameters and the page's last server as marker.
fn page_links(
    s: &ComputeService,
    p: &Params,
    path: &str,
    rows: &[Server],
    limit: usize,
) -> Option<Value> {
    let last = rows.last().filter(|_| rows.len() == limit)?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    let mut keys: Vec<&String> = p.0.keys().filter(|k| *k != "marker").collect();
    keys.sort();
    for k in keys {
        q.append_pair(k, &p.0[k]);
    }
    q.append_pair("marker", &last.id);
    Some(json!([{"rel": "next", "href": format!("{}/{path}?{}", s.base_url, q.finish())}]))
}

/// A page of a server list: `servers`, and `servers_links` when one follows.
#[derive(serde::Serialize)]
struct Page<T> {
    servers: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    servers_links: Option<Value>,
}

fn page<T: serde::Serialize>(c: &Ctx, servers: Vec<T>, links: Option<Value>) -> Response {
    reply(
        StatusCode::OK,
        c.version,
        Page {
            servers,
            servers_links: links,
        },
    )
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    let (rows, limit) = listed(&s, &c, &p).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| render::server_brief(r, &s.base_url))
        .collect();
    Ok(page(&c, items, page_links(&s, &p, "servers", &rows, limit)))
}

pub async fn list_detail(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    let (rows, limit) = listed(&s, &c, &p).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let nets = s
        .network
        .devices(Some(&ids))
        .await
        .map_err(nics::from_network)?;
    let hosts = host_statuses(&s, &c).await?;
    let vols = crate::volumes::attached_to(s.pool(), &ids).await?;
    let items: Vec<ServerBody> = rows
        .iter()
        .map(|r| view_with(&s, &c, r, nets.get(&r.id), &hosts, None, &vols))
        .collect();
    Ok(page(
        &c,
        items,
        page_links(&s, &p, "servers/detail", &rows, limit),
    ))
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let srv = s.visible_server(&c.auth, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"server": view(&s, &c, &srv).await?}),
    ))
}

/// `update` and `rebuild` answer with less than `show` until 2.75: none of
/// the extension attributes (zone, config drive, `OS-EXT-SRV-ATTR`,
/// `OS-EXT-STS`, usage times, key name, security groups, volumes, host
/// status) and addresses without their type and MAC, as Nova's do.
fn brief_before_2_75(c: &Ctx, mut body: Value) -> Value {
    if c.version.at_least(75) {
        return body;
    }
    if let Some(o) = body.as_object_mut() {
        o.retain(|k, _| {
            !(k.starts_with("OS-EXT-SRV-ATTR:")
                || k.starts_with("OS-EXT-STS:")
                || k.starts_with("OS-SRV-USG:")
                || matches!(
                    k.as_str(),
                    "OS-EXT-AZ:availability_zone"
                        | "config_drive"
                        | "host_status"
                        | "key_name"
                        | "security_groups"
                        | "os-extended-volumes:volumes_attached"
                ))
        });
        if let Some(Value::Object(nets)) = o.get_mut("addresses") {
            for addrs in nets.values_mut() {
                for a in addrs.as_array_mut().into_iter().flatten() {
                    if let Some(a) = a.as_object_mut() {
                        a.retain(|k, _| k == "version" || k == "addr");
                    }
                }
            }
        }
    }
    body
}

/// The server, if the caller may change it (member of its project, or admin).
pub(super) async fn changeable(
    s: &ComputeService,
    c: &Ctx,
    id: &str,
    action: &'static str,
) -> Result<Server> {
    let srv = s.visible_server(&c.auth, id).await?;
    if !c.auth.is_admin() && !c.auth.has_role("member") {
        return Err(ComputeError::Denied(ferro_common::Denied { action }));
    }
    if srv.locked != 0 && !c.auth.is_admin() {
        return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
    }
    Ok(srv)
}

pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let srv = changeable(&s, &c, &id, "os_compute_api:servers:update").await?;
    let f = body
        .get("server")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("'server' is a required property."))?;
    let mut name = srv.name.clone();
    let mut description = srv.description.clone();
    let mut ipv4 = srv.access_ipv4.clone();
    let mut ipv6 = srv.access_ipv6.clone();
    let disk = disk_config(f.get("OS-DCF:diskConfig"))?;
    for (k, v) in f {
        match (k.as_str(), v) {
            ("name", Value::String(n)) => {
                check_name("name", n)?;
                name = n.clone();
            }
            ("description", Value::String(d))
                if c.version.at_least(19) && d.chars().count() <= 255 =>
            {
                description = Some(d.clone())
            }
            ("description", Value::Null) if c.version.at_least(19) => description = None,
            ("accessIPv4", v) => {
                ipv4 = access_ip(Some(v), "accessIPv4", false)?.unwrap_or_default()
            }
            ("accessIPv6", v) => ipv6 = access_ip(Some(v), "accessIPv6", true)?.unwrap_or_default(),
            ("OS-DCF:diskConfig", _) => {}
            _ => return Err(bad(format!("Invalid input for field/attribute {k}."))),
        }
    }
    sqlx::query("UPDATE servers SET state_generation = state_generation + 1, name = $1, description = $2, access_ipv4 = $3, \
                 access_ipv6 = $4, disk_config = $5, updated_at = $6 WHERE id = $7")
        .bind(&name)
        .bind(description)
        .bind(&ipv4)
        .bind(&ipv6)
        .bind(disk.unwrap_or(srv.disk_config.as_str()))
        .bind(time::now_micros())
        .bind(&id)
        .execute(s.pool())
        .await?;
    let srv = s.visible_server(&c.auth, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"server": brief_before_2_75(&c, view(&s, &c, &srv).await?)}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    retry_stale(|| async {
        let srv = changeable(&s, &c, &id, "os_compute_api:servers:delete").await?;
        s.delete(&srv).await?;
        s.record_action(&id, "delete", &c.auth, &c.request_id)
            .await?;
        Ok(empty(StatusCode::NO_CONTENT, c.version))
    })
    .await
}

/// Runs a read-decide-write step again while its compare-and-set finds the
/// server changed since the read (a concurrent action or an agent's report
/// came first): each try decides on a fresh read, so a request behaves as
/// if it came right after the one it raced, and gets the answer that state
/// gives (often 409). Bounded: a server that keeps changing gets 409.
async fn retry_stale<F, Fut>(mut step: F) -> Result<Response>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Response>>,
{
    for _ in 0..4 {
        match step().await {
            Err(ComputeError::Stale(id)) => {
                tracing::debug!(server_id = %id, "the server changed under the request; deciding again");
            }
            other => return other,
        }
    }
    step().await
}

pub(super) fn conflict(action: &str, srv: &Server) -> ComputeError {
    ComputeError::Conflict(format!(
        "Cannot '{action}' instance {} while it is in vm_state {}",
        srv.id, srv.vm_state
    ))
}

fn busy(srv: &Server, action: &str) -> Result<()> {
    match &srv.task_state {
        Some(t) => Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in task_state {t}",
            srv.id
        ))),
        None => Ok(()),
    }
}

pub async fn action(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Map<String, Value>>,
) -> Result<Response> {
    if body.len() != 1 {
        return Err(bad("Exactly one action is expected in the request body."));
    }
    let (name, arg) = body
        .into_iter()
        .next()
        .ok_or_else(|| bad("An action is required."))?;
    if name == "os-getConsoleOutput" {
        return console_output(&s, &c, &id, &arg).await;
    }
    if name == "lock" || name == "unlock" {
        return lock(&s, &c, &id, name == "lock", &arg).await;
    }
    retry_stale(|| act(&s, &c, &id, &name, &arg)).await
}

/// One try of a server action, decided on a fresh read of the server.
async fn act(s: &State, c: &Ctx, id: &str, name: &str, arg: &Value) -> Result<Response> {
    let (s, c, id, name) = (s.clone(), c, id.to_owned(), name.to_owned());
    let srv = changeable(&s, c, &id, "os_compute_api:servers:action").await?;
    if name == "addFloatingIp" {
        return super::floating_ip_actions::add(&s, c, &srv, arg).await;
    }
    if name == "removeFloatingIp" {
        return super::floating_ip_actions::remove(&s, c, &srv, arg).await;
    }
    if name == "addSecurityGroup" || name == "removeSecurityGroup" {
        return security_group_action(&s, c, &srv, name == "addSecurityGroup", arg).await;
    }
    let vm = srv.vm_state.as_str();
    let (task, desired) = match name.as_str() {
        "os-stop" => {
            busy(&srv, "stop")?;
            if !matches!(vm, "active" | "paused" | "suspended") {
                return Err(conflict("stop", &srv));
            }
            ("powering-off", "stopped")
        }
        "os-start" => {
            busy(&srv, "start")?;
            if vm != "stopped" {
                return Err(conflict("start", &srv));
            }
            ("powering-on", "running")
        }
        "pause" | "suspend" => {
            busy(&srv, &name)?;
            if vm != "active" {
                return Err(conflict(&name, &srv));
            }
            if name == "pause" {
                ("pausing", "paused")
            } else {
                ("suspending", "suspended")
            }
        }
        "unpause" | "resume" => {
            busy(&srv, &name)?;
            let from = if name == "unpause" {
                "paused"
            } else {
                "suspended"
            };
            if vm != from {
                return Err(conflict(&name, &srv));
            }
            if name == "unpause" {
                ("unpausing", "running")
            } else {
                ("resuming", "running")
            }
        }
        "reboot" => {
            let kind = arg["type"]
                .as_str()
                .map(str::to_ascii_uppercase)
                .ok_or_else(|| {
                    bad("Invalid input for field/attribute reboot. 'type' is a required property.")
                })?;
            let hard = match kind.as_str() {
                "SOFT" => false,
                "HARD" => true,
                _ => {
                    return Err(bad(
                        "Invalid input for field/attribute type. Value: must be SOFT or HARD.",
                    ))
                }
            };
            let allowed = if hard {
                matches!(vm, "active" | "stopped" | "paused" | "suspended" | "error")
            } else {
                vm == "active"
            };
            if !allowed || srv.host.is_none() || (!hard && srv.task_state.is_some()) {
                return Err(conflict("reboot", &srv));
            }
            let done = sqlx::query(
                "UPDATE servers SET state_generation = state_generation + 1, reboot_seq = reboot_seq + 1, reboot_hard = $1, desired_power = 'running', \
                 vm_state = CASE WHEN vm_state = 'error' THEN 'active' ELSE vm_state END, task_state = $2, updated_at = $3 \
                 WHERE id = $4 AND state_generation = $5",
            )
            .bind(i64::from(hard))
            .bind(if hard { "rebooting_hard" } else { "rebooting" })
            .bind(time::now_micros())
            .bind(&id)
            .bind(srv.state_generation)
            .execute(s.pool())
            .await?
            .rows_affected();
            stale_unless(done, &id)?;
            s.record_action(&id, "reboot", &c.auth, &c.request_id)
                .await?;
            s.wake(srv.host.as_deref());
            return Ok(empty(StatusCode::ACCEPTED, c.version));
        }
        "rebuild" => return rebuild(&s, c, srv, arg).await,
        "evacuate" => return evacuate(&s, c, srv, arg).await,
        "os-resetState" => return reset_state(&s, c, srv, arg).await,
        "injectNetworkInfo" => {
            // The agent re-applies the dataplane from desired state on every
            // pass; asking for it wakes the host's agent now.
            require_admin(c, "os_compute_api:os-admin-actions:inject_network_info")?;
            s.wake(srv.host.as_deref());
            s.record_action(&id, "inject_network_info", &c.auth, &c.request_id)
                .await?;
            return Ok(empty(StatusCode::ACCEPTED, c.version));
        }
        // Deletes are immediate (no `reclaim_instance_interval`), so no
        // server is ever soft-deleted: Nova's answer for any other state.
        "restore" | "forceDelete" => return Err(conflict(&name, &srv)),
        // Nova sets it through the QEMU guest agent, which needs an image
        // made for it (hw_qemu_guest_agent); no guest here runs one, so the
        // answer is Nova's for such a guest. A guest's own password reaches
        // its project through os-server-password.
        "changePassword" => {
            match &arg {
                Value::Object(o)
                    if o.len() == 1 && o.get("adminPass").is_some_and(Value::is_string) => {}
                _ => {
                    return Err(bad(
                        "Invalid input for field/attribute changePassword. Value should be an object with one string, adminPass.",
                    ))
                }
            }
            if vm != "active" {
                return Err(conflict("changePassword", &srv));
            }
            return Err(ComputeError::Conflict(format!(
                "Failed to set admin password on {} because the QEMU guest agent is not enabled for it",
                srv.id
            )));
        }
        "resize" => return resize(&s, c, srv, arg).await,
        "createImage" => return super::server_images::create_image(&s, c, srv, arg).await,
        "createBackup" => return super::server_images::create_backup(&s, c, srv, arg).await,
        "shelve" => {
            busy(&srv, "shelve")?;
            if !matches!(vm, "active" | "stopped" | "paused" | "suspended") {
                return Err(conflict("shelve", &srv));
            }
            s.shelve(&c.auth, &srv).await?;
            s.record_action(&id, "shelve", &c.auth, &c.request_id)
                .await?;
            return Ok(empty(StatusCode::ACCEPTED, c.version));
        }
        // Shelving offloads at once (Nova's default offload time, 0), so
        // no server waits in SHELVED to be offloaded.
        "shelveOffload" => return Err(conflict("shelveOffload", &srv)),
        "unshelve" => {
            let zone = match arg {
                Value::Null => None,
                Value::Object(o) if c.version.at_least(77) => {
                    if let Some(k) = o.keys().find(|k| k.as_str() != "availability_zone") {
                        return Err(bad(format!(
                            "Invalid input for field/attribute unshelve. Additional properties are not allowed ('{k}' was unexpected)"
                        )));
                    }
                    match o.get("availability_zone") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(z)) if !z.is_empty() => Some(z.clone()),
                        Some(_) => {
                            return Err(bad("Invalid input for field/attribute availability_zone."))
                        }
                    }
                }
                _ => return Err(bad("Invalid input for field/attribute unshelve.")),
            };
            busy(&srv, "unshelve")?;
            s.unshelve(&srv, zone.as_deref()).await?;
            s.record_action(&id, "unshelve", &c.auth, &c.request_id)
                .await?;
            return Ok(empty(StatusCode::ACCEPTED, c.version));
        }
        "migrate" => return super::server_migrate::migrate(&s, c, srv, arg).await,
        "os-migrateLive" => return super::server_migrate::live_migrate(&s, c, srv, arg).await,
        "confirmResize" => return confirm_resize(&s, c, srv).await,
        "revertResize" => return revert_resize(&s, c, srv).await,
        other => return Err(bad(format!("There is no such action: {other}"))),
    };
    s.set_desired_power(&srv, task, desired).await?;
    let recorded = match name.as_str() {
        "os-stop" => "stop",
        "os-start" => "start",
        other => other,
    };
    s.record_action(&id, recorded, &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

/// `evacuate` (admin): rebuild a server of a down host on another host.
async fn evacuate(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    require_admin(c, "os_compute_api:os-evacuate")?;
    if !arg.is_object() && !arg.is_null() {
        return Err(bad("Invalid input for field/attribute evacuate."));
    }
    let target = match arg.get("host") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if !h.is_empty() => Some(h.clone()),
        Some(_) => return Err(bad("Invalid input for field/attribute host.")),
    };
    if let Some(k) = arg.as_object().and_then(|o| {
        o.keys().find(|k| {
            let allowed: &[&str] = if c.version.at_least(14) {
                &["host", "adminPass", "force"]
            } else {
                &["host", "adminPass", "onSharedStorage", "force"]
            };
            !allowed.contains(&k.as_str())
        })
    }) {
        return Err(bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    busy(&srv, "evacuate")?;
    if !matches!(srv.vm_state.as_str(), "active" | "stopped" | "error") {
        return Err(conflict("evacuate", &srv));
    }
    let Some(from) = srv.host.clone() else {
        return Err(conflict("evacuate", &srv));
    };
    let hosts = ferro_placement::inventory::hosts(s.pool()).await?;
    let source_up = hosts
        .iter()
        .find(|h| h.name == from)
        .is_some_and(|h| host_is_up(h.heartbeat_at, h.forced_down));
    if source_up {
        return Err(ComputeError::Conflict(format!(
            "Compute service of {from} is still in use."
        )));
    }
    if let Some(t) = &target {
        if *t == from {
            return Err(bad("The target host can't be the same one."));
        }
        if !hosts.iter().any(|h| h.name == *t) {
            return Err(ComputeError::NotFound(format!(
                "Compute host {t} could not be found."
            )));
        }
    }
    s.evacuate(&srv, target.as_deref()).await?;
    s.record_action(&srv.id, "evacuate", &c.auth, &c.request_id)
        .await?;
    if c.version.at_least(14) {
        return Ok(empty(StatusCode::OK, c.version));
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"adminPass": ids::hex_id()[..12].to_owned()}),
    ))
}

/// `os-resetState` (admin): sets the server's state to `active` or `error`
/// and clears its task, without touching the VM, as Nova does.
async fn reset_state(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    require_admin(c, "os_compute_api:os-admin-actions:reset_state")?;
    let state = arg.get("state").and_then(Value::as_str).ok_or_else(|| {
        bad("Invalid input for field/attribute os-resetState. 'state' is a required property.")
    })?;
    if !matches!(state, "active" | "error") {
        return Err(bad(format!(
            "Invalid input for field/attribute state. Value: {state}. '{state}' is not one of ['active', 'error']"
        )));
    }
    let done = sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, vm_state = $1, task_state = NULL, updated_at = $2 \
         WHERE id = $3 AND state_generation = $4",
    )
    .bind(state)
    .bind(time::now_micros())
    .bind(&srv.id)
    .bind(srv.state_generation)
    .execute(s.pool())
    .await?
    .rows_affected();
    stale_unless(done, &srv.id)?;
    tracing::info!(server_id = %srv.id, state, "server state reset");
    s.record_action(&srv.id, "resetState", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

/// `lock` / `unlock`. A lock remembers who made it: the server's own
/// project (`owner`) may undo its own lock, only an admin one made by an
/// admin of another project.
async fn lock(s: &State, c: &Ctx, id: &str, lock: bool, arg: &Value) -> Result<Response> {
    let srv = s.visible_server(&c.auth, id).await?;
    let action = if lock {
        "os_compute_api:os-lock-server:lock"
    } else {
        "os_compute_api:os-lock-server:unlock"
    };
    if !c.auth.is_admin() && !c.auth.has_role("member") {
        return Err(ComputeError::Denied(ferro_common::Denied { action }));
    }
    let owner = c.auth.project_id() == Some(srv.project_id.as_str());
    if !lock && srv.locked != 0 && srv.locked_by.as_deref() == Some("admin") && !c.auth.is_admin() {
        return Err(ComputeError::Denied(ferro_common::Denied {
            action: "os_compute_api:os-lock-server:unlock:unlock_override",
        }));
    }
    let reason = match arg.get("locked_reason") {
        None | Some(Value::Null) => None,
        Some(_) if !lock || !c.version.at_least(73) => {
            return Err(bad("Invalid input for field/attribute lock. Additional properties are not allowed ('locked_reason' was unexpected)"))
        }
        Some(Value::String(r)) if r.chars().count() <= 255 => Some(r.clone()),
        Some(_) => return Err(bad("Invalid input for field/attribute locked_reason.")),
    };
    sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, locked = $1, locked_reason = $2, locked_by = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(i64::from(lock))
    .bind(reason)
    .bind(lock.then_some(if owner { "owner" } else { "admin" }))
    .bind(time::now_micros())
    .bind(id)
    .execute(s.pool())
    .await?;
    s.record_action(
        id,
        if lock { "lock" } else { "unlock" },
        &c.auth,
        &c.request_id,
    )
    .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

/// `addSecurityGroup` / `removeSecurityGroup` `{"name": …}`: changes the
/// group on every port of the server.
async fn security_group_action(
    s: &State,
    c: &Ctx,
    srv: &Server,
    add: bool,
    arg: &Value,
) -> Result<Response> {
    let name = arg
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad("Invalid input for field/attribute name. 'name' is a required property.")
        })?;
    let group = s
        .network
        .resolve_group(&srv.project_id, name)
        .await
        .map_err(|e| match e.status.as_u16() {
            404 => ComputeError::NotFound(format!(
                "Security group {name} not found for project {}.",
                srv.project_id
            )),
            _ => nics::from_network(e),
        })?;
    if srv.nics().is_empty() {
        return Err(bad(format!(
            "Instance {} has no network ports to apply security group {name} to.",
            srv.id
        )));
    }
    let changed = s
        .network
        .set_device_group(&srv.id, &group.id, add)
        .await
        .map_err(nics::from_network)?;
    if !changed {
        return Err(bad(if add {
            format!(
                "Security group {name} is already associated with the instance {}",
                srv.id
            )
        } else {
            format!(
                "Security group {name} not associated with the instance {}",
                srv.id
            )
        }));
    }
    let action = if add {
        "addSecurityGroup"
    } else {
        "removeSecurityGroup"
    };
    s.record_action(&srv.id, action, &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

async fn rebuild(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    busy(&srv, "rebuild")?;
    if !matches!(srv.vm_state.as_str(), "active" | "stopped" | "error") || srv.host.is_none() {
        return Err(conflict("rebuild", &srv));
    }
    let image_ref = arg["imageRef"].as_str().ok_or_else(|| {
        bad("Invalid input for field/attribute imageRef. 'imageRef' is a required property.")
    })?;
    let disk = disk_config(arg.get("OS-DCF:diskConfig"))?;
    let given_pass = admin_pass(arg.get("adminPass"))?;
    // A new key pair from 2.54, new user data from 2.57 (null: none).
    let (key_name, key_data) = match arg.get("key_name") {
        Some(k) if c.version.at_least(54) => key_pair(s, c, Some(k)).await?,
        _ => (srv.key_name.clone(), srv.key_data.clone()),
    };
    let user_data = match arg.get("user_data") {
        Some(u) if c.version.at_least(57) => user_data_of(Some(u))?,
        _ => srv.user_data.clone(),
    };
    if srv.image_id.is_empty() {
        return Err(bad(
            "Rebuilding a volume-backed server is not supported by this cloud.",
        ));
    }
    let flavor = srv
        .flavor()
        .ok_or_else(|| ComputeError::Internal("unreadable flavor".into()))?;
    let size = Size {
        ram: flavor.ram,
        disk: flavor.disk,
    };
    let image_id = check_image(s, c, id_from_ref(image_ref), size).await?;
    let name = match arg.get("name") {
        Some(Value::String(n)) => {
            check_name("name", n)?;
            n.clone()
        }
        None => srv.name.clone(),
        Some(_) => return Err(bad("Invalid input for field/attribute name.")),
    };
    let metadata = match arg.get("metadata") {
        Some(m) => serde_json::to_string(&check_metadata(m, 128)?).unwrap_or_else(|_| "{}".into()),
        None => srv.metadata.clone(),
    };
    let vm_state = if srv.vm_state == "error" {
        "active"
    } else {
        srv.vm_state.as_str()
    };
    let done = sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, rebuild_seq = rebuild_seq + 1, image_id = $1, name = $2, metadata = $3, vm_state = $4, \
         task_state = 'rebuilding', fault = NULL, key_name = $8, key_data = $9, user_data = $10, updated_at = $5 WHERE id = $6 AND state_generation = $7",
    )
    .bind(&image_id)
    .bind(&name)
    .bind(&metadata)
    .bind(vm_state)
    .bind(time::now_micros())
    .bind(&srv.id)
    .bind(srv.state_generation)
    .bind(&key_name)
    .bind(&key_data)
    .bind(&user_data)
    .execute(s.pool())
    .await?
    .rows_affected();
    stale_unless(done, &srv.id)?;
    set_disk_config(s, &srv.id, disk).await?;
    s.record_action(&srv.id, "rebuild", &c.auth, &c.request_id)
        .await?;
    s.wake(srv.host.as_deref());
    let srv = s.visible_server(&c.auth, &srv.id).await?;
    let mut body = brief_before_2_75(c, view(s, c, &srv).await?);
    // (a rebuild tells the key pair from 2.54 and the user data from 2.57)
    if c.version.at_least(54) {
        body["key_name"] = json!(srv.key_name);
    }
    if c.version.at_least(57) {
        body["user_data"] = json!(srv.user_data);
    }
    // (from 2.75 a rebuild shows the user data once, not as an extended
    // attribute too)
    if c.version.at_least(75) {
        if let Some(o) = body.as_object_mut() {
            o.remove("OS-EXT-SRV-ATTR:user_data");
        }
    }
    body["adminPass"] = json!(given_pass.unwrap_or_else(|| ids::hex_id()[..12].to_owned()));
    Ok(reply(
        StatusCode::ACCEPTED,
        c.version,
        json!({"server": body}),
    ))
}

/// Same-host resize: claim the new size next to the old, restart the VM
/// with it (disk grown), and wait in VERIFY_RESIZE for confirm or revert.
async fn resize(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    busy(&srv, "resize")?;
    let host = match (&srv.host, srv.vm_state.as_str()) {
        (Some(h), "active" | "stopped") => h.clone(),
        _ => return Err(conflict("resize", &srv)),
    };
    let flavor_ref = arg["flavorRef"].as_str().ok_or_else(|| {
        bad("Invalid input for field/attribute flavorRef. 'flavorRef' is a required property.")
    })?;
    let disk = disk_config(arg.get("OS-DCF:diskConfig"))?;
    let new = flavors::find(s, c, id_from_ref(flavor_ref))
        .await
        .map_err(|_| bad(format!("Flavor {flavor_ref} could not be found.")))?;
    let old = srv
        .flavor()
        .ok_or_else(|| ComputeError::Internal("unreadable flavor".into()))?;
    if new.id == old.id {
        return Err(bad("When resizing, instances must change flavor!"));
    }
    if new.disk < old.disk {
        return Err(bad("Resizing to a smaller disk flavor is not allowed."));
    }
    let q = s.quotas(&srv.project_id).await?;
    let (_, cores, ram) = s.usage(&srv.project_id).await?;
    for (res, used, delta) in [
        ("cores", cores, new.vcpus - old.vcpus),
        ("ram", ram, new.ram - old.ram),
    ] {
        let limit = q.get(res).copied().unwrap_or(-1);
        if delta > 0 && limit >= 0 && used + delta > limit {
            return Err(ComputeError::Forbidden(format!(
                "Quota exceeded for {res}: Requested {delta}, but already used {used} of {limit} {res}"
            )));
        }
    }
    // No room next to the old size on its host: it moves to a host with
    // room (Nova's resize goes through the scheduler too).
    let needs = crate::server_migrate::Needs {
        vcpus: new.vcpus,
        memory_mb: new.ram,
        disk_gb: if srv.image_id.is_empty() { 0 } else { new.disk },
        availability_zone: None,
    };
    if !s.host_fits(&host, &needs).await? {
        super::server_migrate::start_move(s, c, &srv, &host, None, &new.snapshot(), "resize")
            .await?;
        set_disk_config(s, &srv.id, disk).await?;
        s.record_action(&srv.id, "resize", &c.auth, &c.request_id)
            .await?;
        return Ok(empty(StatusCode::ACCEPTED, c.version));
    }
    // The server is taken for the resize (compare-and-set) with the saga
    // that claims room and applies it; no room is this request's 400.
    let plan = ResizePlan {
        host,
        flavor: serde_json::to_string(&new.snapshot()).unwrap_or_default(),
        flavor_name: new.name.clone(),
        vcpus: new.vcpus,
        memory_mb: new.ram,
        disk_gb: new.disk,
    };
    let saga_id = s.accept_resize(&srv, &plan).await?;
    if let Ended::Undone(e) = s.drive(&saga_id, None).await? {
        return Err(e);
    }
    set_disk_config(s, &srv.id, disk).await?;
    s.record_action(&srv.id, "resize", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

async fn confirm_resize(s: &State, c: &Ctx, srv: Server) -> Result<Response> {
    if srv.vm_state != "resized" || srv.task_state.is_some() {
        return Err(conflict("confirmResize", &srv));
    }
    if let Some(source) = srv.migration_source.clone() {
        return super::server_migrate::confirm_moved(s, c, srv, &source).await;
    }
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
        .bind(&srv.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE allocations SET consumer_id = $1 WHERE consumer_id = $2")
        .bind(&srv.id)
        .bind(format!("{}-resize", srv.id))
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, old_flavor = NULL, \
         vm_state = CASE WHEN power_state = 4 THEN 'stopped' ELSE 'active' END, \
         updated_at = $1 WHERE id = $2 AND state_generation = $3",
    )
    .bind(time::now_micros())
    .bind(&srv.id)
    .bind(srv.state_generation)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // A stale read: the transaction is dropped, undoing the allocation moves.
    stale_unless(done, &srv.id)?;
    tx.commit().await?;
    s.record_action(&srv.id, "confirmResize", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}

async fn revert_resize(s: &State, c: &Ctx, srv: Server) -> Result<Response> {
    if srv.vm_state != "resized" || srv.task_state.is_some() || srv.old_flavor.is_none() {
        return Err(conflict("revertResize", &srv));
    }
    if let Some(source) = srv.migration_source.clone() {
        return super::server_migrate::revert_moved(s, c, srv, &source).await;
    }
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
        .bind(format!("{}-resize", srv.id))
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, flavor = old_flavor, old_flavor = NULL, resize_seq = resize_seq + 1,          vm_state = CASE WHEN power_state = 4 THEN 'stopped' ELSE 'active' END, \
         task_state = 'resize_reverting', updated_at = $1 WHERE id = $2 AND state_generation = $3",
    )
    .bind(time::now_micros())
    .bind(&srv.id)
    .bind(srv.state_generation)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    stale_unless(done, &srv.id)?;
    tx.commit().await?;
    s.record_action(&srv.id, "revertResize", &c.auth, &c.request_id)
        .await?;
    s.wake(srv.host.as_deref());
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

async fn console_output(s: &State, c: &Ctx, id: &str, arg: &Value) -> Result<Response> {
    let srv = s.visible_server(&c.auth, id).await?;
    let lines = match arg.get("length") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= -1) => {
            n.as_i64().filter(|n| *n >= 0).map(|n| n as usize)
        }
        Some(Value::String(v)) if v.parse::<i64>().is_ok_and(|n| n >= -1) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n as usize),
        Some(_) => return Err(bad("Invalid input for field/attribute length.")),
    };
    let host = srv.host.as_deref().ok_or_else(|| {
        ComputeError::Conflict(format!("Instance {id} has no host yet; no console output."))
    })?;
    let agent = s.agent(host).ok_or_else(|| {
        ComputeError::Conflict(format!(
            "The compute host {host} of instance {id} is unreachable."
        ))
    })?;
    let output = agent
        .console_log(id, lines)
        .await
        .map_err(|e| ComputeError::Internal(e.0))?;
    Ok(reply(StatusCode::OK, c.version, json!({"output": output})))
}

pub async fn instance_actions(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    type Row = (String, String, String, String, Option<String>, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT action, request_id, user_id, project_id, message, start_time, updated_at FROM instance_actions \
         WHERE server_id = $1 ORDER BY start_time DESC",
    )
    .bind(&id)
    .fetch_all(s.pool())
    .await?;
    let ts = |t: i64| time::iso_micros(t).trim_end_matches('Z').to_owned();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(action, req, user, project, message, start, updated)| {
            let mut a = json!({"action": action, "instance_uuid": id, "request_id": req, "user_id": user,
                               "project_id": project, "start_time": ts(start), "message": message});
            if c.version.at_least(58) {
                a["updated_at"] = json!(ts(updated));
            }
            a
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"instanceActions": items}),
    ))
}

pub async fn instance_action(
    St(s): St<State>,
    c: Ctx,
    Path((id, req)): Path<(String, String)>,
) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let row: Option<(String, String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT action, user_id, project_id, message, start_time FROM instance_actions WHERE server_id = $1 AND request_id = $2",
    )
    .bind(&id)
    .bind(&req)
    .fetch_optional(s.pool())
    .await?;
    let (action, user, project, message, start) = row.ok_or_else(|| {
        ComputeError::NotFound(format!(
            "Action for request_id {req} on instance {id} not found"
        ))
    })?;
    let ts = time::iso_micros(start).trim_end_matches('Z').to_owned();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"instanceAction": {"action": action, "instance_uuid": id, "request_id": req,
        "user_id": user, "project_id": project, "start_time": ts, "message": message, "events": []}}),
    ))
}
