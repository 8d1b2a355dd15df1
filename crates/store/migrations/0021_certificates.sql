-- A Barbican-like secret store (key-manager v1): secrets with their payload
-- (base64 of the bytes), and containers that name secrets (a certificate
-- container holds certificate, private_key, intermediates). Load-balancer
-- listeners of protocol TERMINATED_HTTPS refer to a container or a secret
-- by its URL, as Octavia's listeners refer to Barbican.
CREATE TABLE km_secrets (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    name TEXT,
    secret_type TEXT NOT NULL,
    algorithm TEXT,
    bit_length BIGINT,
    mode TEXT,
    expiration TEXT,
    content_type TEXT,
    payload TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX km_secrets_project ON km_secrets (project_id);
CREATE TABLE km_containers (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    name TEXT,
    type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX km_containers_project ON km_containers (project_id);
CREATE TABLE km_container_secrets (
    container_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    PRIMARY KEY (container_id, name)
);
ALTER TABLE lb_listeners ADD COLUMN default_tls_container_ref TEXT;
ALTER TABLE lb_listeners ADD COLUMN sni_container_refs TEXT
