-- Load balancers (Octavia v2): a load balancer owns its VIP port (made by
-- the network service, owner Octavia), listeners, pools, members and
-- health monitors. Every change under a load balancer bumps its revision;
-- each object keeps the revision of its last change, and the network node
-- reports the revision its HAProxy runs: an object is ACTIVE once that
-- revision reaches its own, PENDING_CREATE or PENDING_UPDATE before. Member health and traffic
-- counters, as the network node last reported them, live in lb_health:
-- writes there don't change anything a host must do.
CREATE TABLE lb_loadbalancers (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    vip_port_id TEXT NOT NULL,
    vip_address TEXT NOT NULL,
    vip_network_id TEXT NOT NULL,
    vip_subnet_id TEXT NOT NULL,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    applied_revision BIGINT NOT NULL,
    fault TEXT,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE lb_listeners (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    loadbalancer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    protocol TEXT NOT NULL,
    protocol_port BIGINT NOT NULL,
    connection_limit BIGINT NOT NULL,
    default_pool_id TEXT,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    timeout_client_data BIGINT NOT NULL,
    timeout_member_connect BIGINT NOT NULL,
    timeout_member_data BIGINT NOT NULL,
    timeout_tcp_inspect BIGINT NOT NULL,
    insert_headers TEXT NOT NULL,
    allowed_cidrs TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX lb_listeners_port ON lb_listeners (loadbalancer_id, protocol_port);
CREATE TABLE lb_pools (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    loadbalancer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    protocol TEXT NOT NULL,
    lb_algorithm TEXT NOT NULL,
    session_persistence TEXT,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE lb_members (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    pool_id TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    protocol_port BIGINT NOT NULL,
    weight BIGINT NOT NULL,
    backup BIGINT NOT NULL,
    subnet_id TEXT,
    monitor_address TEXT,
    monitor_port BIGINT,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX lb_members_target ON lb_members (pool_id, address, protocol_port);
CREATE TABLE lb_healthmonitors (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    pool_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    delay BIGINT NOT NULL,
    timeout BIGINT NOT NULL,
    max_retries BIGINT NOT NULL,
    max_retries_down BIGINT NOT NULL,
    http_method TEXT NOT NULL,
    url_path TEXT NOT NULL,
    expected_codes TEXT NOT NULL,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE lb_health (
    id TEXT PRIMARY KEY,
    loadbalancer_id TEXT NOT NULL,
    health TEXT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    active_connections BIGINT NOT NULL,
    total_connections BIGINT NOT NULL,
    request_errors BIGINT NOT NULL
);
CREATE INDEX lb_health_lb ON lb_health (loadbalancer_id)
