-- Cold migrations and resizes across hosts (Nova's migrations table): one
-- row per move, with its hosts, flavors and status. A server moving keeps
-- the host it is going to (while its disk is copied) and, once moved, the
-- host it came from (which keeps its stopped copy until confirm or revert).
-- A port of a server being live-migrated is also plugged in on the host it
-- goes to (Neutron's binding:profile migrating_to) until the switch.
CREATE TABLE migrations (
    uuid TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    server_id TEXT NOT NULL,
    source_compute TEXT NOT NULL,
    dest_compute TEXT NOT NULL,
    status TEXT NOT NULL,
    migration_type TEXT NOT NULL,
    old_flavor_id TEXT NOT NULL,
    new_flavor_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX migrations_server ON migrations (server_id);
ALTER TABLE servers ADD COLUMN migration_dest TEXT;
ALTER TABLE servers ADD COLUMN migration_source TEXT;
ALTER TABLE ports ADD COLUMN migrating_to TEXT
