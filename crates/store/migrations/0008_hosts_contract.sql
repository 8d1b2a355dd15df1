-- Joining hosts: one-time join tokens (only their SHA-256 is kept), the
-- hosts enrolled with a certificate of the cloud's CA (by the certificate's
-- SHA-256), where each host's agent listens, and which host is the network
-- node.
CREATE TABLE join_tokens (
    token_sha256 TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE enrolled_hosts (
    name TEXT PRIMARY KEY,
    cert_sha256 TEXT NOT NULL UNIQUE,
    enrolled_at BIGINT NOT NULL
);
ALTER TABLE hosts ADD COLUMN agent_url TEXT;
ALTER TABLE hosts ADD COLUMN network_node BIGINT NOT NULL DEFAULT 0;
