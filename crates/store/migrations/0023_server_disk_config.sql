-- Nova's OS-DCF:diskConfig of a server: AUTO (the guest grows its root
-- partition to the disk) or MANUAL, as the request that made it said
ALTER TABLE servers ADD COLUMN disk_config TEXT NOT NULL DEFAULT 'MANUAL'
