//! A server's password as Nova keeps it for `os-server-password`: the guest
//! posts it (encrypted with the instance's public key, by cloud-init or
//! cloudbase-init) to the metadata service once; the project reads it; a
//! member clears it, after which the guest may post a new one.

use ferro_agent_api::spec::PasswordPost;
use ferro_common::time;
use ferro_store::sqlx;

use crate::error::Result;
use crate::service::ComputeService;

/// The most a guest may post (Nova's metadata service: 256 bytes).
pub const MAX_PASSWORD_BYTES: usize = 256;

impl ComputeService {
    /// The password the guest posted, or "" before it has.
    pub async fn server_password(&self, server_id: &str) -> Result<String> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT password FROM servers WHERE id = $1 AND deleted = 0")
                .bind(server_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.0).unwrap_or_default())
    }

    pub async fn clear_server_password(&self, server_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE servers SET password = '', updated_at = $1 WHERE id = $2 AND deleted = 0",
        )
        .bind(time::now_micros())
        .bind(server_id)
        .execute(self.pool())
        .await?;
        tracing::info!(server_id, "server password cleared");
        Ok(())
    }

    /// Stores the guest's password unless it has one (set once, in one
    /// statement, so two posts can't both win).
    pub async fn post_server_password(
        &self,
        server_id: &str,
        password: &str,
    ) -> Result<PasswordPost> {
        let done = sqlx::query(
            "UPDATE servers SET password = $1, updated_at = $2 WHERE id = $3 AND deleted = 0 AND password = ''",
        )
        .bind(password)
        .bind(time::now_micros())
        .bind(server_id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            tracing::info!(server_id, "the guest posted its password");
            return Ok(PasswordPost::Stored);
        }
        Ok(match self.server(server_id).await? {
            Some(_) => PasswordPost::AlreadySet,
            None => PasswordPost::Unknown,
        })
    }
}
