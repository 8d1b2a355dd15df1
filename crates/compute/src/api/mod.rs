//! Nova v2.1 routes, extractors and rendering helpers.

mod admin;
mod aggregates;
mod extensions;
mod flavors;
mod floating_ip_actions;
mod floating_ips;
mod hosts;
mod images;
mod keypairs;
mod network_proxy;
mod quota_classes;
mod render;
mod security_groups;
mod server_body;
mod server_groups;
mod server_images;
mod server_metadata;
mod server_migrate;
mod server_network;
mod server_password;
mod server_tags;
mod servers;
mod usage;
mod volume_attachments;
mod volume_proxy;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use ferro_common::auth::token_of;
use ferro_common::AuthContext;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{ComputeError, Result};
use crate::microversion::{self, Version, VersionError, MAX, MIN};
use crate::service::ComputeService;

pub type State = Arc<ComputeService>;

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/v2", get(version_v20))
        .route("/v2/", get(version_v20))
        .route("/v2.1", get(version_v21))
        .route("/v2.1/", get(version_v21))
        .route("/v2.1/flavors", get(flavors::list).post(flavors::create))
        .route("/v2.1/flavors/detail", get(flavors::list_detail))
        .route(
            "/v2.1/flavors/{id}",
            get(flavors::show)
                .put(flavors::update)
                .delete(flavors::delete),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs",
            get(flavors::list_specs).post(flavors::set_specs),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            get(flavors::show_spec)
                .put(flavors::put_spec)
                .delete(flavors::delete_spec),
        )
        .route(
            "/v2.1/flavors/{id}/os-flavor-access",
            get(flavors::list_access),
        )
        .route("/v2.1/flavors/{id}/action", post(flavors::action))
        .route(
            "/v2.1/os-keypairs",
            get(keypairs::list).post(keypairs::create),
        )
        .route(
            "/v2.1/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route("/v2.1/servers", get(servers::list).post(servers::create))
        .route("/v2.1/servers/detail", get(servers::list_detail))
        .route(
            "/v2.1/servers/{id}",
            get(servers::show)
                .put(servers::update)
                .delete(servers::delete),
        )
        .route("/v2.1/servers/{id}/action", post(servers::action))
        .route(
            "/v2.1/servers/{id}/os-instance-actions",
            get(servers::instance_actions),
        )
        .route(
            "/v2.1/servers/{id}/os-instance-actions/{req}",
            get(servers::instance_action),
        )
        .route(
            "/v2.1/servers/{id}/metadata",
            get(server_metadata::list)
                .post(server_metadata::update)
                .put(server_metadata::replace),
        )
        .route(
            "/v2.1/servers/{id}/metadata/{key}",
            get(server_metadata::show)
                .put(server_metadata::set)
                .delete(server_metadata::delete),
        )
        .route(
            "/v2.1/servers/{id}/os-server-password",
            get(server_password::show).delete(server_password::clear),
        )
        .route("/v2.1/servers/{id}/ips", get(server_network::ips))
        .route(
            "/v2.1/servers/{id}/tags",
            get(server_tags::list)
                .put(server_tags::replace)
                .delete(server_tags::clear),
        )
        .route(
            "/v2.1/servers/{id}/tags/{tag}",
            get(server_tags::check)
                .put(server_tags::add)
                .delete(server_tags::remove),
        )
        .route(
            "/v2.1/servers/{id}/ips/{network}",
            get(server_network::ips_of_network),
        )
        .route(
            "/v2.1/servers/{id}/os-interface",
            get(server_network::interfaces).post(server_network::interface_change),
        )
        .route(
            "/v2.1/servers/{id}/os-interface/{port}",
            get(server_network::interface_show).delete(server_network::interface_detach),
        )
        .route(
            "/v2.1/servers/{id}/os-security-groups",
            get(server_network::security_groups),
        )
        .route(
            "/v2.1/os-server-groups",
            get(server_groups::list).post(server_groups::create),
        )
        .route(
            "/v2.1/os-server-groups/{id}",
            get(server_groups::show).delete(server_groups::delete),
        )
        .route(
            "/v2.1/os-aggregates",
            get(aggregates::list).post(aggregates::create),
        )
        .route(
            "/v2.1/os-aggregates/{id}",
            get(aggregates::show)
                .put(aggregates::update)
                .delete(aggregates::delete),
        )
        .route("/v2.1/os-aggregates/{id}/action", post(aggregates::action))
        .route("/v2.1/os-instance_usage_audit_log", get(usage::audit_logs))
        .route(
            "/v2.1/os-instance_usage_audit_log/{before}",
            get(usage::audit_log_before),
        )
        .route("/v2.1/os-simple-tenant-usage", get(usage::list))
        .route("/v2.1/os-simple-tenant-usage/{project}", get(usage::show))
        .route(
            "/v2.1/servers/{id}/os-volume_attachments",
            get(volume_attachments::list).post(volume_attachments::attach),
        )
        .route(
            "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
            get(volume_attachments::show).delete(volume_attachments::detach),
        )
        .route("/v2.1/os-hypervisors", get(admin::hypervisors))
        .route(
            "/v2.1/os-hypervisors/detail",
            get(admin::hypervisors_detail),
        )
        .route(
            "/v2.1/os-hypervisors/statistics",
            get(admin::hypervisor_statistics),
        )
        .route("/v2.1/os-hypervisors/{id}", get(admin::hypervisor))
        .route(
            "/v2.1/os-hypervisors/{id}/uptime",
            get(admin::hypervisor_uptime),
        )
        .route(
            "/v2.1/os-hypervisors/{id}/search",
            get(admin::hypervisor_search),
        )
        .route(
            "/v2.1/os-hypervisors/{id}/servers",
            get(admin::hypervisor_servers),
        )
        .route("/v2.1/os-migrations", get(server_migrate::list))
        .route(
            "/v2.1/servers/{id}/migrations",
            get(server_migrate::server_list),
        )
        .route(
            "/v2.1/servers/{id}/migrations/{mid}",
            get(server_migrate::server_show),
        )
        .route("/v2.1/extensions", get(extensions::list))
        .route("/v2.1/extensions/{alias}", get(extensions::show))
        .route("/v2.1/images", get(images::list))
        .route("/v2.1/images/detail", get(images::list_detail))
        .route(
            "/v2.1/images/{id}",
            get(images::show).delete(images::delete),
        )
        .route(
            "/v2.1/images/{id}/metadata",
            get(images::metadata)
                .post(images::merge_metadata)
                .put(images::replace_metadata),
        )
        .route(
            "/v2.1/images/{id}/metadata/{key}",
            get(images::metadata_item)
                .put(images::set_metadata_item)
                .delete(images::delete_metadata_item),
        )
        .route(
            "/v2.1/os-security-groups",
            get(security_groups::list).post(security_groups::create),
        )
        .route(
            "/v2.1/os-security-groups/{id}",
            get(security_groups::show)
                .put(security_groups::update)
                .delete(security_groups::delete),
        )
        .route(
            "/v2.1/os-security-group-rules",
            post(security_groups::create_rule),
        )
        .route(
            "/v2.1/os-security-group-rules/{id}",
            axum::routing::delete(security_groups::delete_rule),
        )
        .route(
            "/v2.1/os-floating-ips",
            get(floating_ips::list).post(floating_ips::create),
        )
        .route(
            "/v2.1/os-floating-ips/{id}",
            get(floating_ips::show).delete(floating_ips::delete),
        )
        .route("/v2.1/os-floating-ip-pools", get(floating_ips::list_pools))
        .route(
            "/v2.1/os-quota-class-sets/{class}",
            get(quota_classes::show).put(quota_classes::update),
        )
        .route("/v2.1/os-networks", get(network_proxy::list))
        .route("/v2.1/os-networks/{id}", get(network_proxy::show))
        .route("/v2.1/os-tenant-networks", get(network_proxy::list_tenant))
        .route(
            "/v2.1/os-tenant-networks/{id}",
            get(network_proxy::show_tenant),
        )
        .route(
            "/v2.1/os-volumes",
            get(volume_proxy::list).post(volume_proxy::create),
        )
        .route("/v2.1/os-volumes/detail", get(volume_proxy::list_detail))
        .route(
            "/v2.1/os-volumes/{id}",
            get(volume_proxy::show).delete(volume_proxy::delete),
        )
        .route(
            "/v2.1/os-snapshots",
            get(volume_proxy::list_snapshots).post(volume_proxy::create_snapshot),
        )
        .route(
            "/v2.1/os-snapshots/detail",
            get(volume_proxy::list_snapshots_detail),
        )
        .route(
            "/v2.1/os-snapshots/{id}",
            get(volume_proxy::show_snapshot).delete(volume_proxy::delete_snapshot),
        )
        .route("/v2.1/os-hosts", get(hosts::list))
        .route("/v2.1/os-hosts/{host}", get(hosts::show).put(hosts::update))
        .route("/v2.1/os-hosts/{host}/{action}", get(hosts::power))
        .route("/v2.1/os-services", get(admin::services))
        .route("/v2.1/os-services/{id}", put(admin::update_service))
        .route("/v2.1/os-availability-zone", get(admin::availability_zones))
        .route(
            "/v2.1/os-availability-zone/detail",
            get(admin::availability_zones_detail),
        )
        .route("/v2.1/limits", get(admin::limits))
        .route(
            "/v2.1/os-quota-sets/{project}",
            get(admin::quota_show)
                .put(admin::quota_update)
                .delete(admin::quota_delete),
        )
        .route(
            "/v2.1/os-quota-sets/{project}/defaults",
            get(admin::quota_defaults),
        )
        .route(
            "/v2.1/os-quota-sets/{project}/detail",
            get(admin::quota_detail),
        )
        .fallback(|| async { ComputeError::NotFound("The resource could not be found.".into()) })
        .layer(axum::middleware::from_fn(compute_request_id))
        .with_state(state)
}

