//! Neutron v2.0 routes, extractors and the list machinery every collection
//! shares (filters on any attribute, `fields`, `limit`/`marker` paging).

mod misc;
mod networks;
mod ports;
mod routers;
mod security;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use ferro_common::auth::token_of;
use ferro_common::AuthContext;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::error::{NetworkError, Result};
use crate::service::NetworkService;

pub type State = Arc<NetworkService>;

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(misc::versions))
        .route("/v2.0", get(misc::resources))
        .route("/v2.0/", get(misc::resources))
        .route("/v2.0/extensions", get(misc::extensions))
        .route("/v2.0/extensions/{alias}", get(misc::extension))
        .route("/v2.0/networks", get(networks::list).post(networks::create))
        .route(
            "/v2.0/networks/{id}",
            get(networks::show)
                .put(networks::update)
                .delete(networks::delete),
        )
        .route(
            "/v2.0/subnets",
            get(networks::list_subnets).post(networks::create_subnet),
        )
        .route(
            "/v2.0/subnets/{id}",
            get(networks::show_subnet)
                .put(networks::update_subnet)
                .delete(networks::delete_subnet),
        )
        .route("/v2.0/ports", get(ports::list).post(ports::create))
        .route(
            "/v2.0/ports/{id}",
            get(ports::show).put(ports::update).delete(ports::delete),
        )
        .route("/v2.0/routers", get(routers::list).post(routers::create))
        .route(
            "/v2.0/routers/{id}",
            get(routers::show)
                .put(routers::update)
                .delete(routers::delete),
        )
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(routers::add_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            put(routers::remove_interface),
        )
        .route(
            "/v2.0/floatingips",
            get(routers::list_fips).post(routers::create_fip),
        )
        .route(
            "/v2.0/floatingips/{id}",
            get(routers::show_fip)
                .put(routers::update_fip)
                .delete(routers::delete_fip),
        )
        .route(
            "/v2.0/security-groups",
            get(security::list).post(security::create),
        )
        .route(
            "/v2.0/security-groups/{id}",
            get(security::show)
                .put(security::update)
                .delete(security::delete),
        )
        .route(
            "/v2.0/security-group-rules",
            get(security::list_rules).post(security::create_rule),
        )
        .route(
            "/v2.0/security-group-rules/{id}",
            get(security::show_rule).delete(security::delete_rule),
        )
        .route("/v2.0/quotas", get(misc::quotas_list))
        .route(
            "/v2.0/quotas/{project}",
            get(misc::quota_show)
                .put(misc::quota_update)
                .delete(misc::quota_reset),
        )
        .route("/v2.0/quotas/{project}/default", get(misc::quota_default))
        .route("/v2.0/quotas/{project}/details", get(misc::quota_details))
        .route("/v2.0/agents", get(misc::agents))
        .route("/v2.0/agents/{id}", get(misc::agent))
        .route("/v2.0/network-ip-availabilities", get(misc::availabilities))
        .route(
            "/v2.0/network-ip-availabilities/{id}",
            get(misc::availability),
        )
        .fallback(|| async {
            NetworkError::not_found("HTTPNotFound", "The resource could not be found.")
        })
        .with_state(state)
}

/// The authenticated caller.
pub struct Ctx(pub AuthContext);

impl FromRequestParts<State> for Ctx {
    type Rejection = NetworkError;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let token = token_of(&parts.headers).ok_or_else(NetworkError::unauthorized)?;
        let auth = s
            .auth
            .authenticate(token)
            .await
            .ok_or_else(NetworkError::unauthorized)?;
        Ok(Ctx(auth))
    }
}

/// A JSON request body.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = NetworkError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        Ok(Body(ferro_common::read_json(req).await?))
    }
}

impl Body {
    /// The object under `key` (`{"network": {…}}`), parsed into `T`.
    pub fn resource<T: DeserializeOwned>(self, key: &str) -> Result<T> {
        let Value::Object(mut m) = self.0 else {
            return Err(NetworkError::bad(
                "Invalid request body: expected a JSON object.",
            ));
        };
        let Some(inner) = m.remove(key) else {
            if m.contains_key(&format!("{key}s")) {
                return Err(NetworkError::bad(format!(
                    "Bulk operation on {key}s is not supported here; send one {key} at a time."
                )));
            }
            return Err(NetworkError::bad(format!(
                "Resource body required: expected an object under '{key}'."
            )));
        };
        parse_one(key, inner)
    }

    /// One object under `key`, or Neutron's bulk form: a list under
    /// `key`s (`{"networks": [{…}, {…}]}`), every item parsed first.
    pub fn one_or_many<T: DeserializeOwned>(self, key: &str) -> Result<Bulk<T>> {
        let Value::Object(mut m) = self.0 else {
            return Err(NetworkError::bad(
                "Invalid request body: expected a JSON object.",
            ));
        };
        match m.remove(&format!("{key}s")) {
            Some(Value::Array(items)) if !m.contains_key(key) => {
                if items.is_empty() {
                    return Err(NetworkError::bad(format!(
                        "Invalid input for {key}s: the list is empty."
                    )));
                }
                let parsed = items
                    .into_iter()
                    .map(|v| parse_one(key, v))
                    .collect::<Result<Vec<T>>>()?;
                Ok(Bulk::Many(parsed))
            }
            Some(_) => Err(NetworkError::bad(format!(
                "Invalid input for {key}s: expected a list of objects."
            ))),
            None => Ok(Bulk::One(Body(Value::Object(m)).resource(key)?)),
        }
    }

