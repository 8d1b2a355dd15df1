//! Identity logic: authentication, token validation, effective roles and
//! caches. Nothing in here knows about HTTP.
//!
//! Validation must be cheap (it runs on every API call of every service):
//! decrypting a token and checking the revocation index take microseconds,
//! and the user/scope/roles behind a token come from a cache that every
//! identity write clears. A time limit on cache entries bounds staleness
//! when several controllers share one PostgreSQL database.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ferro_common::{ids, time, AuthContext, Scope};
use ferro_store::{sqlx, Db};
use serde_json::value::RawValue;

use crate::error::{IdentityError, Result};
use crate::model::*;
use crate::revocation::{Event, RevocationIndex};
use crate::store::{self, Filter};
use crate::token::{self, Payload, ScopeRef, TokenKeys};

/// Tunables of the identity service.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Token lifetime in seconds (Keystone's default: one hour).
    pub token_ttl_secs: i64,
    /// bcrypt cost for passwords and application credential secrets.
    pub bcrypt_cost: u32,
    /// How long a resolved token context may be served from cache.
    pub cache_ttl: Duration,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            token_ttl_secs: 3600,
            bcrypt_cost: 10,
            cache_ttl: Duration::from_secs(5),
        }
    }
}

/// Everything a token stands for, resolved from the store.
#[derive(Debug)]
pub struct Resolved {
    pub ctx: AuthContext,
    /// Effective roles as (id, name).
    pub roles: Vec<(String, String)>,
    pub app_cred_name: Option<String>,
}

type CacheKey = (String, ScopeRef, Option<String>);

