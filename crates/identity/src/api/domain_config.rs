//! Domain-specific configuration (`/v3/domains/{id}/config`): the `identity`
//! and `ldap` options a domain overrides, as Keystone keeps them. ferrostack
//! stores and serves them; it has one identity backend (SQL), so an `ldap`
//! driver named here is recorded, not used (docs/identity.md).
//!
//! Only Keystone's whitelisted groups and options are taken; anything else is
//! its 403 "Invalid domain specific configuration".

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::resources::domain_or_404;
use super::{no_content, ok, Body, Caller, State};
use crate::error::{IdentityError, Result};
use crate::policy::{self, authorize};
use crate::service::Identity;
use crate::store::{self, Record};

const KIND: &str = "domain_config";

/// The options a domain may set, with Keystone's defaults.
fn defaults() -> Map<String, Value> {
    let identity = json!({"driver": "sql", "list_limit": null});
    let ldap = json!({
        "url": "ldap://localhost", "user": null, "suffix": "cn=example,cn=com",
        "query_scope": "one", "page_size": 0, "alias_dereferencing": "default",
        "chase_referrals": null, "debug_level": null,
        "user_tree_dn": null, "user_filter": null, "user_objectclass": "inetOrgPerson",
        "user_id_attribute": "cn", "user_name_attribute": "sn",
        "user_description_attribute": "description", "user_mail_attribute": "mail",
        "user_enabled_attribute": "enabled", "user_enabled_mask": 0,
        "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
        "group_tree_dn": null, "group_filter": null, "group_objectclass": "groupOfNames",
        "group_id_attribute": "cn", "group_name_attribute": "ou",
        "group_member_attribute": "member", "group_desc_attribute": "description",
        "use_tls": false, "tls_cacertfile": null, "tls_cacertdir": null, "tls_req_cert": "demand",
    });
    let mut m = Map::new();
    m.insert("identity".into(), identity);
    m.insert("ldap".into(), ldap);
    m
}

/// Options that may be set but are never shown back (the bind password).
const SENSITIVE: &[&str] = &["password"];

fn invalid(msg: String) -> IdentityError {
    IdentityError::ForbiddenWith(format!("Invalid domain specific configuration: {msg}"))
}

fn check_group(group: &str) -> Result<()> {
    defaults()
        .get(group)
        .map(|_| ())
        .ok_or_else(|| invalid(format!("group {group} is not supported.")))
}

fn check_option(group: &str, option: &str) -> Result<()> {
    check_group(group)?;
    let d = defaults();
    let opts = &d[group];
    if opts.get(option).is_none() && !(group == "ldap" && SENSITIVE.contains(&option)) {
        return Err(invalid(format!(
            "option {option} in group {group} is not supported."
        )));
    }
    Ok(())
}

/// Checks a `{"config": {group: {option: value}}}` body.
fn check_config(body: &Value) -> Result<Map<String, Value>> {
    let Some(Value::Object(cfg)) = body.get("config") else {
        return Err(IdentityError::bad("'config' is a required property."));
    };
    if cfg.is_empty() {
        return Err(IdentityError::bad("'config' must not be empty."));
    }
    for (group, opts) in cfg {
        let Value::Object(opts) = opts else {
            return Err(invalid(format!("group {group} must be an object.")));
        };
        for option in opts.keys() {
            check_option(group, option)?;
        }
    }
    Ok(cfg.clone())
}

fn shown(cfg: &Map<String, Value>) -> Value {
    let mut out = cfg.clone();
    for opts in out.values_mut() {
        if let Value::Object(o) = opts {
            o.retain(|k, _| !SENSITIVE.contains(&k.as_str()));
        }
    }
    Value::Object(out)
}

async fn stored(s: &Identity, domain: &str) -> Result<Option<Map<String, Value>>> {
    domain_or_404(s, domain).await?;
    Ok(store::record(s.pool(), KIND, domain)
        .await?
        .and_then(|r| serde_json::from_str(&r.body).ok()))
}

async fn config_or_404(s: &Identity, domain: &str) -> Result<Map<String, Value>> {
    stored(s, domain)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain config", domain))
}

async fn save(s: &Identity, domain: &str, cfg: &Map<String, Value>) -> Result<()> {
    if cfg.is_empty() {
        store::delete_record(s.pool(), KIND, domain).await?;
        return Ok(());
    }
    let row = Record {
        id: domain.to_owned(),
        owner_id: String::new(),
        body: Value::Object(cfg.clone()).to_string(),
    };
    store::put_record(s.pool(), KIND, &row).await
}

/// Merges `from`'s groups' options into `into`.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (group, opts) in from {
        let slot = into.entry(group).or_insert_with(|| json!({}));
        if let (Value::Object(dst), Value::Object(src)) = (slot, opts) {
            dst.extend(src);
        }
    }
}

pub async fn create(
    St(s): St<State>,
    Caller(c): Caller,
    Path(domain): Path<String>,
    Body(b): Body<Value>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let cfg = check_config(&b)?;
    let existed = stored(&s, &domain).await?.is_some();
    save(&s, &domain, &cfg).await?;
    tracing::info!(%domain, "domain configuration set");
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(json!({"config": shown(&cfg)}))).into_response())
}

