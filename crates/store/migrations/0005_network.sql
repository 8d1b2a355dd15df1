-- Networking (Neutron v2.0).
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    admin_state_up BIGINT NOT NULL DEFAULT 1,
    shared BIGINT NOT NULL DEFAULT 0,
    external BIGINT NOT NULL DEFAULT 0,
    network_type TEXT NOT NULL,
    physical_network TEXT,
    segmentation_id BIGINT,
    mtu BIGINT NOT NULL,
    port_security BIGINT NOT NULL DEFAULT 1,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX networks_project ON networks (project_id);
CREATE TABLE subnets (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    network_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    cidr TEXT NOT NULL,
    gateway_ip TEXT,
    allocation_pools TEXT NOT NULL,
    enable_dhcp BIGINT NOT NULL DEFAULT 1,
    dns_nameservers TEXT NOT NULL DEFAULT '[]',
    host_routes TEXT NOT NULL DEFAULT '[]',
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE TABLE ports (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    network_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    mac_address TEXT NOT NULL,
    admin_state_up BIGINT NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    device_id TEXT NOT NULL DEFAULT '',
    device_owner TEXT NOT NULL DEFAULT '',
    security_groups TEXT NOT NULL DEFAULT '[]',
    allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
    port_security BIGINT NOT NULL DEFAULT 1,
    binding_host TEXT NOT NULL DEFAULT '',
    dns_name TEXT NOT NULL DEFAULT '',
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (network_id, mac_address)
);
CREATE INDEX ports_network ON ports (network_id);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_host ON ports (binding_host);
CREATE TABLE ip_allocations (
    subnet_id TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    port_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);
CREATE TABLE routers (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    admin_state_up BIGINT NOT NULL DEFAULT 1,
    gw_network_id TEXT,
    gw_port_id TEXT,
    enable_snat BIGINT NOT NULL DEFAULT 1,
    routes TEXT NOT NULL DEFAULT '[]',
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE floatingips (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    floating_network_id TEXT NOT NULL,
    floating_ip_address TEXT NOT NULL,
    floating_port_id TEXT NOT NULL,
    port_id TEXT,
    fixed_ip_address TEXT,
    router_id TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX floatingips_port ON floatingips (port_id);
CREATE TABLE security_groups (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    is_default BIGINT NOT NULL DEFAULT 0,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX security_groups_one_default ON security_groups (project_id) WHERE is_default = 1;
CREATE INDEX security_groups_project ON security_groups (project_id);
CREATE TABLE security_group_rules (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    security_group_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    ethertype TEXT NOT NULL,
    protocol TEXT,
    port_range_min BIGINT,
    port_range_max BIGINT,
    remote_ip_prefix TEXT,
    remote_group_id TEXT,
    description TEXT NOT NULL DEFAULT '',
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);
CREATE TABLE network_quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
)
