//! The dashboard: the web console of ferrostack, served by the same binary
//! as the APIs.
//!
//! ```text
//!  browser ── GET /, /static/*        ── embedded pages and scripts (assets)
//!          ── POST/GET/DELETE /session ── log in / who am I / log out (session)
//!          ── PUT /session/project     ── switch project (a rescoped token)
//!          ── /api/<service>/<path>    ── the service's own API, in-process,
//!                                         with the user's token (proxy)
//! ```
//!
//! The browser never holds the token: it lives in an `HttpOnly`,
//! `SameSite=Strict` cookie and the pass-through adds it as `X-Auth-Token`.
//! Every request goes through the same API handlers and policy as the CLI's,
//! so the dashboard can do nothing its user couldn't do with `openstack`.
//! Requests to `/session` and `/api` must carry `X-Ferro-Dashboard: 1`: a
//! page of another origin can't send that header without a CORS preflight,
//! which is never granted.
#![forbid(unsafe_code)]

mod assets;
mod error;
mod proxy;
mod session;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, put};
use axum::Router;

pub use error::DashboardError;

/// The header every call from the dashboard's own scripts carries.
pub const CSRF_HEADER: &str = "x-ferro-dashboard";

/// What the dashboard serves from: the services' routers (called
/// in-process) by the names the pass-through uses.
#[derive(Clone)]
pub struct Dashboard {
    /// `identity`, `compute`, `image`, `network`, `placement` → router.
    pub services: HashMap<&'static str, Router>,
    /// Mark the session cookie `Secure` (the dashboard is served over TLS).
    pub secure_cookie: bool,
}

pub(crate) type State = Arc<Dashboard>;

/// The dashboard's routes.
pub fn router(d: Dashboard) -> Router {
    let state: State = Arc::new(d);
    let guarded = Router::new()
        .route(
            "/session",
            get(session::show)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/session/project", put(session::switch_project))
        .route("/api/{service}/{*path}", any(proxy::forward))
        .route_layer(axum::middleware::from_fn(require_csrf_header))
        .with_state(state);
    Router::new()
        .route("/", get(assets::index))
        .route("/horizon", get(|| async { Redirect::permanent("/") }))
        .route("/horizon/", get(|| async { Redirect::permanent("/") }))
        .route("/static/{*path}", get(assets::file))
        .merge(guarded)
        .fallback(|| async { DashboardError::NotFound("No such page.".into()) })
}

async fn require_csrf_header(req: Request, next: Next) -> Response {
    if req.headers().get(CSRF_HEADER).is_none() {
        return DashboardError::Forbidden(format!(
            "Requests to the dashboard's API must carry the {CSRF_HEADER} header."
        ))
        .into_response();
    }
    next.run(req).await
}
