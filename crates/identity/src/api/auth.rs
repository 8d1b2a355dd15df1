//! `/v3/auth/*`: issuing, validating, checking and revoking tokens, and the
//! caller's own catalog, projects, domains and system scope.

use axum::extract::State as St;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferro_common::Scope;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{list_body, ok, Body, Caller, Params, State};
use crate::error::{IdentityError, Result};
use crate::model::{Domain, Project};
use crate::policy::{self, authorize, on_user};
use crate::revocation::Event;
use crate::service::{Credentials, DomainRef, Identity, Resolved, ScopeRequest, UserRef};
use crate::store;
use crate::token::{audit_id_str, method_names, Payload};
use ferro_common::time::iso_micros;

#[derive(Deserialize)]
pub struct AuthBody {
    auth: AuthInner,
}

#[derive(Deserialize)]
struct AuthInner {
    identity: IdentityBody,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
struct IdentityBody {
    methods: Vec<String>,
    password: Option<PasswordBody>,
    token: Option<TokenBody>,
    application_credential: Option<AppCredBody>,
}

#[derive(Deserialize)]
struct PasswordBody {
    user: UserBody,
}

#[derive(Deserialize)]
struct UserBody {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NamedRef>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct NamedRef {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    id: String,
}

#[derive(Deserialize)]
struct AppCredBody {
    id: Option<String>,
    name: Option<String>,
    secret: String,
    user: Option<UserBody>,
}

fn domain_ref(d: Option<NamedRef>, what: &str) -> Result<DomainRef> {
    match d {
        Some(NamedRef { id: Some(id), .. }) => Ok(DomainRef::Id(id)),
        Some(NamedRef {
            name: Some(name), ..
        }) => Ok(DomainRef::Name(name)),
        _ => Err(IdentityError::bad(format!(
            "{what} needs a domain given by id or name."
        ))),
    }
}

fn user_ref(u: UserBody) -> Result<UserRef> {
    match (u.id, u.name) {
        (Some(id), _) => Ok(UserRef::Id(id)),
        (None, Some(name)) => Ok(UserRef::Name {
            name,
            domain: domain_ref(u.domain, "A user named by name")?,
        }),
        _ => Err(IdentityError::bad(
            "A user is given by id, or by name and domain.",
        )),
    }
}

fn parse_scope(v: Option<Value>) -> Result<ScopeRequest> {
    let Some(v) = v else {
        return Ok(ScopeRequest::None);
    };
    if v == json!("unscoped") {
        return Ok(ScopeRequest::Unscoped);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| IdentityError::bad("scope must be an object or \"unscoped\"."))?;
    if obj.len() != 1 {
        return Err(IdentityError::bad(
            "Exactly one of project, domain or system may be given as scope.",
        ));
    }
    let named = |v: &Value| -> Result<NamedRef> {
        serde_json::from_value(v.clone())
            .map_err(|e| IdentityError::bad(format!("Invalid scope: {e}")))
    };
    if let Some(p) = obj.get("project") {
        let domain = p.get("domain").map(named).transpose()?;
        let p = named(p)?;
        return match (p.id, p.name) {
            (Some(id), _) => Ok(ScopeRequest::ProjectId(id)),
            (None, Some(name)) => Ok(ScopeRequest::ProjectName {
                name,
                domain: domain_ref(domain, "A project named by name")?,
            }),
            _ => Err(IdentityError::bad(
                "A project scope needs an id, or a name and domain.",
            )),
        };
    }
    if let Some(d) = obj.get("domain") {
        return Ok(ScopeRequest::Domain(domain_ref(
            Some(named(d)?),
            "A domain scope",
        )?));
    }
    if let Some(s) = obj.get("system") {
        if s.get("all") == Some(&json!(true)) {
            return Ok(ScopeRequest::System);
        }
        return Err(IdentityError::bad(
            "The only system scope is {\"all\": true}.",
        ));
    }
    if obj.contains_key("OS-TRUST:trust") {
        return Err(IdentityError::bad("Trusts are not supported."));
    }
    Err(IdentityError::bad(
        "Unknown scope; use project, domain or system.",
    ))
}

fn credentials(body: IdentityBody) -> Result<Credentials> {
    let methods: Vec<&str> = body.methods.iter().map(String::as_str).collect();
    match methods.as_slice() {
        ["password"] => {
            let p = body.password.ok_or_else(|| {
                IdentityError::bad("'password' is required for the password method.")
            })?;
            let password = p
                .user
                .password
                .clone()
                .ok_or_else(|| IdentityError::bad("A password is required."))?;
            Ok(Credentials::Password {
                user: user_ref(p.user)?,
                password,
            })
        }
        ["token"] => {
            let t = body
                .token
                .ok_or_else(|| IdentityError::bad("'token' is required for the token method."))?;
            Ok(Credentials::Token { id: t.id })
        }
        ["application_credential"] => {
            let a = body.application_credential.ok_or_else(|| {
                IdentityError::bad("'application_credential' is required for that method.")
            })?;
            Ok(Credentials::AppCred {
                id: a.id,
                name: a.name,
                user: a.user.map(user_ref).transpose()?,
                secret: a.secret,
            })
        }
        [] => Err(IdentityError::bad(
            "At least one authentication method is required.",
        )),
        [m] => Err(IdentityError::UnauthorizedWith(format!(
            "Attempted to authenticate with an unsupported method: {m}."
        ))),
        _ => Err(IdentityError::bad("Authenticate with exactly one method.")),
    }
}

/// The Keystone token body, as JSON text. The catalog is rendered once and
/// spliced in as text: re-encoding it per request was most of the cost of a
/// validation.
pub async fn render_token(
    s: &Identity,
    p: &Payload,
    r: &Resolved,
    with_catalog: bool,
) -> Result<String> {
    let ctx = &r.ctx;
    let mut t = json!({
        "methods": method_names(p.methods),
        "user": {"id": ctx.user_id, "name": ctx.user_name, "password_expires_at": null,
                 "domain": {"id": ctx.user_domain_id, "name": ctx.user_domain_name}},
        "audit_ids": p.audit_ids.iter().map(audit_id_str).collect::<Vec<_>>(),
        "expires_at": iso_micros(p.expires_at),
        "issued_at": iso_micros(p.issued_at),
    });
    match &ctx.scope {
        Scope::Unscoped => {}
        Scope::Project {
            id,
            name,
            domain_id,
            domain_name,
        } => {
            t["project"] =
                json!({"id": id, "name": name, "domain": {"id": domain_id, "name": domain_name}});
            t["is_domain"] = json!(false);
        }
        Scope::Domain { id, name } => t["domain"] = json!({"id": id, "name": name}),
        Scope::System => t["system"] = json!({"all": true}),
    }
    if !matches!(ctx.scope, Scope::Unscoped) {
        t["roles"] = json!(r
            .roles
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect::<Vec<_>>());
    }
    if let (Some(id), Some(name)) = (&p.app_cred_id, &r.app_cred_name) {
        t["application_credential"] = json!({"id": id, "name": name, "restricted": true});
    }
    let mut text = serde_json::to_string(&t).map_err(|e| IdentityError::Internal(e.to_string()))?;
    if with_catalog && !matches!(ctx.scope, Scope::Unscoped) {
        let catalog = s.catalog().await?;
        text.pop(); // the closing brace of the token object
        text.push_str(",\"catalog\":");
        text.push_str(catalog.get());
        text.push('}');
    }
    Ok(format!("{{\"token\":{text}}}"))
}

fn with_subject(status: StatusCode, token: &str, body: Option<String>) -> Response {
    let mut resp = match body {
        Some(b) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            b,
        )
            .into_response(),
        None => status.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

pub async fn issue(
    St(s): St<State>,
    params: Params,
    Body(body): Body<AuthBody>,
) -> Result<Response> {
    let scope = parse_scope(body.auth.scope)?;
    let creds = credentials(body.auth.identity)?;
    let issued = s.authenticate(creds, scope).await?;
    let nocatalog = params.get("nocatalog").is_some();
    let body = render_token(&s, &issued.payload, &issued.resolved, !nocatalog).await?;
    Ok(with_subject(StatusCode::CREATED, &issued.token, Some(body)))
}

fn subject(headers: &HeaderMap) -> Result<&str> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| IdentityError::bad("The X-Subject-Token header is required."))
}

/// Validates the subject token for a caller allowed to see it.
async fn subject_for(
    s: &Identity,
    caller: &Resolved,
    headers: &HeaderMap,
) -> Result<(String, Payload, std::sync::Arc<Resolved>)> {
    let token = subject(headers)?.to_owned();
    let (p, r) = s
        .validate(&token)
        .await
        .map_err(|_| IdentityError::not_found("token", "the subject token"))?;
    authorize(&caller.ctx, policy::VALIDATE_TOKEN, on_user(&p.user_id))?;
    Ok((token, p, r))
}

pub async fn validate(
    St(s): St<State>,
    Caller(c): Caller,
    params: Params,
    headers: HeaderMap,
) -> Result<Response> {
    let (token, p, r) = subject_for(&s, &c, &headers).await?;
    let body = render_token(&s, &p, &r, params.get("nocatalog").is_none()).await?;
    Ok(with_subject(StatusCode::OK, &token, Some(body)))
}

pub async fn check(St(s): St<State>, Caller(c): Caller, headers: HeaderMap) -> Result<Response> {
    let (token, _, _) = subject_for(&s, &c, &headers).await?;
    Ok(with_subject(StatusCode::OK, &token, None))
}

pub async fn revoke(St(s): St<State>, Caller(c): Caller, headers: HeaderMap) -> Result<Response> {
    let (_, p, _) = subject_for(&s, &c, &headers).await?;
    let audit_id = p.audit_ids.first().map(audit_id_str);
    s.revoke(Event {
        audit_id,
        issued_before: p.issued_at,
        ..Default::default()
    })
    .await?;
    tracing::info!(user_id = %p.user_id, "token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn catalog(St(s): St<State>, Caller(c): Caller) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    let catalog = if matches!(c.ctx.scope, Scope::Unscoped) {
        json!([])
    } else {
        serde_json::to_value(&*s.catalog().await?).unwrap_or(json!([]))
    };
    let base = s.base_url();
    Ok(ok(
        json!({"catalog": catalog, "links": {"self": format!("{base}/auth/catalog"), "previous": null, "next": null}}),
    ))
}

/// Projects (or domains) on which the caller has any role.
async fn targets_of(s: &Identity, user_id: &str, kind: &str) -> Result<Vec<String>> {
    let assignments = store::assignments_for_actors(s.pool(), user_id).await?;
    let mut ids: Vec<String> = assignments
        .iter()
        .filter(|a| a.target_type == kind && a.inherited == 0)
        .map(|a| a.target_id.clone())
        .collect();
    if kind == "project" {
        // Inherited domain grants reach every project of the domain.
        let inherited_domains: Vec<&String> = assignments
            .iter()
            .filter(|a| a.target_type == "domain" && a.inherited == 1)
            .map(|a| &a.target_id)
            .collect();
        for d in inherited_domains {
            let ps: Vec<Project> = store::list(
                s.pool(),
                "projects",
                store::Filter::default().text("domain_id", Some(d)),
                "name",
            )
            .await?;
            ids.extend(ps.into_iter().map(|p| p.id));
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

pub async fn projects(St(s): St<State>, Caller(c): Caller) -> Result<Response> {
    let base = s.base_url();
    let mut out = Vec::new();
    for id in targets_of(&s, &c.ctx.user_id, "project").await? {
        if let Some(p) = store::get::<Project>(s.pool(), "projects", &id).await? {
            if p.enabled != 0 {
                out.push(p.render(&base));
            }
        }
    }
    Ok(ok(list_body(
        "projects",
        out,
        format!("{base}/auth/projects"),
    )))
}

pub async fn domains(St(s): St<State>, Caller(c): Caller) -> Result<Response> {
    let base = s.base_url();
    let mut out = Vec::new();
    for id in targets_of(&s, &c.ctx.user_id, "domain").await? {
        if let Some(d) = store::get::<Domain>(s.pool(), "domains", &id).await? {
            if d.enabled != 0 {
                out.push(d.render(&base));
            }
        }
    }
    Ok(ok(list_body(
        "domains",
        out,
        format!("{base}/auth/domains"),
    )))
}

pub async fn system(St(s): St<State>, Caller(c): Caller) -> Result<Response> {
    let has = !s
        .effective_roles(&c.ctx.user_id, &crate::token::ScopeRef::System)
        .await?
        .is_empty();
    let base = s.base_url();
    let system = if has {
        json!([{"all": true}])
    } else {
        json!([])
    };
    Ok(ok(
        json!({"system": system, "links": {"self": format!("{base}/auth/system"), "previous": null, "next": null}}),
    ))
}
