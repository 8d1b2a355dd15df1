//! Glance v2 routes and handlers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State as St};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine;
use ferro_common::auth::token_of;
use ferro_common::{ids, time, AuthContext};
use ferro_store::{flag, sqlx};
use serde_json::{json, Map, Value};

use crate::error::{ImageError, Result};
use crate::inspect::SUPPORTED;
use crate::model::{Image, Member, CORE, READ_ONLY};
use crate::service::ImageService;

pub type State = Arc<ImageService>;

const CONTAINER_FORMATS: &[&str] = &[
    "bare",
    "ovf",
    "ova",
    "aki",
    "ari",
    "ami",
    "docker",
    "compressed",
];
const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/versions", get(versions))
        .route("/v2/images", get(list).post(create))
        .route("/v2/images/{id}", get(show).patch(update).delete(delete))
        .route("/v2/images/{id}/file", put(upload).get(download))
        .route("/v2/images/{id}/tasks", get(image_tasks))
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(add_tag).delete(remove_tag),
        )
        .route(
            "/v2/images/{id}/members",
            get(list_members).post(add_member),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(show_member).put(update_member).delete(remove_member),
        )
        .route("/v2/images/{id}/actions/deactivate", post(deactivate))
        .route("/v2/images/{id}/actions/reactivate", post(reactivate))
        .route("/v2/schemas/image", get(schema_image))
        .route("/v2/schemas/images", get(schema_images))
        .route("/v2/schemas/member", get(schema_member))
        .route("/v2/schemas/members", get(schema_members))
        .fallback(|| async { ImageError::NotFound("The resource could not be found.".into()) })
        .with_state(state)
}

/// The caller, from `X-Auth-Token`.
pub struct Caller(pub AuthContext);

impl FromRequestParts<State> for Caller {
    type Rejection = ImageError;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let token = token_of(&parts.headers).ok_or(ImageError::Unauthorized)?;
        s.auth
            .authenticate(token)
            .await
            .map(Caller)
            .ok_or(ImageError::Unauthorized)
    }
}

pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ImageError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        Ok(JsonBody(ferro_common::read_json(req).await?))
    }
}

pub use ferro_common::params::Params;

fn json_ok(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

async fn versions(St(s): St<State>) -> Response {
    let base = s.base_url.trim_end_matches('/');
    let v = |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/v2/")}]});
    let body = json!({"versions": [v("v2.9", "CURRENT"), v("v2.8", "SUPPORTED"), v("v2.7", "SUPPORTED"), v("v2.6", "SUPPORTED"),
        v("v2.5", "SUPPORTED"), v("v2.4", "SUPPORTED"), v("v2.3", "SUPPORTED"), v("v2.2", "SUPPORTED"), v("v2.1", "SUPPORTED"), v("v2.0", "SUPPORTED")]});
    json_ok(StatusCode::MULTIPLE_CHOICES, body)
}

// ---- validation ----

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadRequest(msg.into())
}

