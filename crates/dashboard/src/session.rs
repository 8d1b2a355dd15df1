//! Sessions: logging in with domain, user name and password, telling the
//! page who it is, switching project, and logging out.
//!
//! Everything is done through identity's own `/v3/auth/*` API, in-process:
//! a password token first, then (when it isn't scoped to the project the
//! user wants) a token-for-token exchange scoped to that project. The
//! project-scoped token is the session: it is kept in the cookie only.

use axum::body::Bytes;
use axum::extract::State as St;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{DashboardError, Result};
use crate::proxy::{call, Reply};
use crate::State;

/// The cookie that holds the session's token.
pub const COOKIE: &str = "ferro_token";

#[derive(Deserialize)]
pub struct Login {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Project id or name to start in; the token's default project, else
    /// the first the user may use, when absent.
    project: Option<String>,
}

#[derive(Deserialize)]
pub struct Switch {
    project_id: String,
}

/// The session's token, from the request's cookies.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn subject_token(r: &Reply) -> Result<String> {
    r.headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| DashboardError::Internal("identity issued no X-Subject-Token".into()))
}

/// `POST /session`.
pub async fn login(St(s): St<State>, body: Bytes) -> Result<Response> {
    let l: Login = parse(&body)?;
    if l.username.trim().is_empty() || l.password.is_empty() {
        return Err(DashboardError::BadRequest(
            "Enter a user name and a password.".into(),
        ));
    }
    let domain = if l.domain.trim().is_empty() {
        "Default"
    } else {
        l.domain.trim()
    };
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": l.username.trim(), "domain": {"name": domain}, "password": l.password}}}}});
    let first = call(
        &s,
        "identity",
        Method::POST,
        "/v3/auth/tokens",
        None,
        Some(body),
    )
    .await?;
    if first.status == StatusCode::UNAUTHORIZED {
        return Err(DashboardError::Unauthorized(
            "Invalid domain, user name or password.".into(),
        ));
    }
    let first = first.ok()?;
    let token = subject_token(&first)?;
    let projects = projects_of(&s, &token).await?;
    let current = first.body["token"]["project"]["id"].as_str();
    let wanted = match &l.project {
        Some(p) => Some(
            projects
                .iter()
                .find(|x| x["id"] == p.as_str() || x["name"] == p.as_str())
                .and_then(|x| x["id"].as_str())
                .ok_or_else(|| {
                    DashboardError::Forbidden(format!("You have no role on project {p}."))
                })?,
        ),
        None => current.or_else(|| projects.first().and_then(|p| p["id"].as_str())),
    };
    let token = match wanted {
        Some(p) if Some(p) != current => rescope(&s, &token, p).await?,
        _ => token,
    };
    tracing::info!(user = %first.body["token"]["user"]["id"].as_str().unwrap_or(""),
        project = %wanted.unwrap_or(""), "dashboard login");
    session_reply(&s, &token, StatusCode::CREATED).await
}

/// `GET /session`: who the cookie says the caller is.
pub async fn show(St(s): St<State>, headers: HeaderMap) -> Result<Response> {
    let token = token_of(&headers).ok_or_else(not_logged_in)?;
    session_reply(&s, &token, StatusCode::OK).await
}

/// `PUT /session/project`: the same user in another project.
pub async fn switch_project(St(s): St<State>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let w: Switch = parse(&body)?;
    let token = token_of(&headers).ok_or_else(not_logged_in)?;
    let projects = projects_of(&s, &token).await?;
    if !projects.iter().any(|p| p["id"] == w.project_id.as_str()) {
        return Err(DashboardError::Forbidden(format!(
            "You have no role on project {}.",
            w.project_id
        )));
    }
    let token = rescope(&s, &token, &w.project_id).await?;
    session_reply(&s, &token, StatusCode::OK).await
}

/// `DELETE /session`: revokes the token and drops the cookie.
pub async fn logout(St(s): St<State>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = token_of(&headers) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&token) {
            h.insert("x-subject-token", v);
        }
        // An expired or already revoked token is as good as logged out.
        let _ = crate::proxy::call_with(
            &s,
            "identity",
            Method::DELETE,
            "/v3/auth/tokens",
            Some(&token),
            h,
            None,
        )
        .await;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = clear_cookie().parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// A JSON body, refused with a 400 in our error format when it isn't one.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        DashboardError::BadRequest(format!(
            "The request body is not valid JSON for this call: {e}."
        ))
    })
}

fn not_logged_in() -> DashboardError {
    DashboardError::Unauthorized("You are not logged in.".into())
}

async fn projects_of(s: &State, token: &str) -> Result<Vec<Value>> {
    let r = call(
        s,
        "identity",
        Method::GET,
        "/v3/auth/projects",
        Some(token),
        None,
    )
    .await?;
    if r.status == StatusCode::UNAUTHORIZED {
        return Err(not_logged_in());
    }
    let r = r.ok()?;
    let mut list: Vec<Value> = r.body["projects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["enabled"] != false)
        .collect();
    list.sort_by(|a, b| {
        a["name"]
            .as_str()
            .unwrap_or("")
            .cmp(b["name"].as_str().unwrap_or(""))
    });
    Ok(list)
}

async fn rescope(s: &State, token: &str, project_id: &str) -> Result<String> {
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"id": project_id}}}});
    let r = call(
        s,
        "identity",
        Method::POST,
        "/v3/auth/tokens",
        None,
        Some(body),
    )
    .await?;
    if r.status == StatusCode::UNAUTHORIZED {
        return Err(not_logged_in());
    }
    subject_token(&r.ok()?)
}

/// The session as the page sees it, with the cookie set to `token`.
async fn session_reply(s: &State, token: &str, status: StatusCode) -> Result<Response> {
    let mut h = HeaderMap::new();
    h.insert(
        "x-subject-token",
        HeaderValue::from_str(token).map_err(|_| not_logged_in())?,
    );
    let r = crate::proxy::call_with(
        s,
        "identity",
        Method::GET,
        "/v3/auth/tokens?nocatalog",
        Some(token),
        h,
        None,
    )
    .await?;
    if r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::NOT_FOUND {
        return Err(not_logged_in());
    }
    let t = &r.ok()?.body["token"];
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    let projects = projects_of(s, token).await?;
    let view = json!({"session": {
        "user": t["user"],
        "project": t.get("project").cloned().unwrap_or(Value::Null),
        "roles": roles,
        "admin": roles.contains(&"admin"),
        "expires_at": t["expires_at"],
        "projects": projects.iter().map(|p| json!({"id": p["id"], "name": p["name"]})).collect::<Vec<_>>(),
    }});
    let mut resp = (status, Json(view)).into_response();
    if let Ok(v) = set_cookie(token, s.secure_cookie).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ferro_token=abc; b=2"),
        );
        assert_eq!(token_of(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("ferro_token="));
        assert_eq!(token_of(&h), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let c = set_cookie("t", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie("t", false).contains("Secure"));
    }
}
