-- Every change of a load balancer's configuration bumps the network row of
-- host_generations (see 0009), in the writing transaction: the network node
-- runs load balancers, and its desired state must move with them.
CREATE TRIGGER lb_loadbalancers_generation AFTER INSERT OR UPDATE OR DELETE ON lb_loadbalancers FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER lb_listeners_generation AFTER INSERT OR UPDATE OR DELETE ON lb_listeners FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER lb_pools_generation AFTER INSERT OR UPDATE OR DELETE ON lb_pools FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER lb_members_generation AFTER INSERT OR UPDATE OR DELETE ON lb_members FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER lb_healthmonitors_generation AFTER INSERT OR UPDATE OR DELETE ON lb_healthmonitors FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
