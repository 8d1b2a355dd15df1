//! A joined agent's side of the contract: [`ControlPlane`] over mutual
//! TLS. Images are fetched once into the host's image cache.

use std::path::PathBuf;

use ferro_agent_api::spec::PasswordPost;
use ferro_agent_api::{ControlPlane, DesiredState, HostInfo, LinkError, MetadataTarget, Report};
use tokio::io::AsyncWriteExt;

use super::ContractError;

pub struct RemoteLink {
    /// `https://controller:8790`
    pub url: String,
    pub client: reqwest::Client,
    /// `<state>/image-cache`
    pub image_cache: PathBuf,
}

fn link_err(e: impl std::fmt::Display) -> LinkError {
    LinkError(e.to_string())
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response, LinkError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body: Option<ContractError> = resp.json().await.ok();
    Err(LinkError(match body {
        Some(b) => format!("the controller refused ({status}): {}", b.error),
        None => format!("the controller answered {status}"),
    }))
}

impl RemoteLink {
    fn url(&self, path: &str) -> String {
        format!("{}/contract/v1/{path}", self.url.trim_end_matches('/'))
    }

    async fn post<B: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), LinkError> {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .map_err(link_err)?;
        check(resp).await.map(|_| ())
    }

    /// Fetches `what` (`images/ID`, `migrations/ID/disk`) into `path`;
    /// returns the disk format the controller named.
    async fn download(&self, what: &str, path: &PathBuf) -> Result<String, LinkError> {
        let resp = self
            .client
            .get(self.url(what))
            .timeout(std::time::Duration::from_secs(3600))
            .send()
            .await
            .map_err(link_err)?;
        let mut resp = check(resp).await?;
        let format = resp
            .headers()
            .get("x-disk-format")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("raw")
            .to_owned();
        let expected = resp.content_length();
        // Two spawns may fetch the same image at once: each writes its own file.
        let tmp = path.with_extension(format!("part-{:016x}", rand::random::<u64>()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(link_err)?;
        let mut got = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(link_err)? {
            got += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(link_err)?;
        }
        file.sync_all().await.map_err(link_err)?;
        if expected.is_some_and(|n| n != got) {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(LinkError(format!(
                "{what} arrived short: {got} of {} bytes",
                expected.unwrap_or(0)
            )));
        }
        tokio::fs::write(path.with_extension("format"), &format)
            .await
            .map_err(link_err)?;
        tokio::fs::rename(&tmp, path).await.map_err(link_err)?;
        tracing::info!(what, bytes = got, "fetched from the controller");
        Ok(format)
    }
}

#[async_trait::async_trait]
impl ControlPlane for RemoteLink {
    async fn register(&self, host: &HostInfo) -> Result<(), LinkError> {
        self.post("register", host).await
    }

    async fn heartbeat(&self, _host: &str) -> Result<(), LinkError> {
        self.post("heartbeat", &serde_json::json!({})).await
    }

    async fn desired(&self, _host: &str, applied: i64) -> Result<DesiredState, LinkError> {
        let resp = self
            .client
            .get(self.url("desired"))
            .query(&[("applied", applied)])
            .send()
            .await
            .map_err(link_err)?;
        check(resp).await?.json().await.map_err(link_err)
    }

    async fn report(&self, _host: &str, reports: Vec<Report>) -> Result<(), LinkError> {
        self.post("reports", &reports).await
    }

    async fn report_balancers(
        &self,
        _host: &str,
        reports: Vec<ferro_agent_api::balancer::BalancerReport>,
    ) -> Result<(), LinkError> {
        self.post("balancer-reports", &reports).await
    }

    async fn image_file(&self, image_id: &str) -> Result<(PathBuf, String), LinkError> {
        if image_id.is_empty()
            || !image_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(LinkError(format!("{image_id:?} is not an image id")));
        }
        tokio::fs::create_dir_all(&self.image_cache)
            .await
            .map_err(link_err)?;
        let path = self.image_cache.join(image_id);
        // Image data never changes once active: a cached copy is the image.
        if let Ok(format) = tokio::fs::read_to_string(path.with_extension("format")).await {
            if tokio::fs::metadata(&path).await.is_ok() {
                return Ok((path, format));
            }
        }
        let format = self.download(&format!("images/{image_id}"), &path).await?;
        Ok((path, format))
    }

    async fn migration_disk(&self, server_id: &str) -> Result<PathBuf, LinkError> {
        if server_id.is_empty()
            || !server_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(LinkError(format!("{server_id:?} is not a server id")));
        }
        let dir = self.image_cache.with_file_name("migration-cache");
        tokio::fs::create_dir_all(&dir).await.map_err(link_err)?;
        let path = dir.join(server_id);
        self.download(&format!("migrations/{server_id}/disk"), &path)
            .await?;
        Ok(path)
    }

    async fn done_with(&self, file: &std::path::Path) {
        let _ = tokio::fs::remove_file(file).await;
        let _ = tokio::fs::remove_file(file.with_extension("format")).await;
    }

    async fn instance_at(
        &self,
        network_id: &str,
        ip: &str,
    ) -> Result<Option<MetadataTarget>, LinkError> {
        let resp = self
            .client
            .get(self.url("instance-at"))
            .query(&[("network_id", network_id), ("ip", ip)])
            .send()
            .await
            .map_err(link_err)?;
        check(resp).await?.json().await.map_err(link_err)
    }

    async fn post_password(
        &self,
        network_id: &str,
        ip: &str,
        password: &str,
    ) -> Result<PasswordPost, LinkError> {
        let resp = self
            .client
            .post(self.url("instance-password"))
            .json(&serde_json::json!({"network_id": network_id, "ip": ip, "password": password}))
            .send()
            .await
            .map_err(link_err)?;
        check(resp).await?.json().await.map_err(link_err)
    }
}