    /// The object under `key`, unparsed.
    pub fn object(self, key: &str) -> Result<Value> {
        match self.0 {
            Value::Object(mut m) => match m.remove(key) {
                Some(v @ Value::Object(_)) => Ok(v),
                _ => Err(NetworkError::bad(format!(
                    "Resource body required: expected an object under '{key}'."
                ))),
            },
            _ => Err(NetworkError::bad(
                "Invalid request body: expected a JSON object.",
            )),
        }
    }
}

/// A create request: one resource, or several at once.
pub enum Bulk<T> {
    One(T),
    Many(Vec<T>),
}

/// Creates every item, in order (`|req| create-expression`); when one
/// fails, deletes those already made, newest first (`|made| undo-expression`),
/// and answers that failure, as Neutron's bulk create does. Evaluates to the
/// list made. (A crash part-way leaves the ones made: visible, owned,
/// deletable.)
macro_rules! create_all {
    ($items:expr, |$req:ident| $create:expr, |$made:ident| $undo:expr) => {{
        let mut made = Vec::new();
        let mut failed = None;
        for $req in $items {
            match $create {
                Ok(r) => made.push(r),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            for $made in made.iter().rev() {
                if let Err(u) = $undo {
                    tracing::warn!(error = %u, "undoing a bulk create left one behind");
                }
            }
            return Err(e);
        }
        made
    }};
}
pub(crate) use create_all;

fn parse_one<T: DeserializeOwned>(key: &str, inner: Value) -> Result<T> {
    {
        if !inner.is_object() {
            return Err(NetworkError::bad(format!(
                "Invalid input for {key}: expected an object."
            )));
        }
        serde_json::from_value(inner).map_err(|e| {
            let msg = e.to_string();
            if let Some(rest) = msg.strip_prefix("unknown field `") {
                let field = rest.split('`').next().unwrap_or("");
                NetworkError::bad(format!("Unrecognized attribute(s) '{field}'"))
            } else {
                NetworkError::bad(format!("Invalid input for {key}: {msg}"))
            }
        })
    }
}

/// Query parameters, keeping repeats (`id=a&id=b`).
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
}

/// Keys that steer a list rather than filter it.
const CONTROL: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
    "all_projects",
    "all_tenants",
];

fn matches_value(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => match want.to_ascii_lowercase().as_str() {
            "true" | "1" => *b,
            "false" | "0" => !*b,
            _ => false,
        },
        Value::Number(n) => n.to_string() == want,
        Value::Null => {
            want.is_empty()
                || want.eq_ignore_ascii_case("none")
                || want.eq_ignore_ascii_case("null")
        }
        Value::Array(items) => {
            // fixed_ips=ip_address=…, fixed_ips=subnet_id=…
            if let Some((k, val)) = want.split_once('=') {
                return items
                    .iter()
                    .any(|i| i.get(k).and_then(Value::as_str) == Some(val));
            }
            items.iter().any(|i| matches_value(i, want))
        }
        Value::Object(_) => false,
    }
}

/// Renders a collection: filters on any attribute (repeats are ORed),
/// `fields`, then `limit`/`marker` with a next link.
pub fn list_reply(state: &State, collection: &str, items: Vec<Value>, q: &Query) -> Response {
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, v) in &q.0 {
        if CONTROL.contains(&k.as_str()) {
            continue;
        }
        match filters.iter_mut().find(|(key, _)| key == k) {
            Some((_, vals)) => vals.push(v),
            None => filters.push((k, vec![v])),
        }
    }
    let mut out: Vec<Value> = items
        .into_iter()
        .filter(|item| {
            filters.iter().all(|(k, vals)| match item.get(*k) {
                Some(v) => vals.iter().any(|want| matches_value(v, want)),
                // Filters on attributes a resource doesn't have match nothing.
                None => false,
            })
        })
        .collect();
    if let Some(m) = q.get("marker") {
        if let Some(pos) = out
            .iter()
            .position(|i| i.get("id").and_then(Value::as_str) == Some(m))
        {
            out.drain(..=pos);
        }
    }
    let mut links = Vec::new();
    if let Some(limit) = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
    {
        if out.len() > limit {
            out.truncate(limit);
            if let Some(last) = out.last().and_then(|i| i.get("id")).and_then(Value::as_str) {
                links.push(json!({"rel": "next", "href": format!("{}/v2.0/{collection}?limit={limit}&marker={last}", state.base_url)}));
            }
        }
    }
    let fields: Vec<&str> =
        q.0.iter()
            .filter(|(k, _)| k == "fields")
            .map(|(_, v)| v.as_str())
            .collect();
    if !fields.is_empty() {
        for item in &mut out {
            if let Value::Object(m) = item {
                let kept: Map<String, Value> = m
                    .iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                *m = kept;
            }
        }
    }
    let mut body = Map::new();
    body.insert(collection.replace('-', "_"), Value::Array(out));
    if !links.is_empty() {
        body.insert(
            format!("{}_links", collection.replace('-', "_")),
            Value::Array(links),
        );
    }
    (StatusCode::OK, axum::Json(Value::Object(body))).into_response()
}

/// `{"<key>": value}` with a status.
pub fn one(status: StatusCode, key: &str, v: Value) -> Response {
    (status, axum::Json(json!({ key: v }))).into_response()
}

/// Keeps only `fields` of a shown resource, when asked.
pub fn pick_fields(mut v: Value, q: &Query) -> Value {
    let fields: Vec<&str> =
        q.0.iter()
            .filter(|(k, _)| k == "fields")
            .map(|(_, v)| v.as_str())
            .collect();
    if let (false, Value::Object(m)) = (fields.is_empty(), &mut v) {
        m.retain(|k, _| fields.contains(&k.as_str()));
    }
    v
}
