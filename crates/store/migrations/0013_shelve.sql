-- A shelved server's disk image: what it boots from when it is unshelved
-- (Nova's shelved_image_id), removed once it runs again.
ALTER TABLE servers ADD COLUMN shelved_image_id TEXT