/// Checks one attribute value as a client sets it.
fn check_attr(key: &str, v: &Value, ctx: &AuthContext, img_status: &str) -> Result<()> {
    match key {
        "name" => match v {
            Value::Null => Ok(()),
            Value::String(s) if s.chars().count() <= 255 => Ok(()),
            _ => Err(bad(
                "Invalid value for 'name': a string of at most 255 characters.",
            )),
        },
        "disk_format" | "container_format" => {
            if img_status != "queued" {
                return Err(ImageError::Forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            let allowed = if key == "disk_format" {
                SUPPORTED
            } else {
                CONTAINER_FORMATS
            };
            match v.as_str() {
                Some(f) if allowed.contains(&f) => Ok(()),
                _ => Err(bad(format!(
                    "Invalid value for '{key}': use one of {}.",
                    allowed.join(", ")
                ))),
            }
        }
        "visibility" => match v.as_str() {
            Some("public") if !ctx.is_admin() => Err(ImageError::Forbidden(
                "You are not authorized to publicize an image.".into(),
            )),
            Some(x) if VISIBILITIES.contains(&x) => Ok(()),
            _ => Err(bad(
                "Invalid value for 'visibility': use public, private, shared or community.",
            )),
        },
        "protected" | "os_hidden" => {
            if v.is_boolean() {
                Ok(())
            } else {
                Err(bad(format!("Invalid value for '{key}': true or false.")))
            }
        }
        "min_disk" | "min_ram" => match v.as_i64() {
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(()),
            _ => Err(bad(format!(
                "Invalid value for '{key}': a non-negative integer."
            ))),
        },
        "tags" => match v.as_array() {
            Some(a)
                if a.len() <= 128
                    && a.iter()
                        .all(|t| t.as_str().is_some_and(|t| !t.is_empty() && t.len() <= 255)) =>
            {
                Ok(())
            }
            _ => Err(bad(
                "Invalid value for 'tags': a list of at most 128 strings of 1 to 255 characters.",
            )),
        },
        k if READ_ONLY.contains(&k) => Err(ImageError::Forbidden(format!(
            "Attribute '{k}' is read-only."
        ))),
        k => {
            if k.is_empty() || k.len() > 255 {
                return Err(bad("Property names are 1 to 255 characters."));
            }
            match v {
                Value::String(s) if s.len() <= 65_535 => Ok(()),
                Value::Null => Ok(()),
                _ => Err(bad(format!(
                    "Invalid value for property '{k}': a string of at most 65535 characters."
                ))),
            }
        }
    }
}

/// Writes every settable attribute of `img` back.
/// Sets one (already checked) attribute on `img`.
fn apply(img: &mut Image, key: &str, v: Value) {
    let s = |v: &Value| v.as_str().map(str::to_owned);
    match key {
        "name" => img.name = s(&v),
        "disk_format" => img.disk_format = s(&v),
        "container_format" => img.container_format = s(&v),
        "visibility" => img.visibility = s(&v).unwrap_or_default(),
        "protected" => img.protected = flag(v.as_bool().unwrap_or(false)),
        "os_hidden" => img.os_hidden = flag(v.as_bool().unwrap_or(false)),
        "min_disk" => img.min_disk = v.as_i64().unwrap_or(0),
        "min_ram" => img.min_ram = v.as_i64().unwrap_or(0),
        "tags" => {
            let mut t: Vec<String> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            t.sort();
            t.dedup();
            img.tags = serde_json::to_string(&t).unwrap_or_else(|_| "[]".into());
        }
        k => {
            let mut p = img.props();
            if v.is_null() {
                p.remove(k);
            } else {
                p.insert(k.to_owned(), v);
            }
            img.properties = serde_json::to_string(&p).unwrap_or_else(|_| "{}".into());
        }
    }
}

// ---- images ----

async fn create(St(s): St<State>, Caller(c): Caller, JsonBody(body): JsonBody) -> Result<Response> {
    let owner = c
        .project_id()
        .ok_or_else(|| {
            ImageError::Forbidden("Images belong to projects: use a project-scoped token.".into())
        })?
        .to_owned();
    if !c.is_admin() && !c.has_role("member") {
        return Err(ImageError::Forbidden(
            "You are not authorized to create images.".into(),
        ));
    }
    let Value::Object(fields) = body else {
        return Err(bad("The request body must be a JSON object."));
    };
    if fields.len() > 256 {
        return Err(bad("Too many attributes."));
    }
    let id = match fields.get("id") {
        None | Some(Value::Null) => ids::uuid_id(),
        Some(Value::String(id))
            if id.len() == 36 && id.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-') =>
        {
            id.to_lowercase()
        }
        Some(_) => return Err(bad("Invalid value for 'id': a UUID.")),
    };
    if s.get(&id).await?.is_some() {
        return Err(ImageError::Conflict(format!(
            "An image with identifier {id} already exists"
        )));
    }
    let now = time::now_micros();
    let mut img = Image {
        id,
        name: None,
        status: "queued".into(),
        visibility: "shared".into(),
        protected: 0,
        os_hidden: 0,
        owner,
        disk_format: None,
        container_format: None,
        size: None,
        virtual_size: None,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        tags: "[]".into(),
        properties: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    for (k, v) in fields {
        if k == "id" {
            continue;
        }
        if k == "owner" && c.is_admin() {
            if let Some(o) = v.as_str() {
                img.owner = o.to_owned();
            }
            continue;
        }
        check_attr(&k, &v, &c, "queued")?;
        apply(&mut img, &k, v);
    }
    s.insert_queued(&img).await?;
    tracing::info!(image_id = %img.id, "image created");
    Ok(json_ok(StatusCode::CREATED, img.render()))
}

/// The query parameters of an image list that are not property filters.
const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "virtual_size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
];

/// A list's order as Glance takes it: `sort=key[:dir],…`, or `sort_key`
/// with `sort_dir` (desc by default); none given: newest first, as the
/// rows come.
fn sort_order(p: &std::collections::HashMap<String, String>) -> Result<Vec<(String, bool)>> {
    let dir = |d: &str| match d {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(bad(format!("Invalid sort direction: {other}"))),
    };
    let mut order = Vec::new();
    if let Some(sort) = p.get("sort") {
        if p.contains_key("sort_key") || p.contains_key("sort_dir") {
            return Err(bad(
                "The 'sort' parameter can't be used with 'sort_key' or 'sort_dir'.",
            ));
        }
        for part in sort.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (key, d) = part.split_once(':').unwrap_or((part, "desc"));
            order.push((key.to_owned(), dir(d)?));
        }
    } else if let Some(key) = p.get("sort_key") {
        order.push((
            key.clone(),
            dir(p.get("sort_dir").map_or("desc", String::as_str))?,
        ));
    } else if let Some(d) = p.get("sort_dir") {
        order.push(("created_at".to_owned(), dir(d)?));
    }
    if let Some((k, _)) = order.iter().find(|(k, _)| !SORT_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("Invalid sort key: {k}")));
    }
    Ok(order)
}

