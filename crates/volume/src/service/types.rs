//! Volume types and their extra specs. `__DEFAULT__` exists from the first
//! start, as Cinder's own migration makes it, and can't be deleted.

use std::collections::BTreeMap;

use ferro_common::policy::Rule;
use ferro_common::{ids, time, AuthContext};
use serde::Deserialize;

use super::VolumeService;
use crate::error::{Result, VolumeError};
use crate::model::{json_map, VolumeType};

pub const DEFAULT_TYPE: &str = "__DEFAULT__";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeCreate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, rename = "os-volume-type-access:is_public")]
    pub access_is_public: Option<serde_json::Value>,
    #[serde(default)]
    pub is_public: Option<serde_json::Value>,
    #[serde(default)]
    pub extra_specs: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_public: Option<serde_json::Value>,
}

/// `true`, `"true"`, `"True"`, `1` …, as Cinder's `bool_from_string`.
pub fn truthy(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" | "t" => Some(true),
            "false" | "0" | "no" | "n" | "off" | "f" => Some(false),
            _ => None,
        },
        serde_json::Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

fn check_name(name: &str) -> Result<()> {
    let n = name.trim();
    if n.is_empty() || name.len() > 255 {
        return Err(VolumeError::bad(
            "Invalid input received: The type name must be 1 to 255 characters.".to_owned(),
        ));
    }
    Ok(())
}

