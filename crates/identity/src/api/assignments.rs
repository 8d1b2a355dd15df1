//! Role grants (user or group, on a project, domain or the system; direct,
//! or inherited by the projects below with OS-INHERIT) and the
//! `/v3/role_assignments` query with `effective` and `include_names`.

use std::collections::HashMap;

use axum::extract::{Path, State as St};
use axum::http::Uri;
use axum::response::Response;
use ferro_store::sqlx;
use serde_json::{json, Value};

use super::resources::{domain_or_404, group_or_404, project_or_404, user_or_404};
use super::{list_body, no_content, ok, Caller, Params, State};
use crate::error::{IdentityError, Result};
use crate::model::{Assignment, Domain, Group, Project, Role, User};
use crate::policy::{self, authorize};
use crate::service::{expand, Identity};
use crate::store;

/// One grant, as named by a URL.
struct Grant {
    actor_type: &'static str,
    actor_id: String,
    target_type: &'static str,
    target_id: String,
    /// 1: inherited by the projects in the domain or below the project.
    inherited: i64,
}

/// `/v3/{projects|domains}/{tid}/{users|groups}/{aid}/roles[/{role}]`, or
/// `/v3/OS-INHERIT/…/roles[/{role}]/inherited_to_projects`.
fn parse(uri: &Uri) -> Result<(Grant, Option<String>)> {
    let mut segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let bad = || IdentityError::not_found("resource", uri.path().to_owned());
    let inherited = segs.get(1) == Some(&"OS-INHERIT");
    if inherited {
        if segs.last() != Some(&"inherited_to_projects") {
            return Err(bad());
        }
        segs.remove(1);
        segs.pop();
    }
    if segs.len() < 6 {
        return Err(bad());
    }
    let target_type = match segs[1] {
        "projects" => "project",
        "domains" => "domain",
        _ => return Err(bad()),
    };
    let actor_type = match segs[3] {
        "users" => "user",
        "groups" => "group",
        _ => return Err(bad()),
    };
    Ok((
        Grant {
            actor_type,
            actor_id: segs[4].to_owned(),
            target_type,
            target_id: segs[2].to_owned(),
            inherited: i64::from(inherited),
        },
        segs.get(6).map(|s| s.to_string()),
    ))
}

async fn check_exists(s: &Identity, g: &Grant) -> Result<()> {
    if g.actor_type == "user" {
        user_or_404(s, &g.actor_id).await?;
    } else {
        group_or_404(s, &g.actor_id).await?;
    }
    match g.target_type {
        "project" => {
            project_or_404(s, &g.target_id).await?;
        }
        "domain" => {
            domain_or_404(s, &g.target_id).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn role_or_404(s: &Identity, id: &str) -> Result<Role> {
    store::get(s.pool(), "roles", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("role", id))
}

async fn exists(s: &Identity, g: &Grant, role: &str) -> Result<bool> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT role_id FROM role_assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
         AND target_id = $4 AND role_id = $5 AND inherited = $6",
    )
    .bind(g.actor_type)
    .bind(&g.actor_id)
    .bind(g.target_type)
    .bind(&g.target_id)
    .bind(role)
    .bind(g.inherited)
    .fetch_optional(s.pool())
    .await?;
    Ok(row.is_some())
}

async fn do_grant(s: &Identity, g: Grant, role: String) -> Result<Response> {
    check_exists(s, &g).await?;
    role_or_404(s, &role).await?;
    if !exists(s, &g, &role).await? {
        sqlx::query(
            "INSERT INTO role_assignments (actor_type, actor_id, target_type, target_id, role_id, inherited) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(g.actor_type)
        .bind(&g.actor_id)
        .bind(g.target_type)
        .bind(&g.target_id)
        .bind(&role)
        .bind(g.inherited)
        .execute(s.pool())
        .await?;
        tracing::info!(actor = %g.actor_id, target = %g.target_id, role_id = %role, "role granted");
    }
    s.invalidate();
    Ok(no_content())
}

async fn do_check(s: &Identity, g: Grant, role: String) -> Result<Response> {
    check_exists(s, &g).await?;
    role_or_404(s, &role).await?;
    if exists(s, &g, &role).await? {
        Ok(no_content())
    } else {
        Err(IdentityError::NotFound {
            kind: "role assignment",
            id: format!("role {role}"),
        })
    }
}

async fn do_revoke(s: &Identity, g: Grant, role: String) -> Result<Response> {
    let n = sqlx::query(
        "DELETE FROM role_assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
         AND target_id = $4 AND role_id = $5 AND inherited = $6",
    )
    .bind(g.actor_type)
    .bind(&g.actor_id)
    .bind(g.target_type)
    .bind(&g.target_id)
    .bind(&role)
    .bind(g.inherited)
    .execute(s.pool())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(IdentityError::NotFound {
            kind: "role assignment",
            id: format!("role {role}"),
        });
    }
    s.invalidate();
    Ok(no_content())
}

async fn do_list(s: &Identity, g: Grant) -> Result<Response> {
    check_exists(s, &g).await?;
    let roles: Vec<Role> = sqlx::query_as(
        "SELECT r.* FROM roles r JOIN role_assignments a ON a.role_id = r.id WHERE a.actor_type = $1 \
         AND a.actor_id = $2 AND a.target_type = $3 AND a.target_id = $4 AND a.inherited = $5 ORDER BY r.name",
    )
    .bind(g.actor_type)
    .bind(&g.actor_id)
    .bind(g.target_type)
    .bind(&g.target_id)
    .bind(g.inherited)
    .fetch_all(s.pool())
    .await?;
    let base = s.base_url();
    Ok(ok(list_body(
        "roles",
        roles.iter().map(|r| r.render(&base)).collect(),
        format!("{base}/roles"),
    )))
}

pub async fn grant(St(s): St<State>, Caller(c): Caller, uri: Uri) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GRANTS, Default::default())?;
    let (g, role) = parse(&uri)?;
    do_grant(&s, g, role.unwrap_or_default()).await
}

