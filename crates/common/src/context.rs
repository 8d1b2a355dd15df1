//! The authenticated caller of a request.
//!
//! Identity builds an [`AuthContext`] from a validated token; every service
//! handler receives one and hands it to the policy layer. Role names are the
//! effective ones (implied roles already expanded: admin ⊃ member ⊃ reader).

use serde::{Deserialize, Serialize};

/// What a token is scoped to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Unscoped,
    Project {
        id: String,
        name: String,
        domain_id: String,
        domain_name: String,
    },
    Domain {
        id: String,
        name: String,
    },
    /// Keystone's `system: {"all": true}`.
    System,
}

/// A validated caller. Serializable so a saga can act later on behalf of
/// the caller that started it (it holds no secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub scope: Scope,
    /// Effective role names on the scope.
    pub roles: Vec<String>,
    /// Application credential the token was issued from, if any.
    pub application_credential_id: Option<String>,
}

impl AuthContext {
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r == name)
    }

    /// The cloud administrator: the `admin` role on any scope. Keystone's
    /// legacy `admin_required` rule behaves this way, and the seed's openrc
    /// (admin on project `admin`) relies on it for every admin command.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    /// The project a project-scoped token is scoped to.
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The domain a domain-scoped token is scoped to.
    pub fn domain_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn is_system(&self) -> bool {
        matches!(self.scope, Scope::System)
    }
}
