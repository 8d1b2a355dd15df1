//! Keystone v3 HTTP API: routes, extractors and small rendering helpers.
//!
//! Handlers are thin: extract → authorize → call the service or store →
//! render. Every failure is an [`IdentityError`] rendered as Keystone's
//! fault body.

mod app_creds;
mod assignments;
mod auth;
mod catalog;
mod credentials;
mod discovery;
mod domain_config;
mod project_tags;
mod records;
mod resources;
mod roles;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::IdentityError;
use crate::service::{Identity, Resolved};

pub type State = Arc<Identity>;

/// The identity API router.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(discovery::root))
        .route("/v3", get(discovery::v3))
        .route("/v3/", get(discovery::v3))
        .route(
            "/v3/auth/tokens",
            post(auth::issue)
                .get(auth::validate)
                .head(auth::check)
                .delete(auth::revoke),
        )
        .route("/v3/auth/catalog", get(auth::catalog))
        .route("/v3/auth/projects", get(auth::projects))
        .route("/v3/auth/domains", get(auth::domains))
        .route("/v3/auth/system", get(auth::system))
        .route(
            "/v3/domains",
            get(resources::list_domains).post(resources::create_domain),
        )
        .route(
            "/v3/domains/{id}",
            get(resources::get_domain)
                .patch(resources::update_domain)
                .delete(resources::delete_domain),
        )
        .route(
            "/v3/projects",
            get(resources::list_projects).post(resources::create_project),
        )
        .route(
            "/v3/projects/{id}",
            get(resources::get_project)
                .patch(resources::update_project)
                .delete(resources::delete_project),
        )
        .route(
            "/v3/users",
            get(resources::list_users).post(resources::create_user),
        )
        .route(
            "/v3/users/{id}",
            get(resources::get_user)
                .patch(resources::update_user)
                .delete(resources::delete_user),
        )
        .route("/v3/users/{id}/password", post(resources::change_password))
        .route("/v3/users/{id}/groups", get(resources::user_groups))
        .route("/v3/users/{id}/projects", get(resources::user_projects))
        .route(
            "/v3/users/{id}/application_credentials",
            get(app_creds::list).post(app_creds::create),
        )
        .route(
            "/v3/users/{id}/application_credentials/{cred}",
            get(app_creds::show).delete(app_creds::delete),
        )
        .route(
            "/v3/groups",
            get(resources::list_groups).post(resources::create_group),
        )
        .route(
            "/v3/groups/{id}",
            get(resources::get_group)
                .patch(resources::update_group)
                .delete(resources::delete_group),
        )
        .route("/v3/groups/{id}/users", get(resources::group_users))
        .route(
            "/v3/groups/{id}/users/{user}",
            put(resources::add_member)
                .head(resources::check_member)
                .delete(resources::remove_member),
        )
        .route("/v3/roles", get(roles::list).post(roles::create))
        .route(
            "/v3/roles/{id}",
            get(roles::show).patch(roles::update).delete(roles::delete),
        )
        .route("/v3/roles/{id}/implies", get(roles::list_implied))
        .route(
            "/v3/roles/{id}/implies/{implied}",
            put(roles::add_implied)
                .get(roles::get_implied)
                .head(roles::check_implied)
                .delete(roles::delete_implied),
        )
        .route("/v3/role_inferences", get(roles::inferences))
        .route("/v3/role_assignments", get(assignments::list))
        .merge(grant_routes())
        .route(
            "/v3/system/{actor}/{aid}/roles",
            get(assignments::list_system_grants),
        )
        .route(
            "/v3/system/{actor}/{aid}/roles/{role}",
            put(assignments::grant_system)
                .get(assignments::check_system)
                .head(assignments::check_system)
                .delete(assignments::revoke_system),
        )
        .route(
            "/v3/regions",
            get(catalog::list_regions).post(catalog::create_region),
        )
        .route(
            "/v3/regions/{id}",
            get(catalog::get_region)
                .put(catalog::put_region)
                .patch(catalog::update_region)
                .delete(catalog::delete_region),
        )
        .route(
            "/v3/services",
            get(catalog::list_services).post(catalog::create_service),
        )
        .route(
            "/v3/services/{id}",
            get(catalog::get_service)
                .patch(catalog::update_service)
                .delete(catalog::delete_service),
        )
        .route(
            "/v3/endpoints",
            get(catalog::list_endpoints).post(catalog::create_endpoint),
        )
        .route(
            "/v3/endpoints/{id}",
            get(catalog::get_endpoint)
                .patch(catalog::update_endpoint)
                .delete(catalog::delete_endpoint),
        )
        .merge(record_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Credentials, EC2 credentials, policies, OAuth1 consumers, endpoint groups
/// and domain configuration.
fn record_routes() -> Router<State> {
    use axum::routing::patch;
    Router::new()
        .route(
            "/v3/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/v3/credentials/{id}",
            get(credentials::show)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .route(
            "/v3/users/{id}/credentials/OS-EC2",
            get(credentials::ec2_list).post(credentials::ec2_create),
        )
        .route(
            "/v3/users/{id}/credentials/OS-EC2/{access}",
            get(credentials::ec2_show).delete(credentials::ec2_delete),
        )
        .route(
            "/v3/policies",
            get(records::list_policies).post(records::create_policy),
        )
        .route(
            "/v3/policies/{id}",
            get(records::show_policy)
                .patch(records::update_policy)
                .delete(records::delete_policy),
        )
        .route(
            "/v3/OS-OAUTH1/consumers",
            get(records::list_consumers).post(records::create_consumer),
        )
        .route(
            "/v3/OS-OAUTH1/consumers/{id}",
            get(records::show_consumer)
                .patch(records::update_consumer)
                .delete(records::delete_consumer),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups",
            get(records::list_endpoint_groups).post(records::create_endpoint_group),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}",
            get(records::show_endpoint_group)
                .head(records::show_endpoint_group)
                .patch(records::update_endpoint_group)
                .delete(records::delete_endpoint_group),
        )
        .route(
            "/v3/projects/{id}/tags",
            get(project_tags::list)
                .put(project_tags::replace)
                .delete(project_tags::clear),
        )
        .route(
            "/v3/projects/{id}/tags/{tag}",
            get(project_tags::check)
                .head(project_tags::check)
                .put(project_tags::add)
                .delete(project_tags::remove),
        )
        .route(
            "/v3/domains/config/default",
            get(domain_config::default_all),
        )
        .route(
            "/v3/domains/config/{group}/default",
            get(domain_config::default_group),
        )
        .route(
            "/v3/domains/config/{group}/{option}/default",
            get(domain_config::default_option),
        )
        .route(
            "/v3/domains/{id}/config",
            put(domain_config::create)
                .get(domain_config::show)
                .patch(domain_config::update)
                .delete(domain_config::delete),
        )
        .route(
            "/v3/domains/{id}/config/{group}",
            get(domain_config::show_group)
                .patch(domain_config::update_group)
                .delete(domain_config::delete_group),
        )
        .route(
            "/v3/domains/{id}/config/{group}/{option}",
            get(domain_config::show_option)
                .merge(patch(domain_config::update_option))
                .delete(domain_config::delete_option),
        )
}

/// Role grants on projects and domains, for users and groups.
fn grant_routes() -> Router<State> {
    let mut r = Router::new();
    for target in ["projects", "domains"] {
        for actor in ["users", "groups"] {
            r = r
                .route(
                    &format!("/v3/{target}/{{tid}}/{actor}/{{aid}}/roles"),
                    get(assignments::list_grants),
                )
                .route(
                    &format!("/v3/{target}/{{tid}}/{actor}/{{aid}}/roles/{{role}}"),
                    put(assignments::grant)
                        .get(assignments::check)
                        .head(assignments::check)
                        .delete(assignments::revoke),
                )
                .route(
                    &format!(
                        "/v3/OS-INHERIT/{target}/{{tid}}/{actor}/{{aid}}/roles/inherited_to_projects"
                    ),
                    get(assignments::list_grants),
                )
                .route(
                    &format!(
                        "/v3/OS-INHERIT/{target}/{{tid}}/{actor}/{{aid}}/roles/{{role}}/inherited_to_projects"
                    ),
                    put(assignments::grant)
                        .get(assignments::check)
                        .head(assignments::check)
                        .delete(assignments::revoke),
                );
        }
    }
    r
}

async fn not_found(method: Method) -> Response {
    let _ = method;
    IdentityError::NotFound {
        kind: "resource",
        id: "the requested URL".into(),
    }
    .into_response()
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": 405, "title": "Method Not Allowed",
                                "message": "The method is not allowed for the requested URL."}});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// The authenticated caller (from `X-Auth-Token`).
