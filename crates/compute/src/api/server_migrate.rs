//! Moving servers between hosts: the `migrate` action (admin; `host` from
//! 2.56), a resize the server's host has no room for, their confirm and
//! revert, and `GET /os-migrations`. The work is the `server_migrate` saga.

use axum::extract::State as St;
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use ferro_store::sqlx;
use serde_json::{json, Value};

use super::servers::conflict;
use super::{empty, reply, require_admin, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::executor::Ended;
use crate::model::{FlavorSnapshot, Server};
use crate::server_migrate::{new_migration_id, MigratePlan, MigrationKind, Needs};
use crate::service::stale_unless;

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

/// `migrate` (admin): a cold migration to `host`, or to the scheduler's
/// pick. The server keeps its flavor and waits in VERIFY_RESIZE.
pub async fn migrate(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    require_admin(c, "os_compute_api:os-migrate-server:migrate")?;
    let target = match arg {
        // (an empty object is what clients send for "no arguments")
        Value::Null => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Object(o) if c.version.at_least(56) => {
            if let Some(k) = o.keys().find(|k| k.as_str() != "host") {
                return Err(bad(format!(
                    "Invalid input for field/attribute migrate. Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            match o.get("host") {
                None | Some(Value::Null) => None,
                Some(Value::String(h)) if !h.is_empty() && h.len() <= 255 => Some(h.clone()),
                Some(_) => return Err(bad("Invalid input for field/attribute host.")),
            }
        }
        _ => return Err(bad("Invalid input for field/attribute migrate.")),
    };
    if srv.task_state.is_some() {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'migrate' instance {} while it is in task_state {}",
            srv.id,
            srv.task_state.as_deref().unwrap_or_default()
        )));
    }
    let Some(source) = srv.host.clone() else {
        return Err(conflict("migrate", &srv));
    };
    if !matches!(srv.vm_state.as_str(), "active" | "stopped") {
        return Err(conflict("migrate", &srv));
    }
    if let Some(t) = &target {
        let known: Option<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE name = $1")
            .bind(t)
            .fetch_optional(s.pool())
            .await?;
        if known.is_none() {
            return Err(bad(format!("Compute host {t} could not be found.")));
        }
        if *t == source {
            return Err(bad(format!(
                "Unable to migrate instance ({}) to current host ({source}).",
                srv.id
            )));
        }
    }
    let flavor = srv
        .flavor()
        .ok_or_else(|| ComputeError::Internal("unreadable flavor".into()))?;
    start_move(s, c, &srv, &source, target.as_deref(), &flavor, "migration").await?;
    s.record_action(&srv.id, "migrate", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

/// Picks the destination, takes the server and runs the saga up to the
/// disk copy (which goes on in the background). A refusal (no room
/// anywhere) is this request's 400 and changes nothing.
pub async fn start_move(
    s: &State,
    c: &Ctx,
    srv: &Server,
    source: &str,
    target: Option<&str>,
    flavor: &FlavorSnapshot,
    migration_type: &str,
) -> Result<()> {
    let own_disk = !srv.image_id.is_empty();
    let needs = Needs {
        vcpus: flavor.vcpus,
        memory_mb: flavor.ram,
        disk_gb: if own_disk { flavor.disk } else { 0 },
        availability_zone: if target.is_some() {
            None
        } else {
            srv.availability_zone.as_deref()
        },
    };
    let dest = s.pick_destination(source, target, &needs).await?;
    let old = srv
        .flavor()
        .ok_or_else(|| ComputeError::Internal("unreadable flavor".into()))?;
    let plan = MigratePlan {
        migration_id: new_migration_id(),
        source: source.to_owned(),
        dest,
        flavor: serde_json::to_string(flavor).unwrap_or_default(),
        flavor_name: flavor.original_name.clone(),
        vcpus: flavor.vcpus,
        memory_mb: flavor.ram,
        disk_gb: flavor.disk,
        own_disk,
    };
    let kind = MigrationKind {
        migration_type,
        old_flavor_id: &old.id,
        new_flavor_id: &flavor.id,
        user_id: &c.auth.user_id,
    };
    let saga_id = s.accept_migrate(srv, &plan, &kind).await?;
    match s.drive(&saga_id, Some("copy")).await? {
        Ended::Undone(e) => return Err(e),
        _ => s.kick(saga_id),
    }
    Ok(())
}

/// `confirmResize` of a server that moved: the old host's allocation goes
/// and the old host removes its copy.
pub async fn confirm_moved(s: &State, c: &Ctx, srv: Server, source: &str) -> Result<Response> {
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
        .bind(&srv.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE allocations SET consumer_id = $1 WHERE consumer_id = $2")
        .bind(&srv.id)
        .bind(crate::server_resize::reservation(&srv.id))
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, old_flavor = NULL, migration_source = NULL, \
         vm_state = CASE WHEN power_state = 4 THEN 'stopped' ELSE 'active' END, \
         updated_at = $1 WHERE id = $2 AND state_generation = $3",
    )
    .bind(time::now_micros())
    .bind(&srv.id)
    .bind(srv.state_generation)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    stale_unless(done, &srv.id)?;
    sqlx::query(
        "UPDATE migrations SET status = 'confirmed', updated_at = $1 WHERE server_id = $2 AND status = 'finished'",
    )
    .bind(time::now_micros())
    .bind(&srv.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(server_id = %srv.id, source, "migration confirmed");
    s.wake(Some(source));
    s.record_action(&srv.id, "confirmResize", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}

/// `revertResize` of a server that moved: back to its old host, which
/// starts the copy it kept; the new host removes its own.
pub async fn revert_moved(s: &State, c: &Ctx, srv: Server, source: &str) -> Result<Response> {
    let dest = srv.host.clone().unwrap_or_default();
    s.network
        .rebind_device(&srv.id, source)
        .await
        .map_err(|e| ComputeError::Internal(format!("rebinding ports: {e}")))?;
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
        .bind(crate::server_resize::reservation(&srv.id))
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query(
        "UPDATE servers SET state_generation = state_generation + 1, host = $1, migration_source = NULL, \
         flavor = old_flavor, old_flavor = NULL, resize_seq = resize_seq + 1, \
         vm_state = CASE WHEN power_state = 4 THEN 'stopped' ELSE 'active' END, \
         task_state = 'resize_reverting', updated_at = $2 WHERE id = $3 AND state_generation = $4",
    )
    .bind(source)
    .bind(time::now_micros())
    .bind(&srv.id)
    .bind(srv.state_generation)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    stale_unless(done, &srv.id)?;
    sqlx::query(
        "UPDATE migrations SET status = 'reverted', updated_at = $1 WHERE server_id = $2 AND status = 'finished'",
    )
    .bind(time::now_micros())
    .bind(&srv.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(server_id = %srv.id, source, dest = %dest, "migration reverted");
    s.wake(Some(source));
    s.wake(Some(&dest));
    s.record_action(&srv.id, "revertResize", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

/// `GET /os-migrations` (admin): every migration, newest first, filtered
/// by `instance_uuid`, `status`, `host` (source or destination),
/// `source_compute` and `migration_type`.
pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-migrations:index")?;
    let want = |k: &str| p.get(k).map(|v| v.to_owned());
    let (instance, status, host, source, kind) = (
        want("instance_uuid"),
        want("status"),
        want("host"),
        want("source_compute"),
        want("migration_type"),
    );
    let all = s.migrations().await?;
    let body: Vec<Value> = all
        .iter()
        .filter(|m| instance.as_ref().is_none_or(|i| *i == m.server_id))
        .filter(|m| status.as_ref().is_none_or(|v| *v == m.status))
        .filter(|m| {
            host.as_ref()
                .is_none_or(|h| *h == m.source_compute || *h == m.dest_compute)
        })
        .filter(|m| source.as_ref().is_none_or(|h| *h == m.source_compute))
        .filter(|m| {
            kind.as_ref()
                .is_none_or(|k| !c.version.at_least(23) || *k == m.migration_type)
        })
        .map(|m| {
            let mut o = json!({
                "id": m.seq,
                "instance_uuid": m.server_id,
                "source_compute": m.source_compute,
                "source_node": m.source_compute,
                "dest_compute": m.dest_compute,
                "dest_node": m.dest_compute,
                "dest_host": m.dest_compute,
                "status": m.status,
                "old_instance_type_id": m.old_flavor_id,
                "new_instance_type_id": m.new_flavor_id,
                "created_at": time::iso_seconds(m.created_at).trim_end_matches('Z'),
                "updated_at": time::iso_seconds(m.updated_at).trim_end_matches('Z'),
            });
            if c.version.at_least(23) {
                o["migration_type"] = json!(m.migration_type);
            }
            if c.version.at_least(59) {
                o["uuid"] = json!(m.uuid);
            }
            if c.version.at_least(80) {
                o["project_id"] = json!(m.project_id);
                o["user_id"] = json!(m.user_id);
            }
            o
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"migrations": body}),
    ))
}

/// `os-migrateLive` (admin): the server moves while it runs. `host` may be
/// null (the scheduler picks); `block_migration` is taken as given (the
/// disk is always mirrored: disks are local), `disk_over_commit` (before
/// 2.25) and `force` (2.30 to 2.67) are accepted and change nothing.
pub async fn live_migrate(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    require_admin(c, "os_compute_api:os-migrate-server:migrate_live")?;
    let o = arg
        .as_object()
        .ok_or_else(|| bad("Invalid input for field/attribute os-migrateLive."))?;
    let mut allowed = vec!["host", "block_migration"];
    if !c.version.at_least(25) {
        allowed.push("disk_over_commit");
    }
    if c.version.at_least(30) && !c.version.at_least(68) {
        allowed.push("force");
    }
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute os-migrateLive. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    for k in ["host", "block_migration"] {
        if !o.contains_key(k) && (k == "host" || !c.version.at_least(25)) {
            return Err(bad(format!(
                "Invalid input for field/attribute os-migrateLive. '{k}' is a required property"
            )));
        }
    }
    match o.get("block_migration") {
        None | Some(Value::Bool(_)) => {}
        Some(Value::String(v)) if v == "auto" && c.version.at_least(25) => {}
        Some(_) => return Err(bad("Invalid input for field/attribute block_migration.")),
    }
    let target = match o.get("host") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if !h.is_empty() && h.len() <= 255 => Some(h.clone()),
        Some(_) => return Err(bad("Invalid input for field/attribute host.")),
    };
    if srv.task_state.is_some() {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'os-migrateLive' instance {} while it is in task_state {}",
            srv.id,
            srv.task_state.as_deref().unwrap_or_default()
        )));
    }
    let Some(source) = srv.host.clone() else {
        return Err(conflict("os-migrateLive", &srv));
    };
    if srv.vm_state != "active" {
        return Err(conflict("os-migrateLive", &srv));
    }
    if srv.image_id.is_empty() {
        return Err(bad(
            "Live migration of a server booted from a volume is not supported by this cloud.",
        ));
    }
    if let Some(t) = &target {
        let known: Option<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE name = $1")
            .bind(t)
            .fetch_optional(s.pool())
            .await?;
        if known.is_none() {
            return Err(bad(format!("Compute host {t} could not be found.")));
        }
        if *t == source {
            return Err(bad(format!(
                "Unable to migrate instance ({}) to current host ({source}).",
                srv.id
            )));
        }
    }
    let flavor = srv
        .flavor()
        .ok_or_else(|| ComputeError::Internal("unreadable flavor".into()))?;
    let needs = Needs {
        vcpus: flavor.vcpus,
        memory_mb: flavor.ram,
        disk_gb: flavor.disk,
        availability_zone: if target.is_some() {
            None
        } else {
            srv.availability_zone.as_deref()
        },
    };
    let dest = s
        .pick_destination(&source, target.as_deref(), &needs)
        .await?;
    let plan = crate::server_live_migrate::LivePlan {
        migration_id: new_migration_id(),
        source,
        dest,
        vcpus: flavor.vcpus,
        memory_mb: flavor.ram,
        disk_gb: flavor.disk,
    };
    let kind = MigrationKind {
        migration_type: "live-migration",
        old_flavor_id: &flavor.id,
        new_flavor_id: &flavor.id,
        user_id: &c.auth.user_id,
    };
    let saga_id = s.accept_live_migrate(&srv, &plan, &kind).await?;
    match s.drive(&saga_id, Some("migrate")).await? {
        Ended::Undone(e) => return Err(e),
        _ => s.kick(saga_id),
    }
    s.record_action(&srv.id, "live-migration", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

fn in_progress(status: &str) -> bool {
    matches!(
        status,
        "queued" | "preparing" | "running" | "post-migrating"
    )
}

fn live_view(c: &Ctx, m: &crate::server_migrate::Migration) -> Value {
    let mut o = json!({
        "id": m.seq,
        "server_uuid": m.server_id,
        "source_compute": m.source_compute,
        "source_node": m.source_compute,
        "dest_compute": m.dest_compute,
        "dest_node": m.dest_compute,
        "dest_host": m.dest_compute,
        "status": m.status,
        "memory_total_bytes": Value::Null,
        "memory_processed_bytes": Value::Null,
        "memory_remaining_bytes": Value::Null,
        "disk_total_bytes": Value::Null,
        "disk_processed_bytes": Value::Null,
        "disk_remaining_bytes": Value::Null,
        "created_at": time::iso_seconds(m.created_at).trim_end_matches('Z'),
        "updated_at": time::iso_seconds(m.updated_at).trim_end_matches('Z'),
    });
    if c.version.at_least(59) {
        o["uuid"] = json!(m.uuid);
    }
    o
}

/// `GET /servers/{id}/migrations` (admin, 2.23): the server's live
/// migrations in progress.
pub async fn server_list(
    St(s): St<State>,
    c: Ctx,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:servers:migrations:index")?;
    if !c.version.at_least(23) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    let srv = s.visible_server(&c.auth, &id).await?;
    let all = s.migrations().await?;
    let body: Vec<Value> = all
        .iter()
        .filter(|m| {
            m.server_id == srv.id && m.migration_type == "live-migration" && in_progress(&m.status)
        })
        .map(|m| live_view(&c, m))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"migrations": body}),
    ))
}

/// `GET /servers/{id}/migrations/{mid}` (admin, 2.23): one of them.
pub async fn server_show(
    St(s): St<State>,
    c: Ctx,
    axum::extract::Path((id, mid)): axum::extract::Path<(String, String)>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:servers:migrations:show")?;
    if !c.version.at_least(23) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    let srv = s.visible_server(&c.auth, &id).await?;
    let all = s.migrations().await?;
    let m = all
        .iter()
        .find(|m| m.server_id == srv.id && (m.seq.to_string() == mid || m.uuid == mid))
        .ok_or_else(|| {
            ComputeError::NotFound(format!(
                "Migration {mid} for server {id} could not be found."
            ))
        })?;
    if m.migration_type != "live-migration" || !in_progress(&m.status) {
        return Err(ComputeError::NotFound(format!(
            "Migration {mid} for server {id} is not in progress."
        )));
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"migration": live_view(&c, m)}),
    ))
}
