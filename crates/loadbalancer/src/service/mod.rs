//! Load-balancer logic, without HTTP: who may see and change what,
//! Octavia's validation and its rule that nothing under a load balancer
//! changes while a change is pending, revisions, and the network node's
//! side (the specs it runs, the reports it sends).
//!
//! Every write runs in one transaction that also bumps the load
//! balancer's revision compare-and-set, so two concurrent changes can't
//! both pass the "not pending" check: the second gets Octavia's 409.

mod balancers;
mod l7;
mod listeners;
mod monitors;
mod pools;
mod quotas;
mod runtime;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use ferro_common::auth::SharedAuth;
use ferro_common::policy::{self, Rule, Target};
use ferro_common::AuthContext;
use ferro_network::NetworkService;
use ferro_store::Db;
use sqlx::{Any, Transaction};

use crate::certificates::Certificates;
use crate::error::{LbError, Result};
use crate::model::{L7Policy, L7Rule, Listener, LoadBalancer, Member, Monitor, Pool, Tree};

pub use balancers::BalancerCreate;
pub use l7::{L7PolicyCreate, L7PolicyUpdate, L7RuleCreate, L7RuleUpdate};
pub use listeners::ListenerCreate;
pub use monitors::MonitorCreate;
pub use pools::{MemberCreate, PoolCreate};

pub struct LoadBalancerService {
    pub db: Db,
    pub auth: SharedAuth,
    pub network: Arc<NetworkService>,
    /// `http://host:9876`
    pub base_url: String,
    /// Where TERMINATED_HTTPS listeners' certificates come from.
    certificates: OnceLock<Arc<dyn Certificates>>,
}