pub async fn show(
    St(s): St<State>,
    Caller(c): Caller,
    Path(domain): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    Ok(ok(
        json!({"config": shown(&config_or_404(&s, &domain).await?)}),
    ))
}

pub async fn update(
    St(s): St<State>,
    Caller(c): Caller,
    Path(domain): Path<String>,
    Body(b): Body<Value>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let patch = check_config(&b)?;
    let mut cfg = config_or_404(&s, &domain).await?;
    merge(&mut cfg, patch);
    save(&s, &domain, &cfg).await?;
    Ok(ok(json!({"config": shown(&cfg)})))
}

pub async fn delete(
    St(s): St<State>,
    Caller(c): Caller,
    Path(domain): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    config_or_404(&s, &domain).await?;
    store::delete_record(s.pool(), KIND, &domain).await?;
    Ok(no_content())
}

fn group_of<'a>(
    cfg: &'a Map<String, Value>,
    domain: &str,
    group: &str,
) -> Result<&'a Map<String, Value>> {
    check_group(group)?;
    cfg.get(group).and_then(Value::as_object).ok_or_else(|| {
        IdentityError::not_found("domain config group", format!("{group} of {domain}"))
    })
}

pub async fn show_group(
    St(s): St<State>,
    Caller(c): Caller,
    Path((domain, group)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let cfg = config_or_404(&s, &domain).await?;
    let opts = group_of(&cfg, &domain, &group)?;
    let mut one = Map::new();
    one.insert(group, Value::Object(opts.clone()));
    Ok(ok(json!({"config": shown(&one)})))
}

pub async fn update_group(
    St(s): St<State>,
    Caller(c): Caller,
    Path((domain, group)): Path<(String, String)>,
    Body(b): Body<Value>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let patch = check_config(&b)?;
    if patch.keys().any(|g| *g != group) {
        return Err(invalid(format!("the body may only name group {group}.")));
    }
    let mut cfg = config_or_404(&s, &domain).await?;
    group_of(&cfg, &domain, &group)?;
    merge(&mut cfg, patch);
    save(&s, &domain, &cfg).await?;
    Ok(ok(json!({"config": shown(&cfg)})))
}

pub async fn delete_group(
    St(s): St<State>,
    Caller(c): Caller,
    Path((domain, group)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let mut cfg = config_or_404(&s, &domain).await?;
    group_of(&cfg, &domain, &group)?;
    cfg.remove(&group);
    save(&s, &domain, &cfg).await?;
    Ok(no_content())
}

pub async fn show_option(
    St(s): St<State>,
    Caller(c): Caller,
    Path((domain, group, option)): Path<(String, String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    check_option(&group, &option)?;
    let cfg = config_or_404(&s, &domain).await?;
    let value = group_of(&cfg, &domain, &group)?
        .get(&option)
        .filter(|_| !SENSITIVE.contains(&option.as_str()))
        .ok_or_else(|| {
            IdentityError::not_found(
                "domain config option",
                format!("{group}.{option} of {domain}"),
            )
        })?;
    Ok(ok(json!({"config": {option: value}})))
}

pub async fn update_option(
    St(s): St<State>,
    Caller(c): Caller,
    Path((domain, group, option)): Path<(String, String, String)>,
    Body(b): Body<Value>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    check_option(&group, &option)?;
    let value = b
        .get("config")
        .and_then(|c| c.get(&option))
        .cloned()
        .ok_or_else(|| {
            IdentityError::bad(format!(
                "The body must be {{\"config\": {{\"{option}\": …}}}}."
            ))
        })?;
    let mut cfg = config_or_404(&s, &domain).await?;
    group_of(&cfg, &domain, &group)?;
    let mut patch = Map::new();
    patch.insert(group, json!({option: value}));
    merge(&mut cfg, patch);
    save(&s, &domain, &cfg).await?;
    Ok(ok(json!({"config": shown(&cfg)})))
}

pub async fn delete_option(
    St(s): St<State>,
    Caller(c): Caller,
    Path((domain, group, option)): Path<(String, String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    check_option(&group, &option)?;
    let mut cfg = config_or_404(&s, &domain).await?;
    let removed = cfg
        .get_mut(&group)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.remove(&option));
    if removed.is_none() {
        return Err(IdentityError::not_found(
            "domain config option",
            format!("{group}.{option} of {domain}"),
        ));
    }
    if cfg
        .get(&group)
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        cfg.remove(&group);
    }
    save(&s, &domain, &cfg).await?;
    Ok(no_content())
}

// ---- the defaults ----

pub async fn default_all(Caller(c): Caller) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    Ok(ok(json!({"config": defaults()})))
}

pub async fn default_group(Caller(c): Caller, Path(group): Path<String>) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let d = defaults();
    let opts = d
        .get(&group)
        .ok_or_else(|| invalid(format!("group {group} is not supported.")))?;
    Ok(ok(json!({"config": {group: opts}})))
}

pub async fn default_option(
    Caller(c): Caller,
    Path((group, option)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    check_option(&group, &option)?;
    let value = defaults()[&group][&option].clone();
    Ok(ok(json!({"config": {option: value}})))
}
