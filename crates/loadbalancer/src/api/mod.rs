//! Octavia v2 routes and extractors. Every route answers under `/v2` and
//! `/v2.0` (python-octaviaclient appends `/v2.0` to the catalog's URL).
//!
//! Lists filter on any attribute the objects show (`?name=web`,
//! `?id=…`, `?operating_status=ONLINE`), take `fields`, `sort`
//! (`key:dir`, or `sort_key`/`sort_dir`), `limit` and `marker`, and carry
//! `<key>_links` with a `next` link when a page was cut.

mod handlers;
mod l7;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferro_common::auth::token_of;
use ferro_common::AuthContext;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{LbError, Result};
use crate::service::LoadBalancerService;

pub type State = Arc<LoadBalancerService>;

fn resource_routes(v: &str) -> Router<State> {
    use handlers::*;
    let p = format!("{v}/lbaas");
    Router::new()
        .route(
            &format!("{p}/loadbalancers"),
            get(list_balancers).post(create_balancer),
        )
        .route(
            &format!("{p}/loadbalancers/{{id}}"),
            get(show_balancer)
                .put(update_balancer)
                .delete(delete_balancer),
        )
        .route(
            &format!("{p}/loadbalancers/{{id}}/stats"),
            get(balancer_stats),
        )
        .route(
            &format!("{p}/loadbalancers/{{id}}/status"),
            get(balancer_status),
        )
        .route(
            &format!("{p}/listeners"),
            get(list_listeners).post(create_listener),
        )
        .route(
            &format!("{p}/listeners/{{id}}"),
            get(show_listener)
                .put(update_listener)
                .delete(delete_listener),
        )
        .route(&format!("{p}/pools"), get(list_pools).post(create_pool))
        .route(
            &format!("{p}/pools/{{id}}"),
            get(show_pool).put(update_pool).delete(delete_pool),
        )
        .route(
            &format!("{p}/pools/{{id}}/members"),
            get(list_members).post(create_member),
        )
        .route(
            &format!("{p}/pools/{{id}}/members/{{member}}"),
            get(show_member).put(update_member).delete(delete_member),
        )
        .route(
            &format!("{p}/healthmonitors"),
            get(list_monitors).post(create_monitor),
        )
        .route(
            &format!("{p}/healthmonitors/{{id}}"),
            get(show_monitor).put(update_monitor).delete(delete_monitor),
        )
        .route(
            &format!("{p}/l7policies"),
            get(l7::list_policies).post(l7::create_policy),
        )
        .route(
            &format!("{p}/l7policies/{{id}}"),
            get(l7::show_policy)
                .put(l7::update_policy)
                .delete(l7::delete_policy),
        )
        .route(
            &format!("{p}/l7policies/{{id}}/rules"),
            get(l7::list_rules).post(l7::create_rule),
        )
        .route(
            &format!("{p}/l7policies/{{id}}/rules/{{rule}}"),
            get(l7::show_rule)
                .put(l7::update_rule)
                .delete(l7::delete_rule),
        )
        .route(&format!("{p}/quotas"), get(list_quotas))
        .route(&format!("{p}/quotas/defaults"), get(quota_defaults))
        .route(
            &format!("{p}/quotas/{{project}}"),
            get(show_quota).put(set_quota).delete(reset_quota),
        )
        .route(&format!("{p}/providers"), get(providers))
        .route(&format!("{p}/flavors"), get(flavors))
        .route(&format!("{p}/availabilityzones"), get(zones))
}

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(handlers::versions))
        .merge(resource_routes("/v2"))
        .merge(resource_routes("/v2.0"))
        .fallback(|| async { LbError::NotFound("The resource could not be found.".to_owned()) })
        .with_state(state)
}

/// The authenticated caller.
pub struct Ctx(pub AuthContext);

impl FromRequestParts<State> for Ctx {
    type Rejection = LbError;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let token = token_of(&parts.headers).ok_or(LbError::Unauthorized)?;
        let auth = s
            .auth
            .authenticate(token)
            .await
            .ok_or(LbError::Unauthorized)?;
        Ok(Ctx(auth))
    }
}

/// A JSON request body.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = LbError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        Ok(Body(ferro_common::read_json(req).await?))
    }
}

