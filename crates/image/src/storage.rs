//! Where image data lives. Behind a trait so an S3-compatible store can come
//! later; the default keeps files under `<state>/images/`.

use std::path::{Path, PathBuf};

/// Image bytes by image id.
pub trait ImageStore: Send + Sync + 'static {
    /// Where an upload in progress is written.
    fn staging_path(&self, id: &str) -> PathBuf;
    /// Makes a finished upload the image's data.
    fn commit(&self, id: &str) -> std::io::Result<()>;
    /// The file holding an active image's data.
    fn data_path(&self, id: &str) -> PathBuf;
    /// Removes data and any partial upload; absent data is fine.
    fn delete(&self, id: &str) -> std::io::Result<()>;
}

pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(LocalStore {
            dir: dir.to_owned(),
        })
    }
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl ImageStore for LocalStore {
    fn staging_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn commit(&self, id: &str) -> std::io::Result<()> {
        std::fs::rename(self.staging_path(id), self.data_path(id))
    }

    fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn delete(&self, id: &str) -> std::io::Result<()> {
        ignore_missing(std::fs::remove_file(self.data_path(id)))?;
        ignore_missing(std::fs::remove_file(self.staging_path(id)))
    }
}