/// Nova answers with its request id under its own name as well.
async fn compute_request_id(req: Request, next: axum::middleware::Next) -> Response {
    let id = req
        .extensions()
        .get::<ferro_common::request_id::RequestId>()
        .and_then(|r| HeaderValue::from_str(&r.0).ok());
    let mut resp = next.run(req).await;
    if let Some(id) = id {
        resp.headers_mut().insert("x-compute-request-id", id);
    }
    resp
}

fn version_doc(base: &str) -> Value {
    json!({"id": "v2.1", "status": "CURRENT", "version": MAX.to_string(), "min_version": MIN.to_string(),
           "updated": "2013-07-23T11:33:21Z",
           "links": [{"rel": "self", "href": format!("{base}/")}],
           "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]})
}

/// Nova's v2.0: the same API at `/v2`, without microversions (listed
/// first, as every Nova lists it).
fn version_doc_v20(base: &str) -> Value {
    let root = base.trim_end_matches('/').trim_end_matches("/v2.1");
    json!({"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
           "updated": "2011-01-21T11:33:21Z",
           "links": [{"rel": "self", "href": format!("{root}/v2/")}],
           "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]})
}

async fn versions(axum::extract::State(s): axum::extract::State<State>) -> Response {
    let mut v20 = version_doc_v20(&s.base_url);
    let mut v21 = version_doc(&s.base_url);
    // (the list carries no media types; a version's own document does)
    for v in [&mut v20, &mut v21] {
        if let Some(o) = v.as_object_mut() {
            o.remove("media-types");
        }
    }
    (StatusCode::OK, axum::Json(json!({"versions": [v20, v21]}))).into_response()
}

async fn version_v20(axum::extract::State(s): axum::extract::State<State>) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"version": version_doc_v20(&s.base_url)})),
    )
        .into_response()
}

