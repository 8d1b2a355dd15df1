-- The durable log of multi-step operations (sagas). A row is written in the
-- same transaction as the first change of its operation and removed in the
-- same transaction as the last, so an open row means work to finish or to
-- undo. step names the next step to run. A controller runs a saga only while
-- it holds the row's lease (lease_holder until lease_expires, in
-- microseconds), so with several controllers exactly one drives each.
CREATE TABLE sagas (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    params TEXT NOT NULL,
    step TEXT NOT NULL,
    unwinding INTEGER NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_holder TEXT NOT NULL DEFAULT '',
    lease_expires BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sagas_resource ON sagas (resource_id);
-- Ports that compute made for a server (and removes with it), as opposed to
-- ports a user made and handed to a server: the garbage collector removes
-- only the former when their server is gone.
ALTER TABLE ports ADD COLUMN made_by TEXT NOT NULL DEFAULT ''
