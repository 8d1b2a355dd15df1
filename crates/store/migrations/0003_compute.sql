-- Compute (Nova v2.1) and placement.
CREATE TABLE flavors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    vcpus BIGINT NOT NULL,
    ram BIGINT NOT NULL,
    disk BIGINT NOT NULL,
    ephemeral BIGINT NOT NULL DEFAULT 0,
    swap BIGINT NOT NULL DEFAULT 0,
    is_public BIGINT NOT NULL DEFAULT 1,
    disabled BIGINT NOT NULL DEFAULT 0,
    description TEXT,
    extra_specs TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE TABLE flavor_access (
    flavor_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);
CREATE TABLE keypairs (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    hypervisor_id TEXT NOT NULL,
    hypervisor_type TEXT NOT NULL,
    hypervisor_version BIGINT NOT NULL,
    host_ip TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_gb BIGINT NOT NULL,
    cpu_ratio_milli BIGINT NOT NULL DEFAULT 16000,
    ram_ratio_milli BIGINT NOT NULL DEFAULT 1500,
    disk_ratio_milli BIGINT NOT NULL DEFAULT 1000,
    reserved_ram_mb BIGINT NOT NULL DEFAULT 0,
    availability_zone TEXT NOT NULL DEFAULT 'nova',
    disabled BIGINT NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    forced_down BIGINT NOT NULL DEFAULT 0,
    traits TEXT NOT NULL DEFAULT '[]',
    generation BIGINT NOT NULL DEFAULT 0,
    heartbeat_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE TABLE allocations (
    consumer_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    vcpu BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_gb BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX allocations_host ON allocations (host);
CREATE TABLE servers (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    image_id TEXT NOT NULL,
    flavor TEXT NOT NULL,
    key_name TEXT,
    key_data TEXT,
    user_data TEXT,
    config_drive BIGINT NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    availability_zone TEXT,
    host TEXT,
    vm_state TEXT NOT NULL,
    task_state TEXT,
    power_state BIGINT NOT NULL DEFAULT 0,
    desired_power TEXT NOT NULL DEFAULT 'running',
    reboot_seq BIGINT NOT NULL DEFAULT 0,
    reboot_hard BIGINT NOT NULL DEFAULT 0,
    rebuild_seq BIGINT NOT NULL DEFAULT 0,
    applied_seq TEXT NOT NULL DEFAULT '',
    networks TEXT NOT NULL DEFAULT '[]',
    security_groups TEXT NOT NULL DEFAULT '[]',
    description TEXT,
    locked BIGINT NOT NULL DEFAULT 0,
    locked_reason TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    hostname TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    launch_index BIGINT NOT NULL DEFAULT 0,
    tried_hosts TEXT NOT NULL DEFAULT '[]',
    fault TEXT,
    launched_at BIGINT,
    terminated_at BIGINT,
    deleted BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX servers_project ON servers (project_id);
CREATE INDEX servers_host ON servers (host);
CREATE TABLE instance_actions (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    message TEXT,
    start_time BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX instance_actions_server ON instance_actions (server_id);
CREATE TABLE compute_quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
)
