//! Security groups and their rules. Every project has one `default` group,
//! made on first use with Neutron's default rules: all egress allowed,
//! ingress only from members of the same group.

use ferro_common::{ids, time, AuthContext};
use ferro_store::sqlx;
use serde::Deserialize;

use super::networks::check_name;
use super::{seq, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::Cidr;
use crate::model::{Rule, SecurityGroup};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    pub stateful: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCreate {
    pub security_group_id: Option<String>,
    pub direction: Option<String>,
    pub ethertype: Option<String>,
    /// A name (`tcp`), a number (`6` or `"6"`), `any`, or null.
    pub protocol: Option<serde_json::Value>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
    pub description: Option<String>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

/// Protocol names Neutron accepts and their IP protocol numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-icmp", 58),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// The IP protocol number of a rule's protocol (`None` = any).
pub fn protocol_number(p: Option<&str>) -> Option<u8> {
    let p = p?;
    PROTOCOLS
        .iter()
        .find(|(n, _)| *n == p)
        .map(|(_, v)| *v)
        .or_else(|| p.parse().ok())
}

fn group_not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "SecurityGroupNotFound",
        format!("Security group {id} does not exist"),
    )
}

impl NetworkService {
    /// The project's `default` group, made now if it doesn't exist yet.
    pub async fn default_group(&self, project: &str) -> Result<SecurityGroup> {
        if let Some(g) = self.find_default(project).await? {
            return Ok(g);
        }
        let now = time::now_micros();
        let id = ids::uuid_id();
        let mut tx = self.pool().begin().await?;
        let made = sqlx::query(
            "INSERT INTO security_groups (id, seq, project_id, name, description, is_default, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, 'default', 'Default security group', 1, 1, $4, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(seq())
        .bind(project)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if made == 1 {
            for (direction, ethertype, remote) in [
                ("egress", "IPv4", None),
                ("egress", "IPv6", None),
                ("ingress", "IPv4", Some(id.as_str())),
                ("ingress", "IPv6", Some(id.as_str())),
            ] {
                sqlx::query(
                    "INSERT INTO security_group_rules (id, seq, security_group_id, project_id, direction, ethertype, protocol, \
                     port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, revision, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, NULL, $7, '', 1, $8, $8)",
                )
                .bind(ids::uuid_id())
                .bind(seq())
                .bind(&id)
                .bind(project)
                .bind(direction)
                .bind(ethertype)
                .bind(remote)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        if made == 1 {
            tracing::info!(security_group_id = %id, project_id = %project, "default security group created");
            self.changed();
        }
        self.find_default(project)
            .await?
            .ok_or_else(|| NetworkError::internal("default security group vanished"))
    }

    async fn find_default(&self, project: &str) -> Result<Option<SecurityGroup>> {
        Ok(
            sqlx::query_as(
                "SELECT * FROM security_groups WHERE project_id = $1 AND is_default = 1",
            )
            .bind(project)
            .fetch_optional(self.pool())
            .await?,
        )
    }

    pub async fn group(&self, id: &str) -> Result<Option<SecurityGroup>> {
        Ok(
            sqlx::query_as("SELECT * FROM security_groups WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn visible_group(&self, ctx: &AuthContext, id: &str) -> Result<SecurityGroup> {
        match self.group(id).await? {
            Some(g) if Self::owns(ctx, &g.project_id) => Ok(g),
            _ => Err(group_not_found(id)),
        }
    }

    /// The groups a caller lists: their project's (made `default` included).
    /// Admins list their own project's too unless they filter by project,
    /// so an admin's `… default` lookup finds exactly one group.
    pub async fn groups(
        &self,
        ctx: &AuthContext,
        project_filter: Option<&str>,
    ) -> Result<Vec<SecurityGroup>> {
        let project = match (project_filter, ctx.project_id()) {
            (Some(p), _) if ctx.is_admin() => Some(p.to_owned()),
            (_, Some(own)) => Some(own.to_owned()),
            (_, None) if ctx.is_admin() => None,
            (_, None) => return Ok(Vec::new()),
        };
        if let Some(own) = ctx.project_id() {
            self.default_group(own).await?;
        }
        let rows: Vec<SecurityGroup> = match project {
            Some(p) => {
                sqlx::query_as(
                    "SELECT * FROM security_groups WHERE project_id = $1 ORDER BY seq, id",
                )
                .bind(p)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as("SELECT * FROM security_groups ORDER BY seq, id")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows)
    }

    /// Every project's groups, for an administrator (Nova's `all_tenants`).
    pub async fn all_groups(&self, ctx: &AuthContext) -> Result<Vec<SecurityGroup>> {
        if !ctx.is_admin() {
            return self.groups(ctx, None).await;
        }
        Ok(
            sqlx::query_as("SELECT * FROM security_groups ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Rules of the given groups (all when `None`).
    pub async fn rules_of(&self, group_ids: Option<&[String]>) -> Result<Vec<Rule>> {
        let rows: Vec<Rule> = match group_ids {
            Some([one]) => sqlx::query_as(
                "SELECT * FROM security_group_rules WHERE security_group_id = $1 ORDER BY seq, id",
            )
            .bind(one)
            .fetch_all(self.pool())
            .await?,
            _ => {
                sqlx::query_as("SELECT * FROM security_group_rules ORDER BY seq, id")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(match group_ids {
            Some(ids) => rows
                .into_iter()
                .filter(|r| ids.contains(&r.security_group_id))
                .collect(),
            None => rows,
        })
    }

    pub async fn create_group(
        &self,
        ctx: &AuthContext,
        req: SecurityGroupCreate,
    ) -> Result<SecurityGroup> {
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        self.check_write(ctx, "create_security_group", &project)?;
        let name = req.name.unwrap_or_default();
        check_name("name", &name)?;
        if req.stateful == Some(false) {
            return Err(NetworkError::bad(
                "Stateless security groups are not supported by this cloud.",
            ));
        }
        let default = self.default_group(&project).await?;
        if name == "default" {
            return Err(NetworkError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                format!("Default security group {} already exists.", default.id),
            ));
        }
        self.check_quota(&project, "security_group", "security_groups")
            .await?;
        let now = time::now_micros();
        let id = ids::uuid_id();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO security_groups (id, seq, project_id, name, description, is_default, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 1, $6, $6)",
        )
        .bind(&id)
        .bind(seq())
        .bind(&project)
        .bind(&name)
        .bind(req.description.unwrap_or_default())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Neutron gives a new group the two egress rules.
        for ethertype in ["IPv4", "IPv6"] {
            sqlx::query(
                "INSERT INTO security_group_rules (id, seq, security_group_id, project_id, direction, ethertype, description, revision, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'egress', $5, '', 1, $6, $6)",
            )
            .bind(ids::uuid_id())
            .bind(seq())
            .bind(&id)
            .bind(&project)
            .bind(ethertype)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(security_group_id = %id, "security group created");
        self.changed();
        self.group(&id).await?.ok_or_else(|| group_not_found(&id))
    }

    pub async fn update_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<SecurityGroup> {
        let g = self.visible_group(ctx, id).await?;
        self.check_write(ctx, "update_security_group", &g.project_id)?;
        if let Some(n) = &name {
            check_name("name", n)?;
            if g.is_default != 0 && n != "default" {
                return Err(NetworkError::conflict(
                    "SecurityGroupCannotUpdateDefault",
                    "Updating default security group not allowed.",
                ));
            }
            if g.is_default == 0 && n == "default" {
                return Err(NetworkError::conflict(
                    "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.",
                ));
            }
        }
        sqlx::query("UPDATE security_groups SET name = $1, description = $2, revision = revision + 1, updated_at = $3 WHERE id = $4")
            .bind(name.unwrap_or(g.name))
            .bind(description.unwrap_or(g.description))
            .bind(time::now_micros())
            .bind(id)
            .execute(self.pool())
            .await?;
        self.group(id).await?.ok_or_else(|| group_not_found(id))
    }

    pub async fn delete_group(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let g = self.visible_group(ctx, id).await?;
        self.check_write(ctx, "delete_security_group", &g.project_id)?;
        if g.is_default != 0 && !ctx.is_admin() {
            return Err(NetworkError::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        let users: Vec<(String, String)> = sqlx::query_as("SELECT id, security_groups FROM ports")
            .fetch_all(self.pool())
            .await?;
        if users.iter().any(|(_, groups)| groups.contains(id)) {
            return Err(NetworkError::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        let mut tx = self.pool().begin().await?;
        // Rules of other groups naming it go with it, as Neutron's cascade.
        sqlx::query(
            "DELETE FROM security_group_rules WHERE security_group_id = $1 OR remote_group_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM security_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(security_group_id = %id, "security group deleted");
        self.changed();
        Ok(())
    }

    pub async fn rule(&self, ctx: &AuthContext, id: &str) -> Result<(Rule, bool)> {
        let r: Option<Rule> = sqlx::query_as("SELECT * FROM security_group_rules WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match r {
            Some(r) if Self::owns(ctx, &r.project_id) => {
                let default = self
                    .group(&r.security_group_id)
                    .await?
                    .is_some_and(|g| g.is_default != 0);
                Ok((r, default))
            }
            _ => Err(NetworkError::not_found(
                "SecurityGroupRuleNotFound",
                format!("Security group rule {id} does not exist"),
            )),
        }
    }

    pub async fn create_rule(&self, ctx: &AuthContext, req: RuleCreate) -> Result<Rule> {
        let Some(gid) = req.security_group_id.clone() else {
            return Err(NetworkError::bad(
                "Failed to parse request. Required attribute 'security_group_id' not specified",
            ));
        };
        let g = self.visible_group(ctx, &gid).await?;
        self.check_write(ctx, "create_security_group_rule", &g.project_id)?;
        let direction = match req.direction.as_deref() {
            Some(d @ ("ingress" | "egress")) => d.to_owned(),
            Some(d) => {
                return Err(NetworkError::bad(format!(
                    "Invalid input for direction. Reason: {d} is not in valid_values."
                )))
            }
            None => {
                return Err(NetworkError::bad(
                    "Failed to parse request. Required attribute 'direction' not specified",
                ))
            }
        };
        let ethertype = match req.ethertype.as_deref() {
            None | Some("IPv4") => "IPv4".to_owned(),
            Some("IPv6") => "IPv6".to_owned(),
            Some(e) => return Err(NetworkError::new(http::StatusCode::BAD_REQUEST, "SecurityGroupRuleInvalidEtherType",
                format!("Security group rule for ethertype '{e}' not supported. Allowed values are ['IPv4', 'IPv6']."))),
        };
        let protocol = normalize_protocol(req.protocol.as_ref())?;
        let number = protocol_number(protocol.as_deref());
        let (min, max) = (req.port_range_min, req.port_range_max);
        match number {
            Some(6 | 17 | 33 | 132 | 136) => {
                if let (Some(a), Some(b)) = (min, max) {
                    if a > b {
                        return Err(NetworkError::new(
                            http::StatusCode::BAD_REQUEST,
                            "SecurityGroupInvalidPortRange",
                            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                        ));
                    }
                }
                for p in [min, max].into_iter().flatten() {
                    if !(1..=65535).contains(&p) {
                        return Err(NetworkError::new(
                            http::StatusCode::BAD_REQUEST,
                            "SecurityGroupInvalidPortValue",
                            format!("Invalid value for port {p}"),
                        ));
                    }
                }
                if min.is_some() != max.is_some() && max.is_some() {
                    return Err(NetworkError::new(
                        http::StatusCode::BAD_REQUEST,
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ));
                }
            }
            Some(1 | 58) => {
                if let Some(t) = min.filter(|t| !(0..=255).contains(t)) {
                    return Err(NetworkError::new(
                        http::StatusCode::BAD_REQUEST,
                        "SecurityGroupInvalidIcmpValue",
                        format!("Invalid value for ICMP type {t}: it must be 0 to 255."),
                    ));
                }
                if let Some(c) = max.filter(|c| !(0..=255).contains(c)) {
                    return Err(NetworkError::new(
                        http::StatusCode::BAD_REQUEST,
                        "SecurityGroupInvalidIcmpValue",
                        format!("Invalid value for ICMP code {c}: it must be 0 to 255."),
                    ));
                }
                if max.is_some() && min.is_none() {
                    return Err(NetworkError::new(http::StatusCode::BAD_REQUEST, "SecurityGroupMissingIcmpType",
                        "ICMP code (port-range-max) is provided but ICMP type (port-range-min) is missing."));
                }
            }
            _ if min.is_some() || max.is_some() => {
                return Err(NetworkError::new(http::StatusCode::BAD_REQUEST, "SecurityGroupInvalidProtocolForPortRange",
                    format!("Invalid protocol {} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.", protocol.as_deref().unwrap_or("None"))));
            }
            _ => {}
        }
        // A single TCP/UDP port given only as a minimum means that port.
        let max = if matches!(number, Some(6 | 17 | 33 | 132 | 136)) && max.is_none() {
            min
        } else {
            max
        };
        if req.remote_ip_prefix.is_some() && req.remote_group_id.is_some() {
            return Err(NetworkError::new(
                http::StatusCode::BAD_REQUEST,
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                "Only remote_ip_prefix or remote_group_id may be provided.",
            ));
        }
        if req.remote_address_group_id.is_some() {
            return Err(NetworkError::bad(
                "Address groups are not supported by this cloud.",
            ));
        }
        let prefix = match &req.remote_ip_prefix {
            // Kept as given, as Neutron does (`normalized_cidr` shows the
            // network, and the hosts filter on that).
            Some(p) if ethertype == "IPv4" => {
                Cidr::parse(p).map_err(|_| {
                    NetworkError::bad(format!(
                    "Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP subnet."))
                })?;
                Some(p.clone())
            }
            Some(p) => {
                if p.parse::<std::net::Ipv6Addr>().is_err() && !p.contains(':') {
                    return Err(NetworkError::new(
                        http::StatusCode::BAD_REQUEST,
                        "SecurityGroupRuleParameterConflict",
                        format!("Conflicting value ethertype {ethertype} for CIDR {p}"),
                    ));
                }
                Some(p.clone())
            }
            None => None,
        };
        if let Some(rg) = &req.remote_group_id {
            self.visible_group(ctx, rg).await?;
        }
        // Neutron stores 0.0.0.0/0 as no prefix at all in comparisons.
        let same_prefix = |a: &Option<String>, b: &Option<String>| {
            let norm = |x: &Option<String>| {
                x.as_deref()
                    .map(|p| {
                        Cidr::parse(p)
                            .map(|c| c.to_string())
                            .unwrap_or_else(|_| p.to_owned())
                    })
                    .filter(|p| p != "0.0.0.0/0" && p != "::/0")
            };
            norm(a) == norm(b)
        };
        for r in self.rules_of(Some(std::slice::from_ref(&gid))).await? {
            if r.direction == direction
                && r.ethertype == ethertype
                && protocol_number(r.protocol.as_deref()) == number
                && r.port_range_min == min
                && r.port_range_max == max
                && same_prefix(&r.remote_ip_prefix, &prefix)
                && r.remote_group_id == req.remote_group_id
            {
                return Err(NetworkError::conflict(
                    "SecurityGroupRuleExists",
                    format!("Security group rule already exists. Rule id is {}.", r.id),
                ));
            }
        }
        self.check_quota(&g.project_id, "security_group_rule", "security_group_rules")
            .await?;
        let now = time::now_micros();
        let id = ids::uuid_id();
        sqlx::query(
            "INSERT INTO security_group_rules (id, seq, security_group_id, project_id, direction, ethertype, protocol, \
             port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13)",
        )
        .bind(&id)
        .bind(seq())
        .bind(&gid)
        .bind(&g.project_id)
        .bind(&direction)
        .bind(&ethertype)
        .bind(protocol)
        .bind(min)
        .bind(max)
        .bind(prefix)
        .bind(req.remote_group_id)
        .bind(req.description.unwrap_or_default())
        .bind(now)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "UPDATE security_groups SET revision = revision + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(&gid)
        .execute(self.pool())
        .await?;
        tracing::info!(security_group_id = %gid, rule_id = %id, "security group rule created");
        self.changed();
        Ok(self.rule(ctx, &id).await?.0)
    }

    pub async fn delete_rule(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let (r, _) = self.rule(ctx, id).await?;
        self.check_write(ctx, "delete_security_group_rule", &r.project_id)?;
        sqlx::query("DELETE FROM security_group_rules WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "UPDATE security_groups SET revision = revision + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(time::now_micros())
        .bind(&r.security_group_id)
        .execute(self.pool())
        .await?;
        tracing::info!(rule_id = %id, "security group rule deleted");
        self.changed();
        Ok(())
    }
}

/// `tcp`, `6` and `"6"` are kept as given (lowercased); `any`, `null` and
/// `""` mean every protocol.
fn normalize_protocol(p: Option<&serde_json::Value>) -> Result<Option<String>> {
    let text = match p {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s.to_ascii_lowercase(),
        Some(other) => {
            return Err(NetworkError::bad(format!(
                "Invalid input for protocol: {other}"
            )))
        }
    };
    if text.is_empty() || text == "any" {
        return Ok(None);
    }
    if PROTOCOLS.iter().any(|(n, _)| *n == text) {
        return Ok(Some(text));
    }
    match text.parse::<i64>() {
        Ok(n) if (0..=255).contains(&n) => Ok(Some(text)),
        _ => Err(NetworkError::new(
            http::StatusCode::BAD_REQUEST,
            "SecurityGroupRuleInvalidProtocol",
            format!("Security group rule protocol {text} not supported. Only protocol values [None, ah, dccp, egp, esp, gre, icmp, igmp, ipip, ipv6-encap, ipv6-icmp, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp] and integer representations [0 to 255] are supported."),
        )),
    }
}
