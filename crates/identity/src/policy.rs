//! The identity service's actions and who may perform them.
//!
//! Admin (the `admin` role on any scope) may do everything. Others may read
//! and manage only what is theirs: their own user, tokens, groups, projects
//! and application credentials. Every handler calls [`authorize`] with one
//! of these constants; the integration tests walk the same table.

use ferro_common::policy::{enforce, Rule, Target};
use ferro_common::{Action, AuthContext};

use crate::error::Result;

pub type Policy = (Action, Rule);

pub const LIST_DOMAINS: Policy = ("identity:list_domains", Rule::Admin);
pub const GET_DOMAIN: Policy = ("identity:get_domain", Rule::Admin);
pub const MANAGE_DOMAINS: Policy = ("identity:manage_domains", Rule::Admin);
pub const LIST_PROJECTS: Policy = ("identity:list_projects", Rule::Admin);
pub const GET_PROJECT: Policy = ("identity:get_project", Rule::ProjectReader);
pub const MANAGE_PROJECTS: Policy = ("identity:manage_projects", Rule::Admin);
pub const LIST_USERS: Policy = ("identity:list_users", Rule::Admin);
pub const GET_USER: Policy = ("identity:get_user", Rule::AdminOrSelf);
pub const MANAGE_USERS: Policy = ("identity:manage_users", Rule::Admin);
pub const LIST_USER_PROJECTS: Policy = ("identity:list_user_projects", Rule::AdminOrSelf);
pub const LIST_USER_GROUPS: Policy = ("identity:list_groups_for_user", Rule::AdminOrSelf);
pub const LIST_GROUPS: Policy = ("identity:list_groups", Rule::Admin);
pub const MANAGE_GROUPS: Policy = ("identity:manage_groups", Rule::Admin);
pub const LIST_ROLES: Policy = ("identity:list_roles", Rule::Admin);
pub const MANAGE_ROLES: Policy = ("identity:manage_roles", Rule::Admin);
pub const LIST_ASSIGNMENTS: Policy = ("identity:list_role_assignments", Rule::Admin);
pub const MANAGE_GRANTS: Policy = ("identity:manage_grants", Rule::Admin);
pub const APP_CREDS: Policy = ("identity:application_credentials", Rule::AdminOrSelf);
pub const READ_CATALOG: Policy = ("identity:get_catalog_entry", Rule::Authenticated);
pub const MANAGE_CATALOG: Policy = ("identity:manage_catalog", Rule::Admin);
pub const CREDENTIALS: Policy = ("identity:credentials", Rule::AdminOrSelf);
pub const LIST_CREDENTIALS: Policy = ("identity:list_credentials", Rule::Authenticated);
pub const MANAGE_RECORDS: Policy = (
    "identity:manage_policies_consumers_endpoint_groups",
    Rule::Admin,
);
pub const VALIDATE_TOKEN: Policy = ("identity:validate_token", Rule::AdminOrSelf);

pub fn authorize(ctx: &AuthContext, policy: Policy, target: Target<'_>) -> Result<()> {
    Ok(enforce(ctx, policy.0, policy.1, target)?)
}

pub fn on_user(user_id: &str) -> Target<'_> {
    Target {
        user_id: Some(user_id),
        project_id: None,
    }
}

pub fn on_project(project_id: &str) -> Target<'_> {
    Target {
        project_id: Some(project_id),
        user_id: None,
    }
}
