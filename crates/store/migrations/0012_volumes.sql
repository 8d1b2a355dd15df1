-- Block storage (Cinder v3): volume types, volumes, snapshots, attachments
-- and per-project quotas, and compute's side of an attachment (its block
-- device mappings). Sizes are GiB. Times are Unix microseconds.
CREATE TABLE volume_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    is_public BIGINT NOT NULL DEFAULT 1,
    extra_specs TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX volume_types_name ON volume_types (name);
CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    volume_type_id TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    bootable BIGINT NOT NULL DEFAULT 0,
    multiattach BIGINT NOT NULL DEFAULT 0,
    snapshot_id TEXT,
    source_volid TEXT,
    image_id TEXT,
    image_metadata TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    host TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX volumes_project ON volumes (project_id);
CREATE TABLE volume_snapshots (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX volume_snapshots_volume ON volume_snapshots (volume_id);
CREATE TABLE volume_attachments (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL,
    server_id TEXT,
    host TEXT,
    device TEXT,
    status TEXT NOT NULL,
    attach_mode TEXT NOT NULL DEFAULT 'rw',
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    attached_at BIGINT
);
CREATE INDEX volume_attachments_volume ON volume_attachments (volume_id);
CREATE TABLE volume_quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
-- A server's volumes as compute sees them. state: attaching (the host is
-- asked to plug it), attached (the host reported it plugged), detaching
-- (the host is asked to unplug it), detached (the host reported it gone).
-- The id is the volume service's attachment id.
CREATE TABLE block_device_mappings (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT NOT NULL,
    delete_on_termination BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX block_device_mappings_server ON block_device_mappings (server_id)
