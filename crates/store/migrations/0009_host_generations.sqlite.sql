-- Desired-state generations. A host's generation is its own row plus the
-- network row (host ''): every write to a server bumps the row of each host
-- it is or was on, every write to the network model bumps the network row,
-- by triggers, in the writing transaction itself. The sum only grows with
-- the database's history, so an agent that applied generation N and is
-- offered less is talking to an older copy of the database. Statements are
-- separated by lines that say "-- next".
CREATE TABLE host_generations (host TEXT PRIMARY KEY, generation BIGINT NOT NULL)
-- next
ALTER TABLE hosts ADD COLUMN out_of_sync TEXT
-- next
ALTER TABLE hosts ADD COLUMN agent_generation BIGINT NOT NULL DEFAULT 0
-- next
CREATE TRIGGER servers_generation_insert AFTER INSERT ON servers WHEN NEW.host IS NOT NULL BEGIN INSERT INTO host_generations (host, generation) VALUES (NEW.host, 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER servers_generation_update_new AFTER UPDATE ON servers WHEN NEW.host IS NOT NULL BEGIN INSERT INTO host_generations (host, generation) VALUES (NEW.host, 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER servers_generation_update_old AFTER UPDATE ON servers WHEN OLD.host IS NOT NULL AND OLD.host IS NOT NEW.host BEGIN INSERT INTO host_generations (host, generation) VALUES (OLD.host, 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER servers_generation_delete AFTER DELETE ON servers WHEN OLD.host IS NOT NULL BEGIN INSERT INTO host_generations (host, generation) VALUES (OLD.host, 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER networks_generation_insert AFTER INSERT ON networks BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER networks_generation_update AFTER UPDATE ON networks BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER networks_generation_delete AFTER DELETE ON networks BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER subnets_generation_insert AFTER INSERT ON subnets BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER subnets_generation_update AFTER UPDATE ON subnets BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER subnets_generation_delete AFTER DELETE ON subnets BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER ports_generation_insert AFTER INSERT ON ports BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER ports_generation_update AFTER UPDATE ON ports BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER ports_generation_delete AFTER DELETE ON ports BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER ip_allocations_generation_insert AFTER INSERT ON ip_allocations BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER ip_allocations_generation_update AFTER UPDATE ON ip_allocations BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER ip_allocations_generation_delete AFTER DELETE ON ip_allocations BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER routers_generation_insert AFTER INSERT ON routers BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER routers_generation_update AFTER UPDATE ON routers BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER routers_generation_delete AFTER DELETE ON routers BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER floatingips_generation_insert AFTER INSERT ON floatingips BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER floatingips_generation_update AFTER UPDATE ON floatingips BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER floatingips_generation_delete AFTER DELETE ON floatingips BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER security_groups_generation_insert AFTER INSERT ON security_groups BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER security_groups_generation_update AFTER UPDATE ON security_groups BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER security_groups_generation_delete AFTER DELETE ON security_groups BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER security_group_rules_generation_insert AFTER INSERT ON security_group_rules BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER security_group_rules_generation_update AFTER UPDATE ON security_group_rules BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER security_group_rules_generation_delete AFTER DELETE ON security_group_rules BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