pub async fn check(St(s): St<State>, Caller(c): Caller, uri: Uri) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ASSIGNMENTS, Default::default())?;
    let (g, role) = parse(&uri)?;
    do_check(&s, g, role.unwrap_or_default()).await
}

pub async fn revoke(St(s): St<State>, Caller(c): Caller, uri: Uri) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GRANTS, Default::default())?;
    let (g, role) = parse(&uri)?;
    do_revoke(&s, g, role.unwrap_or_default()).await
}

pub async fn list_grants(St(s): St<State>, Caller(c): Caller, uri: Uri) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ASSIGNMENTS, Default::default())?;
    let (g, _) = parse(&uri)?;
    do_list(&s, g).await
}

fn system_grant(actor: &str, aid: String) -> Result<Grant> {
    let actor_type = match actor {
        "users" => "user",
        "groups" => "group",
        _ => {
            return Err(IdentityError::not_found(
                "resource",
                format!("/v3/system/{actor}"),
            ))
        }
    };
    Ok(Grant {
        actor_type,
        actor_id: aid,
        target_type: "system",
        target_id: "all".into(),
        inherited: 0,
    })
}

pub async fn grant_system(
    St(s): St<State>,
    Caller(c): Caller,
    Path((actor, aid, role)): Path<(String, String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GRANTS, Default::default())?;
    do_grant(&s, system_grant(&actor, aid)?, role).await
}

pub async fn check_system(
    St(s): St<State>,
    Caller(c): Caller,
    Path((actor, aid, role)): Path<(String, String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ASSIGNMENTS, Default::default())?;
    do_check(&s, system_grant(&actor, aid)?, role).await
}

pub async fn revoke_system(
    St(s): St<State>,
    Caller(c): Caller,
    Path((actor, aid, role)): Path<(String, String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GRANTS, Default::default())?;
    do_revoke(&s, system_grant(&actor, aid)?, role).await
}

pub async fn list_system_grants(
    St(s): St<State>,
    Caller(c): Caller,
    Path((actor, aid)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ASSIGNMENTS, Default::default())?;
    do_list(&s, system_grant(&actor, aid)?).await
}

