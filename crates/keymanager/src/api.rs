//! Barbican v1 routes: version discovery at `/` (300, as Barbican
//! answers; python-barbicanclient reads the key-manager microversion range
//! there), secrets (`/v1/secrets`, their `/payload`), containers
//! (`/v1/containers`). Lists take `limit` (10 by default, at most 100),
//! `offset` and `name`, and carry `total` and `next`/`previous` links.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferro_common::auth::token_of;
use ferro_common::AuthContext;
use serde_json::{json, Value};

use crate::error::{KmError, Result};
use crate::service::{ContainerCreate, KeyManager, Page, SecretCreate};

pub type State = Arc<KeyManager>;
type St = AxState<State>;

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/v1", get(version))
        .route("/v1/", get(version))
        // python-barbicanclient posts to `/v1/secrets/` (with a slash).
        .route("/v1/secrets", get(list_secrets).post(store_secret))
        .route("/v1/secrets/", get(list_secrets).post(store_secret))
        .route("/v1/secrets/{id}", get(show_secret).delete(delete_secret))
        .route("/v1/secrets/{id}/payload", get(payload))
        .route(
            "/v1/containers",
            get(list_containers).post(create_container),
        )
        .route(
            "/v1/containers/",
            get(list_containers).post(create_container),
        )
        .route(
            "/v1/containers/{id}",
            get(show_container).delete(delete_container),
        )
        .fallback(|| async { KmError::NotFound("The resource could not be found.".into()) })
        .with_state(state)
}

/// The authenticated caller.
pub struct Ctx(pub AuthContext);

impl FromRequestParts<State> for Ctx {
    type Rejection = KmError;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let token = token_of(&parts.headers).ok_or(KmError::Unauthorized)?;
        let auth = s
            .auth
            .authenticate(token)
            .await
            .ok_or(KmError::Unauthorized)?;
        Ok(Ctx(auth))
    }
}

fn v1(s: &KeyManager) -> Value {
    json!({
        "id": "v1", "status": "CURRENT", "min_version": "1.0", "max_version": "1.1",
        "links": [{"rel": "self", "href": format!("{}/v1/", s.base_url)}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.key-manager-v1+json"}],
    })
}

async fn versions(AxState(s): St) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": {"values": [v1(&s)]}})),
    )
        .into_response()
}

async fn version(AxState(s): St) -> Response {
    axum::Json(json!({ "version": v1(&s) })).into_response()
}

/// `limit`, `offset` and `name` of a list request.
fn paging(q: Option<&str>) -> Result<(i64, i64, Option<String>)> {
    let mut limit = 10;
    let mut offset = 0;
    let mut name = None;
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        let num = |what: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| KmError::bad(format!("Invalid value for '{what}': {v}")))
        };
        match k.as_ref() {
            "limit" => limit = num("limit")?.min(100),
            "offset" => offset = num("offset")?,
            "name" => name = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok((limit, offset, name))
}

fn listing<T>(s: &KeyManager, what: &str, page: &Page<T>, items: Vec<Value>) -> Response {
    let mut body = json!({ what: items, "total": page.total });
    let link = |offset: i64| {
        format!(
            "{}/v1/{what}?limit={}&offset={offset}",
            s.base_url, page.limit
        )
    };
    if page.limit > 0 && page.offset + page.limit < page.total {
        body["next"] = json!(link(page.offset + page.limit));
    }
    if page.offset > 0 {
        body["previous"] = json!(link((page.offset - page.limit).max(0)));
    }
    axum::Json(body).into_response()
}

fn created(key: &str, href: String) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, href.clone())],
        axum::Json(json!({ key: href })),
    )
        .into_response()
}

async fn store_secret(AxState(s): St, Ctx(ctx): Ctx, req: Request) -> Result<Response> {
    let body: SecretCreate = ferro_common::read_json(req).await?;
    let secret = s.store_secret(&ctx, body).await?;
    Ok(created(
        "secret_ref",
        format!("{}/v1/secrets/{}", s.base_url, secret.id),
    ))
}

async fn list_secrets(AxState(s): St, Ctx(ctx): Ctx, req: Request) -> Result<Response> {
    let (limit, offset, name) = paging(req.uri().query())?;
    let page = s.list_secrets(&ctx, name.as_deref(), limit, offset).await?;
    let items = page.items.iter().map(|x| x.render(&s.base_url)).collect();
    Ok(listing(&s, "secrets", &page, items))
}

fn accept(h: &HeaderMap) -> Option<&str> {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

fn raw(content_type: String, bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        bytes,
    )
        .into_response()
}

/// The metadata; with an `Accept` other than JSON, the payload (Barbican's
/// older way to read one).
async fn show_secret(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    match accept(&headers) {
        Some(a) if !a.contains("json") && !a.contains("*/*") => {
            let (t, bytes) = s.payload(&ctx, &id, Some(a)).await?;
            Ok(raw(t, bytes))
        }
        _ => Ok(axum::Json(s.secret(&ctx, &id).await?.render(&s.base_url)).into_response()),
    }
}

async fn payload(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let (t, bytes) = s.payload(&ctx, &id, accept(&headers)).await?;
    Ok(raw(t, bytes))
}

async fn delete_secret(AxState(s): St, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    s.delete_secret(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_container(AxState(s): St, Ctx(ctx): Ctx, req: Request) -> Result<Response> {
    let body: ContainerCreate = ferro_common::read_json(req).await?;
    let (c, _) = s.create_container(&ctx, body).await?;
    Ok(created(
        "container_ref",
        format!("{}/v1/containers/{}", s.base_url, c.id),
    ))
}

async fn list_containers(AxState(s): St, Ctx(ctx): Ctx, req: Request) -> Result<Response> {
    let (limit, offset, name) = paging(req.uri().query())?;
    let page = s
        .list_containers(&ctx, name.as_deref(), limit, offset)
        .await?;
    let items = page
        .items
        .iter()
        .map(|(c, m)| c.render(&s.base_url, m))
        .collect();
    Ok(listing(&s, "containers", &page, items))
}

async fn show_container(AxState(s): St, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let (c, m) = s.container(&ctx, &id).await?;
    Ok(axum::Json(c.render(&s.base_url, &m)).into_response())
}

async fn delete_container(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_container(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