impl VolumeService {
    /// Makes `__DEFAULT__` unless it exists.
    pub async fn ensure_default_type(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at) \
             VALUES ($1, $2, 'Default Volume Type', 1, '{}', $3) ON CONFLICT DO NOTHING",
        )
        .bind(ids::uuid_id())
        .bind(DEFAULT_TYPE)
        .bind(time::now_micros())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn types(&self) -> Result<Vec<VolumeType>> {
        Ok(
            sqlx::query_as("SELECT * FROM volume_types ORDER BY created_at, id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// A type by id or (as Cinder also allows) by name; `default` is the
    /// default type.
    pub async fn type_by_ref(&self, r: &str) -> Result<VolumeType> {
        let r = if r == "default" { DEFAULT_TYPE } else { r };
        let found: Option<VolumeType> =
            sqlx::query_as("SELECT * FROM volume_types WHERE id = $1 OR name = $1")
                .bind(r)
                .fetch_optional(self.pool())
                .await?;
        found.ok_or_else(|| VolumeError::NotFound(format!("Volume type {r} could not be found.")))
    }

    pub async fn default_type(&self) -> Result<VolumeType> {
        self.type_by_ref(DEFAULT_TYPE).await
    }

    pub async fn list_types(&self, ctx: &AuthContext) -> Result<Vec<VolumeType>> {
        self.enforce(
            ctx,
            "volume_extension:type_get_all",
            Rule::Authenticated,
            None,
        )?;
        let all = self.types().await?;
        Ok(all
            .into_iter()
            .filter(|t| t.is_public != 0 || ctx.is_admin())
            .collect())
    }

    pub async fn show_type(&self, ctx: &AuthContext, r: &str) -> Result<VolumeType> {
        self.enforce(ctx, "volume_extension:type_get", Rule::Authenticated, None)?;
        let t = self.type_by_ref(r).await?;
        if t.is_public == 0 && !ctx.is_admin() {
            return Err(VolumeError::NotFound(format!(
                "Volume type {r} could not be found."
            )));
        }
        Ok(t)
    }

    pub async fn create_type(&self, ctx: &AuthContext, req: TypeCreate) -> Result<VolumeType> {
        self.enforce(ctx, "volume_extension:types_manage", Rule::Admin, None)?;
        check_name(&req.name)?;
        let public = match req.is_public.as_ref().or(req.access_is_public.as_ref()) {
            None => true,
            Some(v) => truthy(v).ok_or_else(|| {
                VolumeError::bad(format!(
                    "Invalid input received: is_public {v} is not a boolean."
                ))
            })?,
        };
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT id FROM volume_types WHERE name = $1")
                .bind(&req.name)
                .fetch_optional(self.pool())
                .await?;
        if exists.is_some() {
            return Err(VolumeError::Conflict(format!(
                "Volume Type {} already exists.",
                req.name
            )));
        }
        let specs = serde_json::to_string(&req.extra_specs.unwrap_or_default())
            .map_err(|e| VolumeError::Internal(e.to_string()))?;
        let id = ids::uuid_id();
        sqlx::query(
            "INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&req.name)
        .bind(&req.description)
        .bind(i64::from(public))
        .bind(&specs)
        .bind(time::now_micros())
        .execute(self.pool())
        .await?;
        tracing::info!(volume_type_id = %id, name = %req.name, "volume type created");
        self.type_by_ref(&id).await
    }

    pub async fn update_type(
        &self,
        ctx: &AuthContext,
        r: &str,
        req: TypeUpdate,
    ) -> Result<VolumeType> {
        self.enforce(ctx, "volume_extension:types_manage", Rule::Admin, None)?;
        let t = self.type_by_ref(r).await?;
        if let Some(n) = &req.name {
            check_name(n)?;
            if t.name == super::DEFAULT_TYPE && n != &t.name {
                return Err(VolumeError::bad(
                    "The default volume type can't be renamed.".to_owned(),
                ));
            }
        }
        let public = match &req.is_public {
            None => t.is_public != 0,
            Some(v) => truthy(v).ok_or_else(|| {
                VolumeError::bad(format!(
                    "Invalid input received: is_public {v} is not a boolean."
                ))
            })?,
        };
        sqlx::query(
            "UPDATE volume_types SET name = $1, description = $2, is_public = $3 WHERE id = $4",
        )
        .bind(req.name.as_ref().unwrap_or(&t.name))
        .bind(req.description.as_ref().or(t.description.as_ref()))
        .bind(i64::from(public))
        .bind(&t.id)
        .execute(self.pool())
        .await?;
        self.type_by_ref(&t.id).await
    }

    pub async fn delete_type(&self, ctx: &AuthContext, r: &str) -> Result<()> {
        self.enforce(ctx, "volume_extension:types_manage", Rule::Admin, None)?;
        let t = self.type_by_ref(r).await?;
        if t.name == DEFAULT_TYPE {
            return Err(VolumeError::bad(
                "Default volume type can not be deleted.".to_owned(),
            ));
        }
        let used: Option<(String,)> =
            sqlx::query_as("SELECT id FROM volumes WHERE volume_type_id = $1 LIMIT 1")
                .bind(&t.id)
                .fetch_optional(self.pool())
                .await?;
        if used.is_some() {
            return Err(VolumeError::bad(format!(
                "Target volume type is still in use. Volume Type {} deletion is not allowed with volumes present with the type.",
                t.id
            )));
        }
        sqlx::query("DELETE FROM volume_types WHERE id = $1")
            .bind(&t.id)
            .execute(self.pool())
            .await?;
        tracing::info!(volume_type_id = %t.id, "volume type deleted");
        Ok(())
    }

    /// Merges `specs` into the type's extra specs (`None` values remove).
    pub async fn set_extra_specs(
        &self,
        ctx: &AuthContext,
        r: &str,
        specs: BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>> {
        self.enforce(ctx, "volume_extension:types_extra_specs", Rule::Admin, None)?;
        let t = self.type_by_ref(r).await?;
        let mut have = json_map(&t.extra_specs);
        for (k, v) in specs {
            if k.is_empty() || k.len() > 255 {
                return Err(VolumeError::bad(
                    "Invalid input received: extra spec keys must be 1 to 255 characters."
                        .to_owned(),
                ));
            }
            match v {
                Some(v) => {
                    have.insert(k, v);
                }
                None => {
                    if have.remove(&k).is_none() {
                        return Err(VolumeError::NotFound(format!(
                            "Volume Type {} has no extra specs with key {k}.",
                            t.id
                        )));
                    }
                }
            }
        }
        let s = serde_json::to_string(&have).map_err(|e| VolumeError::Internal(e.to_string()))?;
        sqlx::query("UPDATE volume_types SET extra_specs = $1 WHERE id = $2")
            .bind(&s)
            .bind(&t.id)
            .execute(self.pool())
            .await?;
        Ok(have)
    }
}
