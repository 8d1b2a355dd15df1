//! Cinder v3 routes and extractors.
//!
//! Every route answers both with and without the project id in the path
//! (`/v3/{project_id}/volumes` as older clients build it from the catalog,
//! `/v3/volumes` as 3.67 allows). The project in the path is informational:
//! what a caller sees is decided by its token. Responses carry the
//! microversion they were rendered at (`OpenStack-API-Version: volume 3.x`).

mod attachments;
mod misc;
mod snapshots;
mod types;
mod volumes;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferro_common::auth::token_of;
use ferro_common::AuthContext;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{Result, VolumeError};
use crate::model::{Version, View, MAX_VERSION, MIN_VERSION};
use crate::service::{ListQuery, VolumeService};

pub type State = Arc<VolumeService>;

fn resource_routes(p: &str) -> Router<State> {
    Router::new()
        .route(
            &format!("{p}/volumes"),
            get(volumes::list).post(volumes::create),
        )
        .route(&format!("{p}/volumes/detail"), get(volumes::list_detail))
        .route(
            &format!("{p}/volumes/{{id}}"),
            get(volumes::show)
                .put(volumes::update)
                .delete(volumes::delete),
        )
        .route(&format!("{p}/volumes/{{id}}/action"), post(volumes::action))
        .route(
            &format!("{p}/volumes/{{id}}/metadata"),
            get(volumes::metadata)
                .post(volumes::merge_metadata)
                .put(volumes::replace_metadata),
        )
        .route(
            &format!("{p}/volumes/{{id}}/metadata/{{key}}"),
            get(volumes::metadata_key)
                .put(volumes::put_metadata_key)
                .delete(volumes::delete_metadata_key),
        )
        .route(
            &format!("{p}/snapshots"),
            get(snapshots::list).post(snapshots::create),
        )
        .route(
            &format!("{p}/snapshots/detail"),
            get(snapshots::list_detail),
        )
        .route(
            &format!("{p}/snapshots/{{id}}"),
            get(snapshots::show)
                .put(snapshots::update)
                .delete(snapshots::delete),
        )
        .route(&format!("{p}/types"), get(types::list).post(types::create))
        .route(
            &format!("{p}/types/{{id}}"),
            get(types::show).put(types::update).delete(types::delete),
        )
        .route(
            &format!("{p}/types/{{id}}/extra_specs"),
            get(types::extra_specs).post(types::set_extra_specs),
        )
        .route(
            &format!("{p}/types/{{id}}/extra_specs/{{key}}"),
            get(types::extra_spec)
                .put(types::put_extra_spec)
                .delete(types::delete_extra_spec),
        )
        .route(
            &format!("{p}/attachments"),
            get(attachments::list).post(attachments::create),
        )
        .route(&format!("{p}/attachments/detail"), get(attachments::list))
        .route(
            &format!("{p}/attachments/{{id}}"),
            get(attachments::show)
                .put(attachments::update)
                .delete(attachments::delete),
        )
        .route(
            &format!("{p}/attachments/{{id}}/action"),
            post(attachments::action),
        )
        .route(&format!("{p}/os-services"), get(misc::services))
        .route(&format!("{p}/os-availability-zone"), get(misc::zones))
        .route(&format!("{p}/limits"), get(misc::limits))
        .route(
            &format!("{p}/os-quota-sets/{{project}}"),
            get(misc::quota_show)
                .put(misc::quota_update)
                .delete(misc::quota_reset),
        )
        .route(
            &format!("{p}/os-quota-sets/{{project}}/defaults"),
            get(misc::quota_defaults),
        )
        .route(&format!("{p}/extensions"), get(misc::extensions))
}

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(misc::versions_root))
        .route("/v3", get(misc::versions))
        .route("/v3/", get(misc::versions))
        .merge(resource_routes("/v3"))
        .merge(resource_routes("/v3/{project_id}"))
        .fallback(|| async { VolumeError::NotFound("The resource could not be found.".to_owned()) })
        .layer(axum::middleware::from_fn(echo_version))
        .with_state(state)
}

/// The microversion a request asks for: 3.0 without the header, the
/// newest for `latest`; 400 when unreadable, 406 when out of range.
fn requested_version(headers: &http::HeaderMap) -> Result<Version> {
    let Some(h) = headers
        .get("openstack-api-version")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Version(MIN_VERSION.0, MIN_VERSION.1));
    };
    // "volume 3.60" (possibly among other services' entries).
    let Some(entry) = h
        .split(',')
        .map(str::trim)
        .find_map(|e| e.strip_prefix("volume "))
    else {
        return Ok(Version(MIN_VERSION.0, MIN_VERSION.1));
    };
    let entry = entry.trim();
    if entry.eq_ignore_ascii_case("latest") {
        return Ok(Version(MAX_VERSION.0, MAX_VERSION.1));
    }
    let parsed = entry
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some((major, minor)) = parsed else {
        return Err(VolumeError::bad(format!(
            "API Version String {entry} is of invalid format. Must be of format MajorNum.MinorNum."
        )));
    };
    let v = Version(major, minor);
    if v < Version(MIN_VERSION.0, MIN_VERSION.1) || v > Version(MAX_VERSION.0, MAX_VERSION.1) {
        return Err(VolumeError::NotAcceptable(format!(
            "Version {major}.{minor} is not supported by the API. Minimum is {}.{} and maximum is {}.{}.",
            MIN_VERSION.0, MIN_VERSION.1, MAX_VERSION.0, MAX_VERSION.1
        )));
    }
    Ok(v)
}

