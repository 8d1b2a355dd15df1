//! Keystone's small administrative records, kept as JSON bodies: policy
//! blobs (`/v3/policies`), OAuth1 consumers (`/v3/OS-OAUTH1/consumers`) and
//! endpoint groups (`/v3/OS-EP-FILTER/endpoint_groups`). All are the cloud
//! administrator's; each kind says which fields it takes and which it needs.

use axum::extract::{Path, State as St};
use axum::response::Response;
use ferro_common::ids;
use serde_json::{json, Map, Value};

use super::{check_name, check_text, created, list_body, no_content, ok, Body, Caller, State};
use crate::error::{IdentityError, Result};
use crate::policy::{self, authorize};
use crate::service::Identity;
use crate::store::{self, Record};

struct Kind {
    /// The store's kind, and the name in messages.
    kind: &'static str,
    /// The body's key for one and for a list.
    one: &'static str,
    many: &'static str,
    /// The path under /v3.
    path: &'static str,
    /// Fields taken (None: any, as Keystone keeps a policy's extra fields).
    fields: Option<&'static [&'static str]>,
    required: &'static [&'static str],
}

const POLICY: Kind = Kind {
    kind: "policy",
    one: "policy",
    many: "policies",
    path: "policies",
    fields: None,
    required: &["blob", "type"],
};

const CONSUMER: Kind = Kind {
    kind: "consumer",
    one: "consumer",
    many: "consumers",
    path: "OS-OAUTH1/consumers",
    fields: Some(&["description"]),
    required: &[],
};

const ENDPOINT_GROUP: Kind = Kind {
    kind: "endpoint_group",
    one: "endpoint_group",
    many: "endpoint_groups",
    path: "OS-EP-FILTER/endpoint_groups",
    fields: Some(&["name", "description", "filters"]),
    required: &["name", "filters"],
};

/// Checks the fields of a create or update body against the kind.
fn fields(k: &Kind, body: Value, creating: bool) -> Result<Map<String, Value>> {
    let Value::Object(mut outer) = body else {
        return Err(IdentityError::bad(
            "The request body must be a JSON object.",
        ));
    };
    let Some(Value::Object(f)) = outer.remove(k.one) else {
        return Err(IdentityError::bad(format!(
            "'{}' is a required property.",
            k.one
        )));
    };
    for key in f.keys() {
        if key == "id" || key == "links" {
            return Err(IdentityError::bad(format!(
                "Additional properties are not allowed ('{key}' was unexpected)."
            )));
        }
        if k.fields
            .is_some_and(|allowed| !allowed.contains(&key.as_str()))
        {
            return Err(IdentityError::bad(format!(
                "Additional properties are not allowed ('{key}' was unexpected)."
            )));
        }
    }
    if creating {
        if let Some(missing) = k.required.iter().find(|r| !f.contains_key(**r)) {
            return Err(IdentityError::bad(format!(
                "'{missing}' is a required property."
            )));
        }
    }
    for (key, v) in &f {
        match (key.as_str(), v) {
            ("name", Value::String(n)) => check_name("name", n, 255)?,
            ("description", Value::String(d)) | ("blob", Value::String(d)) => check_text(key, d)?,
            ("description", Value::Null) if k.kind == "consumer" => {}
            ("type", Value::String(t)) => check_name("type", t, 255)?,
            ("filters", Value::Object(m)) => {
                for (fk, fv) in m {
                    if !["interface", "service_id", "region_id"].contains(&fk.as_str())
                        || !fv.is_string()
                    {
                        return Err(IdentityError::bad(format!(
                            "Invalid filter in endpoint group: {fk}."
                        )));
                    }
                }
            }
            ("name" | "description" | "blob" | "type" | "filters", _) => {
                return Err(IdentityError::bad(format!(
                    "Invalid input for field '{key}': wrong type."
                )))
            }
            _ => {}
        }
    }
    Ok(f)
}

fn render(s: &Identity, k: &Kind, r: &Record) -> Value {
    let mut v: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.remove("secret");
    }
    v["id"] = json!(r.id);
    v["links"] = json!({"self": format!("{}/{}/{}", s.base_url(), k.path, r.id)});
    v
}

async fn load(s: &Identity, k: &Kind, id: &str) -> Result<Record> {
    store::record(s.pool(), k.kind, id)
        .await?
        .ok_or_else(|| IdentityError::not_found(k.kind, id))
}