async fn version_v21(axum::extract::State(s): axum::extract::State<State>) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"version": version_doc(&s.base_url)})),
    )
        .into_response()
}

/// The caller and the microversion the request asked for.
pub struct Ctx {
    pub auth: AuthContext,
    pub version: Version,
    pub request_id: String,
}

impl FromRequestParts<State> for Ctx {
    type Rejection = ComputeError;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let version = microversion::from_headers(&parts.headers).map_err(|e| match e {
            VersionError::Malformed(v) => {
                ComputeError::bad(format!("Invalid API version request string: {v}"))
            }
            VersionError::Unsupported(v) => ComputeError::NotAcceptable(format!(
                "Version {v} is not supported by the API. Minimum is {MIN} and maximum is {MAX}."
            )),
        })?;
        let token = token_of(&parts.headers).ok_or(ComputeError::Unauthorized)?;
        let auth = s
            .auth
            .authenticate(token)
            .await
            .ok_or(ComputeError::Unauthorized)?;
        let request_id = parts
            .extensions
            .get::<ferro_common::request_id::RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        Ok(Ctx {
            auth,
            version,
            request_id,
        })
    }
}

pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ComputeError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        Ok(Body(ferro_common::read_json(req).await?))
    }
}

pub use ferro_common::params::Params;