pub struct Caller(pub Arc<Resolved>);

impl FromRequestParts<State> for Caller {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or(IdentityError::Unauthorized)?;
        let (_, resolved) = state.validate(token).await.map_err(|e| match e {
            IdentityError::Internal(_) => e,
            _ => IdentityError::Unauthorized,
        })?;
        Ok(Caller(resolved))
    }
}

/// A JSON body parsed into `T`, or a Keystone 400/413.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = IdentityError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Body(ferro_common::read_json(req).await?))
    }
}

pub use ferro_common::params::Params;

/// A boolean filter, or a Keystone 400.
pub fn flag(p: &Params, k: &str) -> Result<Option<i64>, IdentityError> {
    p.flag(k).map_err(IdentityError::BadRequest)
}

/// `{"<key>": [...], "links": {...}}`.
pub fn list_body(key: &str, items: Vec<Value>, self_url: String) -> Value {
    json!({key: items, "links": {"self": self_url, "previous": null, "next": null}})
}

pub fn created(body: Value) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

pub fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Checks a resource name: non-empty, not only spaces, at most `max`
/// characters.
pub fn check_name(field: &str, name: &str, max: usize) -> Result<(), IdentityError> {
    if name.trim().is_empty() {
        return Err(IdentityError::bad(format!(
            "Invalid input for field '{field}': it must not be empty."
        )));
    }
    if name.chars().count() > max {
        return Err(IdentityError::bad(format!(
            "Invalid input for field '{field}': it is longer than {max} characters."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(IdentityError::bad(format!(
            "Invalid input for field '{field}': control characters are not allowed."
        )));
    }
    Ok(())
}

/// Checks a free-text field such as a description.
pub fn check_text(field: &str, text: &str) -> Result<(), IdentityError> {
    if text.chars().count() > 65_535 {
        return Err(IdentityError::bad(format!(
            "Invalid input for field '{field}': too long."
        )));
    }
    Ok(())
}
