-- Every change of a load balancer's configuration bumps the network row of
-- host_generations (see 0009), in the writing transaction: the network node
-- runs load balancers, and its desired state must move with them.
CREATE TRIGGER lb_loadbalancers_generation_insert AFTER INSERT ON lb_loadbalancers BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_loadbalancers_generation_update AFTER UPDATE ON lb_loadbalancers BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_loadbalancers_generation_delete AFTER DELETE ON lb_loadbalancers BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_listeners_generation_insert AFTER INSERT ON lb_listeners BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_listeners_generation_update AFTER UPDATE ON lb_listeners BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_listeners_generation_delete AFTER DELETE ON lb_listeners BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_pools_generation_insert AFTER INSERT ON lb_pools BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_pools_generation_update AFTER UPDATE ON lb_pools BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_pools_generation_delete AFTER DELETE ON lb_pools BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_members_generation_insert AFTER INSERT ON lb_members BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_members_generation_update AFTER UPDATE ON lb_members BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_members_generation_delete AFTER DELETE ON lb_members BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_healthmonitors_generation_insert AFTER INSERT ON lb_healthmonitors BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_healthmonitors_generation_update AFTER UPDATE ON lb_healthmonitors BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
-- next
CREATE TRIGGER lb_healthmonitors_generation_delete AFTER DELETE ON lb_healthmonitors BEGIN INSERT INTO host_generations (host, generation) VALUES ('', 1) ON CONFLICT (host) DO UPDATE SET generation = generation + 1; END
