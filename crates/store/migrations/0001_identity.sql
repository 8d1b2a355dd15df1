-- Identity (Keystone v3). Booleans are 0/1 BIGINT, times are Unix
-- microseconds, JSON documents are TEXT.
CREATE TABLE domains (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    parent_id TEXT,
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    password_hash TEXT,
    password_changed_at BIGINT,
    default_project_id TEXT,
    description TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE implied_roles (
    prior_role_id TEXT NOT NULL,
    implied_role_id TEXT NOT NULL,
    PRIMARY KEY (prior_role_id, implied_role_id)
);
CREATE TABLE role_assignments (
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    inherited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited)
);
CREATE INDEX role_assignments_target ON role_assignments (target_type, target_id);
CREATE INDEX role_assignments_role ON role_assignments (role_id);
CREATE TABLE application_credentials (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    expires_at BIGINT,
    unrestricted BIGINT NOT NULL DEFAULT 0,
    roles TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE regions (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE services (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    interface TEXT NOT NULL,
    region_id TEXT,
    url TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE revocation_events (
    id TEXT PRIMARY KEY,
    audit_id TEXT,
    user_id TEXT,
    project_id TEXT,
    issued_before BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