/// `GET /v3/role_assignments`.
pub async fn list(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ASSIGNMENTS, Default::default())?;
    let effective = p.0.contains_key("effective");
    let names = p.0.contains_key("include_names");
    let pool = s.pool();
    let mut rows = store::all_assignments(pool).await?;
    if effective {
        // Groups become their members; roles gain what they imply; an
        // inherited grant becomes one on each project it reaches; roles of a
        // domain (not global) are left out, as they never reach a token.
        let pairs = store::implied_pairs(pool).await?;
        let domain_roles: std::collections::HashSet<String> =
            store::list::<Role>(pool, "roles", store::Filter::default(), "id")
                .await?
                .into_iter()
                .filter(|r| !r.domain_id.is_empty())
                .map(|r| r.id)
                .collect();
        let projects = if rows.iter().any(|a| a.inherited != 0) {
            store::list::<Project>(pool, "projects", store::Filter::default(), "id").await?
        } else {
            Vec::new()
        };
        let mut reached = Vec::new();
        for a in rows {
            if a.inherited == 0 {
                reached.push(a);
                continue;
            }
            for p in inherited_by(&projects, &a) {
                reached.push(Assignment {
                    target_type: "project".into(),
                    target_id: p,
                    inherited: 0,
                    ..a.clone()
                });
            }
        }
        let mut out = Vec::new();
        for a in reached {
            let users: Vec<String> = if a.actor_type == "group" {
                store::users_of_group(pool, &a.actor_id)
                    .await?
                    .into_iter()
                    .map(|u| u.id)
                    .collect()
            } else {
                vec![a.actor_id.clone()]
            };
            for role in expand(vec![a.role_id.clone()], &pairs) {
                if domain_roles.contains(&role) {
                    continue;
                }
                for u in &users {
                    out.push(Assignment {
                        actor_type: "user".into(),
                        actor_id: u.clone(),
                        role_id: role.clone(),
                        ..a.clone()
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.actor_id, &a.target_id, &a.role_id).cmp(&(&b.actor_id, &b.target_id, &b.role_id))
        });
        out.dedup_by(|a, b| {
            a.actor_id == b.actor_id
                && a.target_type == b.target_type
                && a.target_id == b.target_id
                && a.role_id == b.role_id
        });
        rows = out;
    }
    let want = |k: &str| p.get(k);
    rows.retain(|a| {
        want("user.id").is_none_or(|u| a.actor_type == "user" && a.actor_id == u)
            && want("group.id").is_none_or(|g| a.actor_type == "group" && a.actor_id == g)
            && want("role.id").is_none_or(|r| a.role_id == r)
            && want("scope.project.id")
                .is_none_or(|x| a.target_type == "project" && a.target_id == x)
            && want("scope.domain.id").is_none_or(|x| a.target_type == "domain" && a.target_id == x)
            && want("scope.system").is_none_or(|_| a.target_type == "system")
    });
    let base = s.base_url();
    let mut names_cache: HashMap<(String, String), Value> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for a in rows {
        let role = if names {
            let r = named(&s, &mut names_cache, "role", &a.role_id).await?;
            json!({"id": a.role_id, "name": r["name"]})
        } else {
            json!({"id": a.role_id})
        };
        let actor = if names {
            named(&s, &mut names_cache, &a.actor_type, &a.actor_id).await?
        } else {
            json!({"id": a.actor_id})
        };
        let scope = match a.target_type.as_str() {
            "system" => json!({"system": {"all": true}}),
            kind => {
                let v = if names {
                    named(&s, &mut names_cache, kind, &a.target_id).await?
                } else {
                    json!({"id": a.target_id})
                };
                json!({ kind: v })
            }
        };
        let link = match a.target_type.as_str() {
            "system" => format!(
                "{base}/system/{}s/{}/roles/{}",
                a.actor_type, a.actor_id, a.role_id
            ),
            t => format!(
                "{base}/{t}s/{}/{}s/{}/roles/{}",
                a.target_id, a.actor_type, a.actor_id, a.role_id
            ),
        };
        let mut item = json!({"role": role, "scope": scope, "links": {"assignment": link}});
        item[a.actor_type.as_str()] = actor;
        if a.inherited != 0 {
            item["scope"]["OS-INHERIT:inherited_to"] = json!("projects");
        }
        out.push(item);
    }
    Ok(ok(list_body(
        "role_assignments",
        out,
        format!("{base}/role_assignments"),
    )))
}

/// The projects an inherited grant reaches: every project of its domain, or
/// every project below its project (not the project itself).
fn inherited_by(projects: &[Project], a: &Assignment) -> Vec<String> {
    if a.target_type == "domain" {
        return projects
            .iter()
            .filter(|p| p.domain_id == a.target_id)
            .map(|p| p.id.clone())
            .collect();
    }
    let mut out = Vec::new();
    let mut frontier = vec![a.target_id.clone()];
    // (bounded by the number of projects: a parent cycle can't loop forever)
    for _ in 0..=projects.len() {
        let next: Vec<String> = projects
            .iter()
            .filter(|p| p.parent_id.as_ref().is_some_and(|pp| frontier.contains(pp)))
            .map(|p| p.id.clone())
            .filter(|id| !out.contains(id))
            .collect();
        if next.is_empty() {
            break;
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out
}

/// `{"id", "name", "domain": {...}}` for a user, group, project, domain or role.
async fn named(
    s: &Identity,
    cache: &mut HashMap<(String, String), Value>,
    kind: &str,
    id: &str,
) -> Result<Value> {
    let key = (kind.to_owned(), id.to_owned());
    if let Some(v) = cache.get(&key) {
        return Ok(v.clone());
    }
    let pool = s.pool();
    let dom = |d: Option<Domain>, did: &str| json!({"id": did, "name": d.map(|d| d.name)});
    let v = match kind {
        "user" => match store::get::<User>(pool, "users", id).await? {
            Some(u) => {
                json!({"id": id, "name": u.name, "domain": dom(store::get(pool, "domains", &u.domain_id).await?, &u.domain_id)})
            }
            None => json!({"id": id}),
        },
        "group" => match store::get::<Group>(pool, "groups", id).await? {
            Some(g) => {
                json!({"id": id, "name": g.name, "domain": dom(store::get(pool, "domains", &g.domain_id).await?, &g.domain_id)})
            }
            None => json!({"id": id}),
        },
        "project" => match store::get::<Project>(pool, "projects", id).await? {
            Some(p) => {
                json!({"id": id, "name": p.name, "domain": dom(store::get(pool, "domains", &p.domain_id).await?, &p.domain_id)})
            }
            None => json!({"id": id}),
        },
        "domain" => {
            json!({"id": id, "name": store::get::<Domain>(pool, "domains", id).await?.map(|d| d.name)})
        }
        _ => {
            json!({"id": id, "name": store::get::<Role>(pool, "roles", id).await?.map(|r| r.name)})
        }
    };
    cache.insert(key, v.clone());
    Ok(v)
}