/// Name lookups made by every password authentication, cached like
/// resolutions (cleared on every write, bounded in age).
#[derive(Default)]
struct Lookups {
    domains_by_name: HashMap<String, (Instant, Domain)>,
    domains_by_id: HashMap<String, (Instant, Domain)>,
    users_by_name: HashMap<(String, String), (Instant, User)>,
    projects_by_name: HashMap<(String, String), (Instant, Project)>,
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    m: &HashMap<K, (Instant, V)>,
    k: &K,
    ttl: Duration,
) -> Option<V> {
    m.get(k)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

pub struct Identity {
    pub(crate) db: Db,
    keys: RwLock<TokenKeys>,
    revocations: RwLock<RevocationIndex>,
    /// `created_at` of the newest revocation event seen in the database.
    pulled_until: std::sync::atomic::AtomicI64,
    cache: Mutex<HashMap<CacheKey, (Instant, Arc<Resolved>)>>,
    lookups: Mutex<Lookups>,
    catalog: RwLock<Option<Arc<Box<RawValue>>>>,
    pub config: IdentityConfig,
    /// Public base URL of the identity API, ending in `/v3`.
    base: RwLock<String>,
}

/// A freshly issued token.
pub struct Issued {
    pub token: String,
    pub payload: Payload,
    pub resolved: Arc<Resolved>,
}

/// The `identity` part of an authentication request, already parsed.
pub enum Credentials {
    Password {
        user: UserRef,
        password: String,
    },
    Token {
        id: String,
    },
    AppCred {
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: String,
    },
}

/// A user named by id, or by name within a domain named by id or name.
#[derive(Clone, Debug)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Clone, Debug)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// The requested scope, before resolution.
#[derive(Clone, Debug)]
pub enum ScopeRequest {
    None,
    Unscoped,
    ProjectId(String),
    ProjectName { name: String, domain: DomainRef },
    Domain(DomainRef),
    System,
}

fn auth_failed() -> IdentityError {
    IdentityError::Unauthorized
}

impl Identity {
    pub fn new(db: Db, keys: TokenKeys, config: IdentityConfig) -> Self {
        Identity {
            db,
            keys: RwLock::new(keys),
            revocations: RwLock::new(RevocationIndex::default()),
            pulled_until: std::sync::atomic::AtomicI64::new(0),
            cache: Mutex::new(HashMap::new()),
            lookups: Mutex::new(Lookups::default()),
            catalog: RwLock::new(None),
            config,
            base: RwLock::new("http://localhost:5000/v3".into()),
        }
    }

    /// Opens the key repository of a state directory.
    pub fn with_key_dir(db: Db, dir: &Path, config: IdentityConfig) -> Result<Self> {
        let keys = TokenKeys::open(dir).map_err(|e| IdentityError::Internal(e.to_string()))?;
        Ok(Self::new(db, keys, config))
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    pub fn set_base_url(&self, base: &str) {
        if let Ok(mut b) = self.base.write() {
            *b = base.trim_end_matches('/').to_owned();
        }
    }

    pub fn base_url(&self) -> String {
        self.base.read().map(|b| b.clone()).unwrap_or_default()
    }

    /// Forgets every cached resolution and the rendered catalog. Called
    /// after every identity write.
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
        if let Ok(mut l) = self.lookups.lock() {
            *l = Lookups::default();
        }
        if let Ok(mut c) = self.catalog.write() {
            *c = None;
        }
    }

    /// Loads revocation events younger than the token lifetime.
    pub async fn load_revocations(&self) -> Result<()> {
        let horizon = time::now_micros() - self.config.token_ttl_secs * 1_000_000;
        type Row = (Option<String>, Option<String>, Option<String>, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT audit_id, user_id, project_id, issued_before FROM revocation_events WHERE issued_before >= $1",
        )
        .bind(horizon)
        .fetch_all(self.pool())
        .await?;
        let mut idx = RevocationIndex::default();
        for (audit_id, user_id, project_id, issued_before) in rows {
            idx.add(&Event {
                audit_id,
                user_id,
                project_id,
                issued_before,
            });
        }
        if let Ok(mut r) = self.revocations.write() {
            *r = idx;
        }
        Ok(())
    }

    /// Applies revocations that other controllers sharing the database
    /// recorded since the last pull (run every few seconds when the
    /// database is PostgreSQL). Returns how many were new here.
    pub async fn pull_revocations(&self) -> Result<usize> {
        use std::sync::atomic::Ordering;
        // A margin for events committed late by a slower controller.
        let since = self.pulled_until.load(Ordering::Relaxed) - 10_000_000;
        type Row = (Option<String>, Option<String>, Option<String>, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT audit_id, user_id, project_id, issued_before, created_at FROM revocation_events WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let mut new = 0;
        let mut newest = self.pulled_until.load(Ordering::Relaxed);
        if let Ok(mut idx) = self.revocations.write() {
            for (audit_id, user_id, project_id, issued_before, created_at) in rows {
                newest = newest.max(created_at);
                if idx.add(&Event {
                    audit_id,
                    user_id,
                    project_id,
                    issued_before,
                }) {
                    new += 1;
                }
            }
        }
        self.pulled_until.store(newest, Ordering::Relaxed);
        if new > 0 {
            self.invalidate();
        }
        Ok(new)
    }

    /// Records a revocation event and applies it at once.
    pub async fn revoke(&self, e: Event) -> Result<()> {
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO revocation_events (id, audit_id, user_id, project_id, issued_before, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ids::hex_id())
        .bind(e.audit_id.clone())
        .bind(e.user_id.clone())
        .bind(e.project_id.clone())
        .bind(e.issued_before)
        .bind(now)
        .execute(self.pool())
        .await?;
        let horizon = now - self.config.token_ttl_secs * 1_000_000;
        if let Ok(mut r) = self.revocations.write() {
            r.add(&e);
            r.prune(horizon);
        }
        sqlx::query("DELETE FROM revocation_events WHERE issued_before < $1")
            .bind(horizon)
            .execute(self.pool())
            .await?;
        self.invalidate();
        Ok(())
    }

    /// Revokes every token of a user issued until now.
    pub async fn revoke_user(&self, user_id: &str) -> Result<()> {
        self.revoke(Event {
            user_id: Some(user_id.into()),
            issued_before: time::now_micros(),
            ..Default::default()
        })
        .await
    }

    pub async fn revoke_project(&self, project_id: &str) -> Result<()> {
        self.revoke(Event {
            project_id: Some(project_id.into()),
            issued_before: time::now_micros(),
            ..Default::default()
        })
        .await
    }

    // ---- authentication ----

    pub async fn authenticate(&self, creds: Credentials, scope: ScopeRequest) -> Result<Issued> {
        let now = time::now_micros();
        let mut expires_at = now + self.config.token_ttl_secs * 1_000_000;
        let mut audit_ids = vec![token::new_audit_id()];
        let (user, methods, app_cred) = match creds {
            Credentials::Password { user, password } => {
                let user = self.find_user_for_auth(&user).await?;
                let hash = user.password_hash.clone().ok_or_else(auth_failed)?;
                if !verify_secret(password, hash).await {
                    tracing::info!(user_id = %user.id, "password authentication failed");
                    return Err(auth_failed());
                }
                (user, token::METHOD_PASSWORD, None)
            }
            Credentials::Token { id } => {
                let (parent, _) = self.validate(&id).await.map_err(|_| auth_failed())?;
                if parent.app_cred_id.is_some() {
                    return Err(IdentityError::ForbiddenWith(
                        "A token made from an application credential cannot be rescoped.".into(),
                    ));
                }
                let user = store::get::<User>(self.pool(), "users", &parent.user_id)
                    .await?
                    .ok_or_else(auth_failed)?;
                expires_at = parent.expires_at;
                if let Some(a) = parent.audit_ids.first() {
                    audit_ids.push(*a);
                }
                // a rescoped token keeps the methods that proved the user
                (user, token::METHOD_TOKEN | parent.methods, None)
            }
            Credentials::AppCred {
                id,
                name,
                user,
                secret,
            } => {
                let cred = self.find_app_cred(id, name, user).await?;
                if cred.expires_at.is_some_and(|t| t <= now) {
                    return Err(IdentityError::UnauthorizedWith(
                        "The application credential has expired.".into(),
                    ));
                }
                if !verify_secret(secret, cred.secret_hash.clone()).await {
                    return Err(auth_failed());
                }
                if !matches!(scope, ScopeRequest::None) {
                    return Err(IdentityError::UnauthorizedWith(
                        "Application credentials cannot request a scope.".into(),
                    ));
                }
                if let Some(t) = cred.expires_at {
                    expires_at = expires_at.min(t);
                }
                let user = store::get::<User>(self.pool(), "users", &cred.user_id)
                    .await?
                    .ok_or_else(auth_failed)?;
                (user, token::METHOD_APP_CRED, Some(cred))
            }
        };
        if user.enabled == 0 {
            return Err(auth_failed());
        }
        let scope_ref = match &app_cred {
            Some(c) => ScopeRef::Project(c.project_id.clone()),
            None => self.resolve_scope_request(&user, scope).await?,
        };
        let payload = Payload {
            methods,
            user_id: user.id.clone(),
            scope: scope_ref,
            issued_at: now,
            expires_at,
            audit_ids,
            app_cred_id: app_cred.map(|c| c.id),
        };
        let resolved = self.resolve(&payload).await.map_err(|e| match e {
            IdentityError::Internal(_) => e,
            _ => IdentityError::UnauthorizedWith(format!(
                "User {} has no access to the requested scope.",
                user.id
            )),
        })?;
        let token = self
            .keys
            .read()
            .map_err(|_| IdentityError::Internal("key lock".into()))?
            .seal(&payload);
        tracing::info!(user_id = %user.id, "token issued");
        Ok(Issued {
            token,
            payload,
            resolved,
        })
    }

    async fn find_domain(&self, d: &DomainRef) -> Result<Option<Domain>> {
        let ttl = self.config.cache_ttl;
        let cached = self.lookups.lock().ok().and_then(|l| match d {
            DomainRef::Id(id) => fresh(&l.domains_by_id, id, ttl),
            DomainRef::Name(n) => fresh(&l.domains_by_name, n, ttl),
        });
        if cached.is_some() {
            return Ok(cached);
        }
        let found: Option<Domain> = match d {
            DomainRef::Id(id) => store::get(self.pool(), "domains", id).await?,
            DomainRef::Name(n) => store::domain_by_name(self.pool(), n).await?,
        };
        if let (Some(dom), Ok(mut l)) = (&found, self.lookups.lock()) {
            l.domains_by_id
                .insert(dom.id.clone(), (Instant::now(), dom.clone()));
            l.domains_by_name
                .insert(dom.name.clone(), (Instant::now(), dom.clone()));
        }
        Ok(found)
    }

    async fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>> {
        let key = (domain_id.to_owned(), name.to_owned());
        if let Some(u) = self
            .lookups
            .lock()
            .ok()
            .and_then(|l| fresh(&l.users_by_name, &key, self.config.cache_ttl))
        {
            return Ok(Some(u));
        }
        let found = store::user_by_name(self.pool(), domain_id, name).await?;
        if let (Some(u), Ok(mut l)) = (&found, self.lookups.lock()) {
            l.users_by_name.insert(key, (Instant::now(), u.clone()));
        }
        Ok(found)
    }

    async fn project_by_name(&self, domain_id: &str, name: &str) -> Result<Option<Project>> {
        let key = (domain_id.to_owned(), name.to_owned());
        if let Some(p) = self
            .lookups
            .lock()
            .ok()
            .and_then(|l| fresh(&l.projects_by_name, &key, self.config.cache_ttl))
        {
            return Ok(Some(p));
        }
        let found = store::project_by_name(self.pool(), domain_id, name).await?;
        if let (Some(p), Ok(mut l)) = (&found, self.lookups.lock()) {
            l.projects_by_name.insert(key, (Instant::now(), p.clone()));
        }
        Ok(found)
    }

    async fn find_user_for_auth(&self, u: &UserRef) -> Result<User> {
        let user = match u {
            UserRef::Id(id) => store::get::<User>(self.pool(), "users", id).await?,
            UserRef::Name { name, domain } => {
                let Some(d) = self.find_domain(domain).await? else {
                    return Err(auth_failed());
                };
                if d.enabled == 0 {
                    return Err(auth_failed());
                }
                self.user_by_name(&d.id, name).await?
            }
        };
        let user = user.ok_or_else(auth_failed)?;
        let domain = self
            .find_domain(&DomainRef::Id(user.domain_id.clone()))
            .await?;
        if user.enabled == 0 || domain.is_none_or(|d| d.enabled == 0) {
            return Err(auth_failed());
        }
        Ok(user)
    }

    async fn find_app_cred(
        &self,
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
    ) -> Result<AppCred> {
        let cred =
            match (id, name, user) {
                (Some(id), _, _) => {
                    store::get::<AppCred>(self.pool(), "application_credentials", &id).await?
                }
                (None, Some(name), Some(u)) => {
                    let user = self.find_user_for_auth(&u).await?;
                    sqlx::query_as(
                        "SELECT * FROM application_credentials WHERE user_id = $1 AND name = $2",
                    )
                    .bind(&user.id)
                    .bind(&name)
                    .fetch_optional(self.pool())
                    .await?
                }
                _ => return Err(IdentityError::bad(
                    "An application credential is named by id, or by name together with its user.",
                )),
            };
        cred.ok_or_else(auth_failed)
    }

    async fn resolve_scope_request(&self, user: &User, scope: ScopeRequest) -> Result<ScopeRef> {
        Ok(match scope {
            ScopeRequest::Unscoped => ScopeRef::Unscoped,
            ScopeRequest::None => match &user.default_project_id {
                // Keystone scopes to the default project when the user
                // still has a role there, and issues an unscoped token
                // otherwise.
                Some(p)
                    if !self
                        .effective_roles(&user.id, &ScopeRef::Project(p.clone()))
                        .await?
                        .is_empty() =>
                {
                    ScopeRef::Project(p.clone())
                }
                _ => ScopeRef::Unscoped,
            },
            ScopeRequest::ProjectId(id) => ScopeRef::Project(id),
            ScopeRequest::ProjectName { name, domain } => {
                let d = self.find_domain(&domain).await?.ok_or_else(auth_failed)?;
                let p = self
                    .project_by_name(&d.id, &name)
                    .await?
                    .ok_or_else(auth_failed)?;
                ScopeRef::Project(p.id)
            }
            ScopeRequest::Domain(d) => {
                ScopeRef::Domain(self.find_domain(&d).await?.ok_or_else(auth_failed)?.id)
            }
            ScopeRequest::System => ScopeRef::System,
        })
    }

    // ---- validation ----

    /// Decrypts and checks a token, and resolves what it stands for.
    pub async fn validate(&self, token: &str) -> Result<(Payload, Arc<Resolved>)> {
        let payload = self
            .keys
            .read()
            .map_err(|_| IdentityError::Internal("key lock".into()))?
            .open_token(token)
            .map_err(|_| auth_failed())?;
        if payload.expires_at <= time::now_micros() {
            return Err(auth_failed());
        }
        if self
            .revocations
            .read()
            .map(|r| r.is_revoked(&payload))
            .unwrap_or(true)
        {
            return Err(auth_failed());
        }
        let resolved = self.resolve(&payload).await?;
        Ok((payload, resolved))
    }

    async fn resolve(&self, p: &Payload) -> Result<Arc<Resolved>> {
        let key: CacheKey = (p.user_id.clone(), p.scope.clone(), p.app_cred_id.clone());
        if let Ok(c) = self.cache.lock() {
            if let Some((at, r)) = c.get(&key) {
                if at.elapsed() < self.config.cache_ttl {
                    return Ok(r.clone());
                }
            }
        }
        let r = Arc::new(self.resolve_uncached(p).await?);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 100_000 {
                c.clear();
            }
            c.insert(key, (Instant::now(), r.clone()));
        }
        Ok(r)
    }

    async fn resolve_uncached(&self, p: &Payload) -> Result<Resolved> {
        let pool = self.pool();
        let user = store::get::<User>(pool, "users", &p.user_id)
            .await?
            .ok_or_else(auth_failed)?;
        let udom = store::get::<Domain>(pool, "domains", &user.domain_id)
            .await?
            .ok_or_else(auth_failed)?;
        if user.enabled == 0 || udom.enabled == 0 {
            return Err(auth_failed());
        }
        let scope = match &p.scope {
            ScopeRef::Unscoped => Scope::Unscoped,
            ScopeRef::System => Scope::System,
            ScopeRef::Project(id) => {
                let proj = store::get::<Project>(pool, "projects", id)
                    .await?
                    .ok_or_else(auth_failed)?;
                let pdom = store::get::<Domain>(pool, "domains", &proj.domain_id)
                    .await?
                    .ok_or_else(auth_failed)?;
                if proj.enabled == 0 || pdom.enabled == 0 {
                    return Err(auth_failed());
                }
                Scope::Project {
                    id: proj.id,
                    name: proj.name,
                    domain_id: pdom.id,
                    domain_name: pdom.name,
                }
            }
            ScopeRef::Domain(id) => {
                let d = store::get::<Domain>(pool, "domains", id)
                    .await?
                    .ok_or_else(auth_failed)?;
                if d.enabled == 0 {
                    return Err(auth_failed());
                }
                Scope::Domain {
                    id: d.id,
                    name: d.name,
                }
            }
        };
        let mut roles = if matches!(p.scope, ScopeRef::Unscoped) {
            Vec::new()
        } else {
            self.effective_roles(&user.id, &p.scope).await?
        };
        let mut app_cred_name = None;
        if let Some(cred_id) = &p.app_cred_id {
            let cred = store::get::<AppCred>(pool, "application_credentials", cred_id)
                .await?
                .ok_or_else(auth_failed)?;
            if cred.expires_at.is_some_and(|t| t <= time::now_micros()) {
                return Err(auth_failed());
            }
            let allowed = self.expand_implied(cred.role_ids()).await?;
            roles.retain(|r| allowed.contains(&r.id));
            app_cred_name = Some(cred.name);
        }
        if !matches!(p.scope, ScopeRef::Unscoped) && roles.is_empty() {
            return Err(auth_failed());
        }
        let role_pairs: Vec<(String, String)> = roles
            .iter()
            .map(|r| (r.id.clone(), r.name.clone()))
            .collect();
        Ok(Resolved {
            ctx: AuthContext {
                user_id: user.id,
                user_name: user.name,
                user_domain_id: udom.id,
                user_domain_name: udom.name,
                scope,
                roles: roles.into_iter().map(|r| r.name).collect(),
                application_credential_id: p.app_cred_id.clone(),
            },
            roles: role_pairs,
            app_cred_name,
        })
    }

    // ---- roles ----

    /// Role ids implied by `ids`, transitively, including `ids` themselves.
    pub async fn expand_implied(&self, ids: Vec<String>) -> Result<BTreeSet<String>> {
        let pairs = store::implied_pairs(self.pool()).await?;
        Ok(expand(ids, &pairs))
    }

    /// Effective roles of a user on a scope: direct and group assignments,
    /// inherited domain assignments for projects, implied roles expanded.
    pub async fn effective_roles(&self, user_id: &str, scope: &ScopeRef) -> Result<Vec<Role>> {
        let assignments = store::assignments_for_actors(self.pool(), user_id).await?;
        let (kind, target, domain_of_project) = match scope {
            ScopeRef::Project(id) => {
                let d = store::get::<Project>(self.pool(), "projects", id)
                    .await?
                    .map(|p| p.domain_id);
                ("project", id.as_str(), d)
            }
            ScopeRef::Domain(id) => ("domain", id.as_str(), None),
            ScopeRef::System => ("system", "all", None),
            ScopeRef::Unscoped => return Ok(Vec::new()),
        };
        // the projects above a project: their inherited grants reach it
        let mut ancestors = Vec::new();
        if kind == "project"
            && assignments
                .iter()
                .any(|a| a.inherited == 1 && a.target_type == "project")
        {
            let mut at = store::get::<Project>(self.pool(), "projects", target).await?;
            for _ in 0..64 {
                let Some(parent) = at.and_then(|p| p.parent_id) else {
                    break;
                };
                ancestors.push(parent.clone());
                at = store::get::<Project>(self.pool(), "projects", &parent).await?;
            }
        }
        let direct: Vec<String> = assignments
            .iter()
            .filter(|a| {
                (a.target_type == kind && a.target_id == target && a.inherited == 0)
                    || (a.inherited == 1
                        && a.target_type == "domain"
                        && Some(&a.target_id) == domain_of_project.as_ref())
                    || (a.inherited == 1
                        && a.target_type == "project"
                        && ancestors.contains(&a.target_id))
            })
            .map(|a| a.role_id.clone())
            .collect();
        if direct.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.expand_implied(direct).await?;
        let mut roles = Vec::with_capacity(all.len());
        for id in all {
            // a domain's own roles only lend what they imply to a token
            if let Some(r) = store::get::<Role>(self.pool(), "roles", &id).await? {
                if r.domain_id.is_empty() {
                    roles.push(r);
                }
            }
        }
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roles)
    }

    // ---- catalog ----

    /// The catalog of enabled services and endpoints, rendered once.
    pub async fn catalog(&self) -> Result<Arc<Box<RawValue>>> {
        if let Ok(c) = self.catalog.read() {
            if let Some(c) = c.as_ref() {
                return Ok(c.clone());
            }
        }
        let services: Vec<Service> =
            store::list(self.pool(), "services", Filter::default(), "type").await?;
        let endpoints: Vec<Endpoint> =
            store::list(self.pool(), "endpoints", Filter::default(), "interface").await?;
        let mut out = Vec::new();
        for s in services.iter().filter(|s| s.enabled != 0) {
            let eps: Vec<_> = endpoints
                .iter()
                .filter(|e| e.service_id == s.id && e.enabled != 0)
                .map(|e| {
                    serde_json::json!({"id": e.id, "interface": e.interface, "region_id": e.region_id,
                                       "region": e.region_id, "url": e.url})
                })
                .collect();
            out.push(
                serde_json::json!({"id": s.id, "type": s.kind, "name": s.name, "endpoints": eps}),
            );
        }
        let raw =
            RawValue::from_string(serde_json::to_string(&out).unwrap_or_else(|_| "[]".into()))
                .map_err(|e| IdentityError::Internal(e.to_string()))?;
        let raw = Arc::new(raw);
        if let Ok(mut c) = self.catalog.write() {
            *c = Some(raw.clone());
        }
        Ok(raw)
    }

    /// Makes sure the catalog lists `kind` served at `url` (all three
    /// interfaces) in `region`. Called at start for each service the binary
    /// serves; user-made services are left alone.
    pub async fn register_service(
        &self,
        kind: &str,
        name: &str,
        url: &str,
        region: &str,
    ) -> Result<()> {
        let pool = self.pool();
        let now = time::now_micros();
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT id FROM services WHERE type = $1 AND managed = 1")
                .bind(kind)
                .fetch_optional(pool)
                .await?;
        let service_id = match existing {
            Some((id,)) => id,
            None => {
                let id = ids::hex_id();
                sqlx::query(
                    "INSERT INTO services (id, type, name, description, enabled, managed, created_at) \
                     VALUES ($1, $2, $3, $4, 1, 1, $5)",
                )
                .bind(&id)
                .bind(kind)
                .bind(name)
                .bind(format!("ferrostack {kind} service"))
                .bind(now)
                .execute(pool)
                .await?;
                id
            }
        };
        for interface in ["public", "internal", "admin"] {
            let updated = sqlx::query(
                "UPDATE endpoints SET url = $1, region_id = $2 WHERE service_id = $3 AND interface = $4",
            )
            .bind(url)
            .bind(region)
            .bind(&service_id)
            .bind(interface)
            .execute(pool)
            .await?
            .rows_affected();
            if updated == 0 {
                sqlx::query(
                    "INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6)",
                )
                .bind(ids::hex_id())
                .bind(&service_id)
                .bind(interface)
                .bind(region)
                .bind(url)
                .bind(now)
                .execute(pool)
                .await?;
            }
        }
        self.invalidate();
        Ok(())
    }

    // ---- secrets ----

    pub async fn hash_secret(&self, secret: String) -> Result<String> {
        let cost = self.config.bcrypt_cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(secret, cost))
            .await
            .map_err(|e| IdentityError::Internal(e.to_string()))?
            .map_err(|e| IdentityError::Internal(e.to_string()))
    }
}

async fn verify_secret(secret: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::verify(secret, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Transitive closure of implied roles.
pub fn expand(ids: Vec<String>, pairs: &[(String, String)]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = ids.into_iter().collect();
    loop {
        let before = out.len();
        for (prior, implied) in pairs {
            if out.contains(prior) {
                out.insert(implied.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

impl ferro_common::auth::Authenticator for Identity {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> futures::future::BoxFuture<'a, Option<AuthContext>> {
        Box::pin(async move { self.validate(token).await.ok().map(|(_, r)| r.ctx.clone()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_roles_expand_transitively_and_stop_on_cycles() {
        let pairs = vec![
            ("admin".to_string(), "member".to_string()),
            ("member".to_string(), "reader".to_string()),
            ("reader".to_string(), "admin".to_string()),
        ];
        assert_eq!(expand(vec!["member".into()], &pairs).len(), 3);
        assert_eq!(expand(vec!["x".into()], &pairs).len(), 1);
    }
}