/// A JSON response stamped with the microversion it was rendered in.
pub fn reply(status: StatusCode, version: Version, body: impl serde::Serialize) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    stamp(&mut r, version);
    r
}

pub fn empty(status: StatusCode, version: Version) -> Response {
    let mut r = status.into_response();
    stamp(&mut r, version);
    r
}

fn stamp(r: &mut Response, v: Version) {
    let h = r.headers_mut();
    if let Ok(val) = HeaderValue::from_str(&format!("compute {v}")) {
        h.insert("openstack-api-version", val);
    }
    if let Ok(val) = HeaderValue::from_str(&v.to_string()) {
        h.insert("x-openstack-nova-api-version", val);
    }
    h.insert(
        "vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
}

/// An API removed at microversion `minor`: 404 from there on, as Nova.
pub(super) fn gone_at(c: &Ctx, minor: u16) -> Result<()> {
    if c.version.at_least(minor) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    Ok(())
}

/// The network service's refusal as Nova's proxies answer it: 404 and 403
/// stay, a conflict is 400 (unlike `nics::from_network`, where a server
/// create's missing network is a 400 and a conflict a 409).
pub(super) fn network_error(e: ferro_network::error::NetworkError) -> ComputeError {
    match e.status.as_u16() {
        404 => ComputeError::NotFound(e.message),
        403 => ComputeError::Forbidden(e.message),
        500..=599 => {
            ComputeError::Internal(format!("network: {}", e.cause().unwrap_or(&e.message)))
        }
        _ => ComputeError::BadRequest(e.message),
    }
}

/// Refuses non-admins.
pub fn require_admin(ctx: &Ctx, action: &'static str) -> Result<()> {
    if ctx.auth.is_admin() {
        Ok(())
    } else {
        Err(ComputeError::Denied(ferro_common::Denied { action }))
    }
}

/// An ISO 8601 time from a query string (µs). A `+` of a zone that the
/// client didn't escape arrives as a space; `2026-01-31 12:00:00` is taken
/// as `2026-01-31T12:00:00`, as Nova takes it.
pub fn query_time(v: &str) -> Option<i64> {
    let v = if v.contains('T') {
        v.replace(' ', "+")
    } else {
        v.replacen(' ', "T", 1)
    };
    ferro_common::time::parse_iso(&v)
}

/// A name: 1 to 255 characters, no leading/trailing spaces, no control characters.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ComputeError::bad(format!(
            "Invalid input for field/attribute {what}. It must be 1 to 255 characters."
        )));
    }
    if name.trim() != name {
        return Err(ComputeError::bad(format!("Invalid input for field/attribute {what}. Leading and trailing spaces are not allowed.")));
    }
    if name.chars().any(char::is_control) {
        return Err(ComputeError::bad(format!(
            "Invalid input for field/attribute {what}. Control characters are not allowed."
        )));
    }
    Ok(())
}