async fn echo_version(req: Request, next: Next) -> Response {
    let version = match requested_version(req.headers()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("volume {}", version.render())) {
        h.insert("openstack-api-version", v);
    }
    h.insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// The authenticated caller and the microversion asked for.
pub struct Ctx(pub AuthContext, pub Version);

impl Ctx {
    pub fn view(&self) -> View {
        View {
            version: self.1,
            admin: self.0.is_admin(),
        }
    }
}

impl FromRequestParts<State> for Ctx {
    type Rejection = VolumeError;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let version = requested_version(&parts.headers)?;
        let token = token_of(&parts.headers).ok_or(VolumeError::Unauthorized)?;
        let auth = s
            .auth
            .authenticate(token)
            .await
            .ok_or(VolumeError::Unauthorized)?;
        Ok(Ctx(auth, version))
    }
}

/// Path parameters by name (routes come with and without `project_id`).
pub struct P(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for P {
    type Rejection = VolumeError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self> {
        let axum::extract::Path(m) =
            axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, s)
                .await
                .map_err(|e| VolumeError::bad(e.to_string()))?;
        Ok(P(m))
    }
}

impl P {
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }
}

/// A JSON request body.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = VolumeError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        Ok(Body(ferro_common::read_json(req).await?))
    }
}

impl Body {
    /// The object under `key`, parsed into `T`.
    pub fn resource<T: DeserializeOwned>(self, key: &str) -> Result<T> {
        let inner = self.object(key)?;
        serde_json::from_value(inner)
            .map_err(|e| VolumeError::bad(format!("Invalid input for field/attribute {key}. {e}")))
    }

    /// The object under `key`, unparsed.
    pub fn object(self, key: &str) -> Result<Value> {
        match self.0 {
            Value::Object(mut m) => match m.remove(key) {
                Some(v @ Value::Object(_)) => Ok(v),
                _ => Err(VolumeError::bad(format!(
                    "Missing required element '{key}' in request body."
                ))),
            },
            _ => Err(VolumeError::bad(
                "Malformed request body: expected a JSON object.".to_owned(),
            )),
        }
    }
}

/// Query parameters, keeping repeats.
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(Query(
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        ))
    }
}

impl Query {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, k: &str) -> bool {
        self.get(k)
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | ""))
            .unwrap_or(false)
    }

    /// Filters, sorting and paging, as Cinder reads them.
    pub fn list(&self) -> Result<ListQuery> {
        const CONTROL: &[&str] = &[
            "all_tenants",
            "project_id",
            "sort",
            "sort_key",
            "sort_dir",
            "limit",
            "marker",
            "offset",
            "with_count",
            "is_public",
        ];
        let mut q = ListQuery {
            all_projects: self.flag("all_tenants"),
            project_id: self.get("project_id").map(str::to_owned),
            ..Default::default()
        };
        for (k, v) in &self.0 {
            if !CONTROL.contains(&k.as_str()) {
                q.filters.push((k.clone(), v.clone()));
            }
        }
        let dir_ok = |d: &str| -> Result<bool> {
            match d {
                "asc" => Ok(true),
                "desc" => Ok(false),
                other => Err(VolumeError::bad(format!(
                    "Invalid input received: Invalid sort dirs passed: {other}"
                ))),
            }
        };
        if let Some(sort) = self.get("sort") {
            for part in sort.split(',').filter(|p| !p.is_empty()) {
                let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
                q.sort.push((k.to_owned(), dir_ok(d)?));
            }
        } else if let Some(k) = self.get("sort_key") {
            q.sort.push((
                k.to_owned(),
                dir_ok(self.get("sort_dir").unwrap_or("desc"))?,
            ));
        }
        if let Some(l) = self.get("limit") {
            q.limit = Some(l.parse::<usize>().map_err(|_| {
                VolumeError::bad(format!(
                    "Invalid input received: limit must be an integer, not {l}."
                ))
            })?);
        }
        if let Some(o) = self.get("offset") {
            q.offset = o.parse::<usize>().map_err(|_| {
                VolumeError::bad(format!(
                    "Invalid input received: offset must be an integer, not {o}."
                ))
            })?;
        }
        q.marker = self.get("marker").map(str::to_owned);
        Ok(q)
    }
}

/// `{"<key>": value}` with a status.
pub fn one(status: StatusCode, key: &str, v: Value) -> Response {
    (status, axum::Json(json!({ key: v }))).into_response()
}

/// A collection, with a `next` link when a page was cut at `limit`.
pub fn many(
    s: &State,
    path: &str,
    key: &str,
    items: Vec<Value>,
    q: &ListQuery,
    count: Option<usize>,
) -> Response {
    let mut body = serde_json::Map::new();
    let next = match (q.limit, items.last()) {
        (Some(l), Some(last)) if items.len() == l && l > 0 => last
            .get("id")
            .and_then(Value::as_str)
            .map(|id| format!("{}/v3/{path}?limit={l}&marker={id}", s.base_url)),
        _ => None,
    };
    body.insert(key.to_owned(), Value::Array(items));
    if let Some(href) = next {
        body.insert(
            format!("{key}_links"),
            json!([{"rel": "next", "href": href}]),
        );
    }
    if let Some(c) = count {
        body.insert("count".to_owned(), json!(c));
    }
    (StatusCode::OK, axum::Json(Value::Object(body))).into_response()
}
