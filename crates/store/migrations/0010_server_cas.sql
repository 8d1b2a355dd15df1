-- Every write to a server row bumps its state_generation. An action decided
-- on a read of the row writes only if the row is still at the generation it
-- read (compare-and-set), so two concurrent actions can't both win.
ALTER TABLE servers ADD COLUMN state_generation BIGINT NOT NULL DEFAULT 0
