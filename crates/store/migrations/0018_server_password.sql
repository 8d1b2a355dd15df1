-- The encrypted password a guest posts to the metadata service (Nova's
-- os-server-password): set once by the guest, shown to the server's project,
-- cleared by its members.
ALTER TABLE servers ADD COLUMN password TEXT NOT NULL DEFAULT ''
