-- Resize: the flavor to go back to until the resize is confirmed, and a
-- counter the host agent applies like reboots and rebuilds.
ALTER TABLE servers ADD COLUMN old_flavor TEXT;
ALTER TABLE servers ADD COLUMN resize_seq BIGINT NOT NULL DEFAULT 0
