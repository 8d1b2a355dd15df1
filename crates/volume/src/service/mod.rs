//! Volume logic, without HTTP: who may see and change what, Cinder's state
//! machine written compare-and-set, quotas, and the background work that
//! makes, copies, grows and removes disks through the [`Backend`].

mod attachments;
mod quotas;
mod snapshots;
mod types;
mod upload;
mod volumes;
mod work;

use std::sync::Arc;

use ferro_common::auth::SharedAuth;
use ferro_common::policy::{self, Rule, Target};
use ferro_common::AuthContext;
use ferro_image::ImageService;
use ferro_store::Db;

use crate::backend::Backend;
use crate::error::{Result, VolumeError};

pub use quotas::{QuotaSet, DEFAULT_QUOTAS};
pub use snapshots::{SnapshotCreate, SnapshotUpdate};
pub use types::{TypeCreate, TypeUpdate, DEFAULT_TYPE};
pub use volumes::{ListQuery, VolumeCreate, VolumeUpdate};

/// The availability zone volumes live in (Cinder's default).
pub const ZONE: &str = "nova";

pub struct VolumeService {
    pub db: Db,
    pub auth: SharedAuth,
    /// `http://host:8776`
    pub base_url: String,
    pub images: Arc<ImageService>,
    pub backend: Arc<dyn Backend>,
    /// Cinder's `host@backend#pool` of the one volume service.
    pub host: String,
    /// The host name the services list shows.
    pub host_name: String,
    pub started_at: i64,
    jobs: tokio::sync::mpsc::UnboundedSender<work::Job>,
    jobs_rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<work::Job>>>,
    /// Work being done now, so a rescan doesn't start it twice.
    running: std::sync::Mutex<std::collections::HashSet<work::Job>>,
}

impl VolumeService {
    pub fn new(
        db: Db,
        auth: SharedAuth,
        base_url: String,
        images: Arc<ImageService>,
        backend: Arc<dyn Backend>,
        host_name: &str,
    ) -> Arc<Self> {
        let host = format!("{host_name}@{0}#{0}", backend.name());
        let (jobs, rx) = tokio::sync::mpsc::unbounded_channel();
        Arc::new(VolumeService {
            jobs,
            jobs_rx: std::sync::Mutex::new(Some(rx)),
            running: std::sync::Mutex::new(std::collections::HashSet::new()),
            db,
            auth,
            base_url,
            images,
            backend,
            host,
            host_name: host_name.to_owned(),
            started_at: ferro_common::time::now_micros(),
        })
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    pub fn enforce(
        &self,
        ctx: &AuthContext,
        action: &'static str,
        rule: Rule,
        project: Option<&str>,
    ) -> Result<()> {
        policy::enforce(
            ctx,
            action,
            rule,
            Target {
                project_id: project,
                user_id: None,
            },
        )
        .map_err(VolumeError::from)
    }

    /// The caller's project, which a project-scoped call needs.
    pub fn project_of<'a>(&self, ctx: &'a AuthContext) -> Result<&'a str> {
        ctx.project_id().ok_or_else(|| {
            VolumeError::bad("This request needs a project-scoped token.".to_owned())
        })
    }
}