async fn create_in(s: &Identity, c: &super::Resolved, k: &Kind, body: Value) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_RECORDS, Default::default())?;
    let mut f = fields(k, body, true)?;
    let mut secret = None;
    if k.kind == "consumer" {
        f.entry("description").or_insert(Value::Null);
        let sec = ids::hex_id();
        f.insert("secret".into(), json!(sec));
        secret = Some(sec);
    }
    if k.kind == "endpoint_group" {
        f.entry("description").or_insert(json!(""));
    }
    let row = Record {
        id: ids::hex_id(),
        owner_id: String::new(),
        body: Value::Object(f).to_string(),
    };
    store::put_record(s.pool(), k.kind, &row).await?;
    tracing::info!(kind = k.kind, id = %row.id, "identity record created");
    let mut v = render(s, k, &row);
    if let Some(sec) = secret {
        // a consumer's secret is shown once, when it is made
        v["secret"] = json!(sec);
    }
    Ok(created(json!({k.one: v})))
}

async fn list_in(s: &Identity, c: &super::Resolved, k: &Kind) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_RECORDS, Default::default())?;
    let rows = store::records(s.pool(), k.kind, None).await?;
    Ok(ok(list_body(
        k.many,
        rows.iter().map(|r| render(s, k, r)).collect(),
        format!("{}/{}", s.base_url(), k.path),
    )))
}

async fn show_in(s: &Identity, c: &super::Resolved, k: &Kind, id: &str) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_RECORDS, Default::default())?;
    let row = load(s, k, id).await?;
    Ok(ok(json!({k.one: render(s, k, &row)})))
}

async fn update_in(
    s: &Identity,
    c: &super::Resolved,
    k: &Kind,
    id: &str,
    body: Value,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_RECORDS, Default::default())?;
    let mut row = load(s, k, id).await?;
    let f = fields(k, body, false)?;
    let mut current: Map<String, Value> = serde_json::from_str(&row.body).unwrap_or_default();
    current.extend(f);
    row.body = Value::Object(current).to_string();
    store::put_record(s.pool(), k.kind, &row).await?;
    Ok(ok(json!({k.one: render(s, k, &row)})))
}

async fn delete_in(s: &Identity, c: &super::Resolved, k: &Kind, id: &str) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_RECORDS, Default::default())?;
    if !store::delete_record(s.pool(), k.kind, id).await? {
        return Err(IdentityError::not_found(k.kind, id));
    }
    tracing::info!(kind = k.kind, %id, "identity record deleted");
    Ok(no_content())
}

macro_rules! handlers {
    ($kind:ident, $create:ident, $list:ident, $show:ident, $update:ident, $delete:ident) => {
        pub async fn $create(
            St(s): St<State>,
            Caller(c): Caller,
            Body(b): Body<Value>,
        ) -> Result<Response> {
            create_in(&s, &c, &$kind, b).await
        }
        pub async fn $list(St(s): St<State>, Caller(c): Caller) -> Result<Response> {
            list_in(&s, &c, &$kind).await
        }
        pub async fn $show(
            St(s): St<State>,
            Caller(c): Caller,
            Path(id): Path<String>,
        ) -> Result<Response> {
            show_in(&s, &c, &$kind, &id).await
        }
        pub async fn $update(
            St(s): St<State>,
            Caller(c): Caller,
            Path(id): Path<String>,
            Body(b): Body<Value>,
        ) -> Result<Response> {
            update_in(&s, &c, &$kind, &id, b).await
        }
        pub async fn $delete(
            St(s): St<State>,
            Caller(c): Caller,
            Path(id): Path<String>,
        ) -> Result<Response> {
            delete_in(&s, &c, &$kind, &id).await
        }
    };
}

handlers!(
    POLICY,
    create_policy,
    list_policies,
    show_policy,
    update_policy,
    delete_policy
);
handlers!(
    CONSUMER,
    create_consumer,
    list_consumers,
    show_consumer,
    update_consumer,
    delete_consumer
);
handlers!(
    ENDPOINT_GROUP,
    create_endpoint_group,
    list_endpoint_groups,
    show_endpoint_group,
    update_endpoint_group,
    delete_endpoint_group
);