impl Body {
    /// The object under `key`, parsed into `T`.
    pub fn resource<T: DeserializeOwned>(self, key: &str) -> Result<T> {
        let inner = match self.0 {
            Value::Object(mut m) => match m.remove(key) {
                Some(v @ Value::Object(_)) => v,
                _ => {
                    return Err(LbError::bad(format!(
                        "Invalid input for field/attribute {key}. Value: 'None'. Mandatory field missing."
                    )))
                }
            },
            _ => return Err(LbError::bad("Malformed request body: expected a JSON object.")),
        };
        serde_json::from_value(inner)
            .map_err(|e| LbError::bad(format!("Invalid input for field/attribute {key}. {e}")))
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
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }
}

const CONTROL: &[&str] = &[
    "fields",
    "sort",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "project_id",
    "tags",
];

/// Whether a rendered attribute equals a query's value.
fn matches(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty() || want == "None" || want == "null",
        Value::Array(items) => items
            .iter()
            .any(|i| i.get("id").and_then(Value::as_str) == Some(want) || i == want),
        Value::Object(_) => false,
    }
}

/// A list answer: filtered, sorted, paged and trimmed to `fields`.
pub fn many(
    s: &State,
    path: &str,
    key: &str,
    mut items: Vec<Value>,
    q: &Query,
) -> Result<Response> {
    for (k, want) in q.0.iter().filter(|(k, _)| !CONTROL.contains(&k.as_str())) {
        items.retain(|i| match i.get(k) {
            Some(v) => matches(v, want),
            // Octavia filters listeners and pools by `loadbalancer_id`,
            // which they show as a list (`loadbalancers: [{"id": …}]`).
            None => k
                .strip_suffix("_id")
                .and_then(|base| i.get(format!("{base}s")))
                .is_some_and(|v| matches(v, want)),
        });
    }
    if let Some(p) = q.get("project_id") {
        items.retain(|i| i.get("project_id").and_then(Value::as_str) == Some(p));
    }
    let mut sort: Vec<(String, bool)> = Vec::new();
    if let Some(spec) = q.get("sort") {
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, d) = part.split_once(':').unwrap_or((part, "asc"));
            sort.push((k.to_owned(), d != "desc"));
        }
    } else if let Some(k) = q.get("sort_key") {
        sort.push((k.to_owned(), q.get("sort_dir") != Some("desc")));
    }
    if !sort.is_empty() {
        items.sort_by(|a, b| {
            for (k, asc) in &sort {
                let key = |v: &Value| v.get(k).map(|x| x.to_string()).unwrap_or_default();
                let o = key(a).cmp(&key(b));
                if o != std::cmp::Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    if let Some(m) = q.get("marker") {
        let Some(at) = items
            .iter()
            .position(|i| i.get("id").and_then(Value::as_str) == Some(m))
        else {
            return Err(LbError::NotFound(format!("Marker {m} not found.")));
        };
        items.drain(..=at);
    }
    let mut links = Vec::new();
    if let Some(l) = q.get("limit") {
        let l: usize = l
            .parse()
            .map_err(|_| LbError::invalid("limit", l, "Value should be an integer"))?;
        if l > 0 && items.len() > l {
            items.truncate(l);
            if let Some(last) = items
                .last()
                .and_then(|i| i.get("id"))
                .and_then(Value::as_str)
            {
                links.push(json!({"rel": "next", "href": format!("{}/v2/lbaas/{path}?limit={l}&marker={last}", s.base_url)}));
            }
        }
    }
    let fields: Vec<&str> =
        q.0.iter()
            .filter(|(k, _)| k == "fields")
            .flat_map(|(_, v)| v.split(','))
            .filter(|f| !f.is_empty())
            .collect();
    if !fields.is_empty() {
        for i in items.iter_mut() {
            if let Value::Object(m) = i {
                m.retain(|k, _| fields.contains(&k.as_str()));
            }
        }
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({ key: items, format!("{key}_links"): links })),
    )
        .into_response())
}

/// `{"<key>": value}` with a status.
pub fn one(status: StatusCode, key: &str, v: Value) -> Response {
    (status, axum::Json(json!({ key: v }))).into_response()
}