/// What an image sorts by for `key`: a number, or text.
fn sort_value(i: &Image, key: &str) -> (i64, String) {
    let text = |t: Option<&str>| (0, t.unwrap_or_default().to_owned());
    match key {
        "size" => (i.size.unwrap_or(-1), String::new()),
        "virtual_size" => (i.virtual_size.unwrap_or(-1), String::new()),
        "created_at" => (i.created_at, String::new()),
        "updated_at" => (i.updated_at, String::new()),
        "min_disk" => (i.min_disk, String::new()),
        "min_ram" => (i.min_ram, String::new()),
        "name" => text(i.name.as_deref()),
        "status" => text(Some(&i.status)),
        "container_format" => text(i.container_format.as_deref()),
        "disk_format" => text(i.disk_format.as_deref()),
        "visibility" => text(Some(&i.visibility)),
        "owner" => text(Some(&i.owner)),
        _ => text(Some(&i.id)),
    }
}

const LIST_PARAMS: &[&str] = &[
    "name",
    "status",
    "owner",
    "tag",
    "os_hidden",
    "id",
    "limit",
    "marker",
    "visibility",
    "member_status",
    "sort",
    "sort_key",
    "sort_dir",
    "size_min",
    "size_max",
    "protected",
    "disk_format",
    "container_format",
    "created_at",
    "updated_at",
];