/// What to load: every load balancer, one project's, or one.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    All,
    Project(&'a str),
    One(&'a str),
}

impl LoadBalancerService {
    pub fn new(db: Db, auth: SharedAuth, network: Arc<NetworkService>, base_url: String) -> Self {
        LoadBalancerService {
            db,
            auth,
            network,
            base_url,
            certificates: OnceLock::new(),
        }
    }

    pub fn set_certificates(&self, store: Arc<dyn Certificates>) {
        let _ = self.certificates.set(store);
    }

    /// The PEM bundle `reference` names for `project`, or Octavia's 400.
    pub(crate) async fn certificate(&self, project: &str, reference: &str) -> Result<String> {
        let Some(store) = self.certificates.get() else {
            return Err(LbError::bad(
                "Validation failure: this cloud has no key manager to read certificates from.",
            ));
        };
        store.bundle(project, reference).await.map_err(|e| match e {
            crate::certificates::CertificateError::Failed(why) => {
                LbError::Internal(format!("reading certificate {reference}: {why}"))
            }
            e => LbError::bad(format!("Could not retrieve certificate: {reference}: {e}")),
        })
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    fn enforce(
        &self,
        ctx: &AuthContext,
        action: &'static str,
        rule: Rule,
        project: &str,
    ) -> Result<()> {
        policy::enforce(
            ctx,
            action,
            rule,
            Target {
                project_id: Some(project),
                user_id: None,
            },
        )
        .map_err(LbError::from)
    }

    /// Reads need a role on the object's project; so do writes, and the
    /// member role. An object of a project the caller has no role on is
    /// not found, as Octavia answers.
    pub(crate) fn may_read(&self, ctx: &AuthContext, project: &str) -> bool {
        policy::allows(
            ctx,
            Rule::ProjectReader,
            Target {
                project_id: Some(project),
                user_id: None,
            },
        )
    }

    pub(crate) fn may_write(
        &self,
        ctx: &AuthContext,
        action: &'static str,
        project: &str,
    ) -> Result<()> {
        self.enforce(ctx, action, Rule::ProjectMember, project)
    }

    /// The project a create acts for: the caller's, or (admins) the one named.
    pub(crate) fn owner(&self, ctx: &AuthContext, asked: Option<&str>) -> Result<String> {
        match (asked.filter(|p| !p.is_empty()), ctx.project_id()) {
            (Some(p), Some(own)) if p == own => Ok(p.to_owned()),
            (Some(p), _) if ctx.is_admin() => Ok(p.to_owned()),
            (Some(_), _) => Err(LbError::Denied(ferro_common::Denied {
                action: "load-balancer:project_id",
            })),
            (None, Some(own)) => Ok(own.to_owned()),
            (None, None) => Err(LbError::bad("A project-scoped token is required.")),
        }
    }

    async fn fetch<T>(&self, sql: &str, arg: Option<&str>) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let q = sqlx::query_as::<_, T>(sql);
        let q = match arg {
            Some(a) => q.bind(a),
            None => q,
        };
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Load balancers with everything under them.
    pub async fn trees(&self, scope: Scope<'_>) -> Result<Vec<Tree>> {
        let (lbs, arg) = match scope {
            Scope::All => ("SELECT id FROM lb_loadbalancers", None),
            Scope::Project(p) => (
                "SELECT id FROM lb_loadbalancers WHERE project_id = $1",
                Some(p),
            ),
            Scope::One(id) => ("SELECT id FROM lb_loadbalancers WHERE id = $1", Some(id)),
        };
        let pools_of = format!("SELECT id FROM lb_pools WHERE loadbalancer_id IN ({lbs})");
        let listeners_of = format!("SELECT id FROM lb_listeners WHERE loadbalancer_id IN ({lbs})");
        let policies_of =
            format!("SELECT id FROM lb_l7policies WHERE listener_id IN ({listeners_of})");
        let rows = |table: &str, column: &str, within: &str| {
            format!("SELECT * FROM {table} WHERE {column} IN ({within}) ORDER BY seq")
        };
        let lbs_found: Vec<LoadBalancer> = self
            .fetch(&rows("lb_loadbalancers", "id", lbs), arg)
            .await?;
        if lbs_found.is_empty() {
            return Ok(Vec::new());
        }
        let listeners: Vec<Listener> = self
            .fetch(&rows("lb_listeners", "loadbalancer_id", lbs), arg)
            .await?;
        let pools: Vec<Pool> = self
            .fetch(&rows("lb_pools", "loadbalancer_id", lbs), arg)
            .await?;
        let members: Vec<Member> = self
            .fetch(&rows("lb_members", "pool_id", &pools_of), arg)
            .await?;
        let monitors: Vec<Monitor> = self
            .fetch(&rows("lb_healthmonitors", "pool_id", &pools_of), arg)
            .await?;
        let mut l7policies: Vec<L7Policy> = self
            .fetch(&rows("lb_l7policies", "listener_id", &listeners_of), arg)
            .await?;
        l7policies.sort_by_key(|p| p.position);
        let l7rules: Vec<L7Rule> = self
            .fetch(&rows("lb_l7rules", "l7policy_id", &policies_of), arg)
            .await?;
        let health: Vec<(String, String, String)> = self
            .fetch(
                &format!(
                    "SELECT id, loadbalancer_id, health FROM lb_health WHERE loadbalancer_id IN ({lbs})"
                ),
                arg,
            )
            .await?;
        let lbs = lbs_found;
        let pool_lb: HashMap<String, String> = pools
            .iter()
            .map(|p| (p.id.clone(), p.loadbalancer_id.clone()))
            .collect();
        let mut trees: Vec<Tree> = lbs
            .into_iter()
            .map(|lb| Tree {
                lb,
                listeners: Vec::new(),
                pools: Vec::new(),
                members: Vec::new(),
                monitors: Vec::new(),
                l7policies: Vec::new(),
                l7rules: Vec::new(),
                health: Vec::new(),
            })
            .collect();
        let index: HashMap<String, usize> = trees
            .iter()
            .enumerate()
            .map(|(i, t)| (t.lb.id.clone(), i))
            .collect();
        let at = |lb: &str| index.get(lb).copied();
        for l in listeners {
            if let Some(i) = at(&l.loadbalancer_id) {
                trees[i].listeners.push(l);
            }
        }
        for p in pools {
            if let Some(i) = at(&p.loadbalancer_id) {
                trees[i].pools.push(p);
            }
        }
        for m in members {
            if let Some(i) = pool_lb.get(&m.pool_id).and_then(|lb| at(lb)) {
                trees[i].members.push(m);
            }
        }
        for h in monitors {
            if let Some(i) = pool_lb.get(&h.pool_id).and_then(|lb| at(lb)) {
                trees[i].monitors.push(h);
            }
        }
        let listener_lb: HashMap<String, String> = trees
            .iter()
            .flat_map(|t| {
                t.listeners
                    .iter()
                    .map(|l| (l.id.clone(), l.loadbalancer_id.clone()))
            })
            .collect();
        let mut policy_lb: HashMap<String, String> = HashMap::new();
        for p in l7policies {
            if let Some(lb) = listener_lb.get(&p.listener_id) {
                policy_lb.insert(p.id.clone(), lb.clone());
                if let Some(i) = at(lb) {
                    trees[i].l7policies.push(p);
                }
            }
        }
        for r in l7rules {
            if let Some(i) = policy_lb.get(&r.l7policy_id).and_then(|lb| at(lb)) {
                trees[i].l7rules.push(r);
            }
        }
        for (id, lb, health) in health {
            if let (Some(i), Some(h)) = (at(&lb), runtime::parse_health(&health)) {
                trees[i].health.push((id, h));
            }
        }
        Ok(trees)
    }

    /// Every load balancer `ctx` may see.
    pub async fn visible_trees(&self, ctx: &AuthContext) -> Result<Vec<Tree>> {
        let scope = match ctx.project_id() {
            _ if ctx.is_admin() => Scope::All,
            Some(p) => Scope::Project(p),
            None => return Ok(Vec::new()),
        };
        Ok(self
            .trees(scope)
            .await?
            .into_iter()
            .filter(|t| self.may_read(ctx, &t.lb.project_id))
            .collect())
    }

    /// One load balancer `ctx` may see, whole.
    pub async fn tree(&self, ctx: &AuthContext, lb_id: &str) -> Result<Tree> {
        self.trees(Scope::One(lb_id))
            .await?
            .into_iter()
            .find(|t| self.may_read(ctx, &t.lb.project_id))
            .ok_or_else(|| LbError::not_found("Load Balancer", lb_id))
    }

    /// The tree holding the object `id` of `table`, if `ctx` may see it.
    pub async fn tree_of(
        &self,
        ctx: &AuthContext,
        table: &str,
        kind: &str,
        id: &str,
    ) -> Result<Tree> {
        let sql = match table {
            "lb_members" | "lb_healthmonitors" => format!(
                "SELECT p.loadbalancer_id FROM {table} x JOIN lb_pools p ON p.id = x.pool_id WHERE x.id = $1"
            ),
            "lb_l7policies" => "SELECT l.loadbalancer_id FROM lb_l7policies x \
                 JOIN lb_listeners l ON l.id = x.listener_id WHERE x.id = $1"
                .to_owned(),
            _ => format!("SELECT loadbalancer_id FROM {table} WHERE id = $1"),
        };
        let lb: Option<(String,)> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some((lb,)) = lb else {
            return Err(LbError::not_found(kind, id));
        };
        self.tree(ctx, &lb)
            .await
            .map_err(|_| LbError::not_found(kind, id))
    }

    /// Starts a change under `tree`'s load balancer: refuses it while
    /// another is pending, and claims the next revision compare-and-set.
    pub(crate) async fn begin(&self, tree: &Tree) -> Result<(Transaction<'static, Any>, i64)> {
        if !tree.mutable() {
            return Err(LbError::immutable(&tree.lb.id));
        }
        let mut tx = self.pool().begin().await?;
        let next = tree.lb.revision + 1;
        let now = ferro_common::time::now_micros();
        let done = sqlx::query(
            "UPDATE lb_loadbalancers SET revision = $1, fault = NULL, updated_at = $2 WHERE id = $3 AND revision = $4",
        )
        .bind(next)
        .bind(now)
        .bind(&tree.lb.id)
        .bind(tree.lb.revision)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(LbError::immutable(&tree.lb.id));
        }
        Ok((tx, next))
    }

    /// After a committed change: the network node hears of it now.
    pub(crate) fn changed(&self) {
        self.network.notify_changed();
    }
}

pub(crate) fn next_seq() -> i64 {
    ferro_common::time::now_micros()
}
