-- Keystone's small administrative records: credentials (EC2 ones among them),
-- policy blobs, OAuth1 consumers, endpoint groups and per-domain
-- configuration. Each is its JSON body under a kind and an id, with the user
-- it belongs to (or '') so a user's own can be listed.
CREATE TABLE identity_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX identity_records_owner ON identity_records (kind, owner_id)