async fn list(St(s): St<State>, Caller(c): Caller, Params(p): Params) -> Result<Response> {
    let member_status = p
        .get("member_status")
        .map(String::as_str)
        .unwrap_or("accepted");
    let want_vis = p.get("visibility").map(String::as_str);
    if let Some(v) = want_vis {
        if v != "all" && !VISIBILITIES.contains(&v) {
            return Err(bad(format!("Invalid visibility value: {v}")));
        }
    }
    let mut rows = s.listable(&c, want_vis, member_status).await?;
    if let Some(name) = p.get("name") {
        rows.retain(|i| i.name.as_deref() == Some(name.as_str()));
    }
    if let Some(st) = p.get("status") {
        rows.retain(|i| i.status == *st);
    }
    if let Some(o) = p.get("owner") {
        rows.retain(|i| i.owner == *o);
    }
    if let Some(t) = p.get("tag") {
        rows.retain(|i| i.tag_list().contains(t));
    }
    if let Some(h) = p.get("os_hidden") {
        let want = h == "true";
        rows.retain(|i| (i.os_hidden != 0) == want);
    } else {
        rows.retain(|i| i.os_hidden == 0);
    }
    for key in ["disk_format", "container_format"] {
        if let Some(want) = p.get(key) {
            rows.retain(|i| {
                let have = if key == "disk_format" {
                    &i.disk_format
                } else {
                    &i.container_format
                };
                have.as_deref() == Some(want)
            });
        }
    }
    if let Some(want) = p.get("protected") {
        let want = want == "true";
        rows.retain(|i| (i.protected != 0) == want);
    }
    // Any other key filters on a property of that name, as in Glance.
    for (k, v) in p.iter().filter(|(k, _)| !LIST_PARAMS.contains(&k.as_str())) {
        rows.retain(|i| match i.props().get(k) {
            Some(Value::String(s)) => s == v,
            Some(other) => serde_json::from_str::<Value>(v).ok().as_ref() == Some(other),
            None => false,
        });
    }
    if let Some(idf) = p.get("id") {
        let ids: Vec<&str> = match idf.strip_prefix("in:") {
            Some(list) => list.split(',').map(|x| x.trim_matches('"')).collect(),
            None => vec![idf.as_str()],
        };
        rows.retain(|i| ids.contains(&i.id.as_str()));
    }
    let order = sort_order(&p)?;
    if !order.is_empty() {
        // (stable: rows already newest first break ties as Glance does)
        rows.sort_by(|a, b| {
            for (key, asc) in &order {
                let o = sort_value(a, key).cmp(&sort_value(b, key));
                let o = if *asc { o } else { o.reverse() };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let limit = match p.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| bad("limit must be a non-negative integer"))?
            .min(1000),
        None => 25,
    };
    if let Some(m) = p.get("marker") {
        let pos = rows
            .iter()
            .position(|i| i.id == *m)
            .ok_or_else(|| bad(format!("marker {m} not found")))?;
        rows.drain(..=pos);
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut body = json!({"images": rows.iter().map(Image::render).collect::<Vec<_>>(),
                          "first": "/v2/images", "schema": "/v2/schemas/images"});
    if more {
        if let Some(last) = rows.last() {
            let mut q: Vec<(String, String)> =
                p.into_iter().filter(|(k, _)| k != "marker").collect();
            q.push(("marker".into(), last.id.clone()));
            let qs = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish();
            body["next"] = json!(format!("/v2/images?{qs}"));
        }
    }
    Ok(json_ok(StatusCode::OK, body))
}

async fn show(St(s): St<State>, Caller(c): Caller, Path(id): Path<String>) -> Result<Response> {
    Ok(json_ok(StatusCode::OK, s.visible(&c, &id).await?.render()))
}

/// `GET /v2/images/{id}/tasks` (Glance 2.12): the import tasks of an
/// image. Images here are uploaded or snapshotted, never imported, so an
/// image has none.
async fn image_tasks(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    s.visible(&c, &id).await?;
    Ok(json_ok(StatusCode::OK, json!({"tasks": []})))
}

async fn update(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/openstack-images-v2.1-json-patch")
        && !ct.starts_with("application/openstack-images-v2.0-json-patch")
    {
        return Err(ImageError::Unsupported(format!(
            "Unsupported Content-Type {ct:?}: use application/openstack-images-v2.1-json-patch"
        )));
    }
    let ops: Value = ferro_common::body::read_json_body(body).await?;
    let mut img = s.modifiable(&c, &id).await?;
    let ops = ops
        .as_array()
        .ok_or_else(|| bad("A JSON patch is a list of operations."))?;
    for op in ops {
        let op = &old_patch_op(op);
        let kind = op["op"]
            .as_str()
            .ok_or_else(|| bad("Each patch operation needs an 'op'."))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| bad("Each patch operation needs a 'path'."))?;
        let key = path
            .strip_prefix('/')
            .ok_or_else(|| bad(format!("Invalid path {path:?}.")))?;
        if key.contains('/') && !key.starts_with("tags/") {
            return Err(bad(format!("Invalid path {path:?}.")));
        }
        match kind {
            "add" | "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| bad("'add' and 'replace' need a 'value'."))?;
                if kind == "replace" && !CORE.contains(&key) && !img.props().contains_key(key) {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
                check_attr(key, &value, &c, &img.status)?;
                apply(&mut img, key, value);
            }
            "remove" => {
                if CORE.contains(&key) {
                    return Err(ImageError::Forbidden(format!(
                        "Attribute '{key}' can't be removed."
                    )));
                }
                if !img.props().contains_key(key) {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
                apply(&mut img, key, Value::Null);
            }
            other => return Err(bad(format!("Unsupported patch operation {other:?}."))),
        }
    }
    s.save(&img).await?;
    let img = s.get(&id).await?.ok_or_else(|| ImageError::no_image(&id))?;
    Ok(json_ok(StatusCode::OK, img.render()))
}

async fn delete(St(s): St<State>, Caller(c): Caller, Path(id): Path<String>) -> Result<Response> {
    s.delete(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn upload(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let img = s.modifiable(&c, &id).await?;
    if img.disk_format.is_none() || img.container_format.is_none() {
        return Err(bad(
            "Properties disk_format, container_format must be set prior to saving data.",
        ));
    }
    s.upload(&img, body).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn download(St(s): St<State>, Caller(c): Caller, Path(id): Path<String>) -> Result<Response> {
    let img = s.visible(&c, &id).await?;
    if img.status == "deactivated" && !c.is_admin() {
        return Err(ImageError::Forbidden(
            "The requested image has been deactivated. Image data download is forbidden.".into(),
        ));
    }
    if img.status != "active" {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let file = tokio::fs::File::open(s.store.data_path(&id)).await?;
    let len = file.metadata().await?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "application/octet-stream"
            .parse()
            .unwrap_or(header::HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    if let Some(md5) = img.checksum.as_deref().and_then(|c| hex::decode(c).ok()) {
        if let Ok(v) = base64::engine::general_purpose::STANDARD
            .encode(md5)
            .parse()
        {
            h.insert("content-md5", v);
        }
    }
    Ok(resp)
}

async fn add_tag(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let mut img = s.modifiable(&c, &id).await?;
    let mut tags = img.tag_list();
    tags.push(tag);
    let v = json!(tags);
    check_attr("tags", &v, &c, &img.status)?;
    apply(&mut img, "tags", v);
    s.save(&img).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_tag(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let mut img = s.modifiable(&c, &id).await?;
    let mut tags = img.tag_list();
    let before = tags.len();
    tags.retain(|t| *t != tag);
    if tags.len() == before {
        return Err(ImageError::NotFound(format!("Tag {tag} not found")));
    }
    apply(&mut img, "tags", json!(tags));
    s.save(&img).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An operation of the older v2.0 patch media type (`{"replace": "/name",
/// "value": …}`: the operation is the key, its value the path) as a v2.1 one.
fn old_patch_op(op: &Value) -> Value {
    if op.get("op").is_some() {
        return op.clone();
    }
    for kind in ["add", "replace", "remove"] {
        if let Some(path) = op.get(kind) {
            let mut v = json!({"op": kind, "path": path});
            if let Some(value) = op.get("value") {
                v["value"] = value.clone();
            }
            return v;
        }
    }
    op.clone()
}

async fn set_active_state(
    s: &ImageService,
    c: &AuthContext,
    id: &str,
    from: &str,
    to: &str,
) -> Result<Response> {
    let img = s.visible(c, id).await?;
    // Glance's default: an admin, or a member of the owning project
    let owner_member = c.has_role("member") && Some(img.owner.as_str()) == c.project_id();
    if !c.is_admin() && !owner_member {
        return Err(ImageError::Forbidden(
            "Only administrators and the image's owner may deactivate or reactivate it.".into(),
        ));
    }
    if img.status == to {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if img.status != from {
        return Err(ImageError::Forbidden(format!(
            "Not allowed to change image {id} from {} to {to}.",
            img.status
        )));
    }
    s.set_status(id, to).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn deactivate(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    set_active_state(&s, &c, &id, "active", "deactivated").await
}

async fn reactivate(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    set_active_state(&s, &c, &id, "deactivated", "active").await
}

// ---- members ----

async fn list_members(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let img = s.visible(&c, &id).await?;
    if img.visibility != "shared" {
        return Err(ImageError::Forbidden(
            "Only shared images have members.".into(),
        ));
    }
    let mut rows: Vec<Member> =
        sqlx::query_as("SELECT * FROM image_members WHERE image_id = $1 ORDER BY member_id")
            .bind(&id)
            .fetch_all(s.pool())
            .await?;
    if !ImageService::can_modify(&c, &img) {
        rows.retain(|m| Some(m.member_id.as_str()) == c.project_id());
    }
    Ok(json_ok(
        StatusCode::OK,
        json!({"members": rows.iter().map(Member::render).collect::<Vec<_>>(), "schema": "/v2/schemas/members"}),
    ))
}

async fn add_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let img = s.modifiable(&c, &id).await?;
    if img.visibility != "shared" {
        return Err(ImageError::Forbidden(format!(
            "Image {id} is not shared: only shared images have members."
        )));
    }
    let member = body["member"]
        .as_str()
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .ok_or_else(|| bad("'member' must be a project id."))?;
    if s.member(&id, member).await?.is_some() {
        return Err(ImageError::Conflict(format!(
            "{member} is already a member of image {id}"
        )));
    }
    let now = time::now_micros();
    let m = Member {
        image_id: id.clone(),
        member_id: member.to_owned(),
        status: "pending".into(),
        created_at: now,
        updated_at: now,
    };
    sqlx::query("INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
        .bind(&m.image_id)
        .bind(&m.member_id)
        .bind(&m.status)
        .bind(now)
        .execute(s.pool())
        .await?;
    Ok(json_ok(StatusCode::OK, m.render()))
}

async fn show_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    let img = s.visible(&c, &id).await?;
    if !ImageService::can_modify(&c, &img) && c.project_id() != Some(member.as_str()) {
        return Err(ImageError::NotFound(format!(
            "{member} is not a member of image {id}"
        )));
    }
    let m = s
        .member(&id, &member)
        .await?
        .ok_or_else(|| ImageError::NotFound(format!("{member} is not a member of image {id}")))?;
    Ok(json_ok(StatusCode::OK, m.render()))
}

async fn update_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, member)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    s.visible(&c, &id).await?;
    if c.project_id() != Some(member.as_str()) {
        return Err(ImageError::Forbidden(
            "Only the member itself may accept or reject an image.".into(),
        ));
    }
    let status = body["status"]
        .as_str()
        .filter(|v| ["accepted", "rejected", "pending"].contains(v))
        .ok_or_else(|| bad("'status' must be accepted, rejected or pending."))?;
    let mut m = s
        .member(&id, &member)
        .await?
        .ok_or_else(|| ImageError::NotFound(format!("{member} is not a member of image {id}")))?;
    m.status = status.to_owned();
    m.updated_at = time::now_micros();
    sqlx::query("UPDATE image_members SET status = $1, updated_at = $2 WHERE image_id = $3 AND member_id = $4")
        .bind(&m.status)
        .bind(m.updated_at)
        .bind(&id)
        .bind(&member)
        .execute(s.pool())
        .await?;
    Ok(json_ok(StatusCode::OK, m.render()))
}

async fn remove_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    s.modifiable(&c, &id).await?;
    let n = sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member_id = $2")
        .bind(&id)
        .bind(&member)
        .execute(s.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ImageError::NotFound(format!(
            "{member} is not a member of image {id}"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- schemas (enough for clients that read them) ----

fn image_schema() -> Value {
    let mut props = Map::new();
    for k in CORE {
        props.insert((*k).to_owned(), json!({}));
    }
    json!({"name": "image", "properties": props, "additionalProperties": {"type": "string"},
           "links": [{"href": "{self}", "rel": "self"}, {"href": "{file}", "rel": "enclosure"}, {"href": "{schema}", "rel": "describedby"}]})
}

async fn schema_image() -> Response {
    json_ok(StatusCode::OK, image_schema())
}

async fn schema_images() -> Response {
    json_ok(
        StatusCode::OK,
        json!({"name": "images", "properties": {"images": {"type": "array", "items": image_schema()},
        "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}}}),
    )
}

/// An image member, as `GET /v2/images/{id}/members/{member}` answers.
fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "image_id": {"type": "string", "description": "An identifier for the image",
                         "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "member_id": {"type": "string", "description": "An identifier for the image member (the project)"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                       "description": "The status of this image member"},
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": true}
        }
    })
}

async fn schema_member() -> Response {
    json_ok(StatusCode::OK, member_schema())
}

async fn schema_members() -> Response {
    json_ok(
        StatusCode::OK,
        json!({"name": "members", "properties": {"members": {"type": "array", "items": member_schema()},
               "schema": {"type": "string"}},
               "links": [{"href": "{schema}", "rel": "describedby"}]}),
    )
}
