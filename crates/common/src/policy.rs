//! One policy layer for every service.
//!
//! OpenStack's default personas are admin, member and reader, on project,
//! domain or system scope. A service lists its actions with one [`Rule`]
//! each (see the service's `policy` module) and its handlers call
//! [`enforce`] before doing anything. Denials carry the action name so the
//! message reads like Keystone's and Nova's.

use crate::context::AuthContext;

/// Who may perform an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Any authenticated caller.
    Authenticated,
    /// The cloud administrator only.
    Admin,
    /// Admin, or the caller acting on their own user (`target.user_id`).
    AdminOrSelf,
    /// Admin, or any role on the target project (reader and up).
    ProjectReader,
    /// Admin, or member (or admin) on the target project.
    ProjectMember,
}

/// What an action is performed on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Target<'a> {
    pub project_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

/// A named action, e.g. `identity:list_users`.
pub type Action = &'static str;

/// Refused by policy.
#[derive(Debug, thiserror::Error)]
#[error("You are not authorized to perform the requested action: {action}.")]
pub struct Denied {
    pub action: Action,
}

/// Checks `rule` for `ctx` on `target`.
pub fn allows(ctx: &AuthContext, rule: Rule, target: Target<'_>) -> bool {
    if ctx.is_admin() {
        return true;
    }
    let on_target_project = |ctx: &AuthContext| matches!((ctx.project_id(), target.project_id), (Some(a), Some(b)) if a == b);
    match rule {
        Rule::Authenticated => true,
        Rule::Admin => false,
        Rule::AdminOrSelf => target.user_id == Some(ctx.user_id.as_str()),
        Rule::ProjectReader => {
            on_target_project(ctx) && (ctx.has_role("reader") || ctx.has_role("member"))
        }
        Rule::ProjectMember => on_target_project(ctx) && ctx.has_role("member"),
    }
}

/// [`allows`], or a [`Denied`] naming the action.
pub fn enforce(
    ctx: &AuthContext,
    action: Action,
    rule: Rule,
    target: Target<'_>,
) -> Result<(), Denied> {
    if allows(ctx, rule, target) {
        Ok(())
    } else {
        tracing::info!(user_id = %ctx.user_id, action, "policy denied");
        Err(Denied { action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Scope;

    fn ctx(roles: &[&str], project: Option<&str>) -> AuthContext {
        AuthContext {
            user_id: "u".into(),
            user_name: "u".into(),
            user_domain_id: "d".into(),
            user_domain_name: "d".into(),
            scope: match project {
                Some(p) => Scope::Project {
                    id: p.into(),
                    name: p.into(),
                    domain_id: "d".into(),
                    domain_name: "d".into(),
                },
                None => Scope::Unscoped,
            },
            roles: roles.iter().map(|s| s.to_string()).collect(),
            application_credential_id: None,
        }
    }

    #[test]
    fn personas_table() {
        let a = Target {
            project_id: Some("a"),
            user_id: None,
        };
        let own = Target {
            project_id: None,
            user_id: Some("u"),
        };
        let other = Target {
            project_id: None,
            user_id: Some("x"),
        };
        type Case<'a> = (&'a [&'a str], Option<&'a str>, Rule, Target<'a>, bool);
        let cases: &[Case] = &[
            (
                &["admin", "member", "reader"],
                Some("z"),
                Rule::Admin,
                a,
                true,
            ),
            (&["member", "reader"], Some("a"), Rule::Admin, a, false),
            (
                &["member", "reader"],
                Some("a"),
                Rule::ProjectMember,
                a,
                true,
            ),
            (&["reader"], Some("a"), Rule::ProjectMember, a, false),
            (&["reader"], Some("a"), Rule::ProjectReader, a, true),
            (
                &["member", "reader"],
                Some("b"),
                Rule::ProjectReader,
                a,
                false,
            ),
            (&["member"], None, Rule::ProjectReader, a, false),
            (&[], None, Rule::AdminOrSelf, own, true),
            (&["member"], Some("a"), Rule::AdminOrSelf, other, false),
            (&[], None, Rule::Authenticated, a, true),
        ];
        for (i, (roles, project, rule, target, want)) in cases.iter().enumerate() {
            assert_eq!(
                allows(&ctx(roles, *project), *rule, *target),
                *want,
                "case {i}"
            );
        }
    }
}
