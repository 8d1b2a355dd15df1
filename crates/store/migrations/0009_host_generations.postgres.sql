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
CREATE FUNCTION ferro_bump_generation(h TEXT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO host_generations (host, generation) VALUES (h, 1)
    ON CONFLICT (host) DO UPDATE SET generation = host_generations.generation + 1
$$
-- next
CREATE FUNCTION ferro_servers_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' AND NEW.host IS NOT NULL THEN
        PERFORM ferro_bump_generation(NEW.host);
    END IF;
    IF TG_OP = 'DELETE' AND OLD.host IS NOT NULL THEN
        PERFORM ferro_bump_generation(OLD.host);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.host IS NOT NULL AND OLD.host IS DISTINCT FROM NEW.host THEN
        PERFORM ferro_bump_generation(OLD.host);
    END IF;
    RETURN NULL;
END
$$
-- next
CREATE FUNCTION ferro_network_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ferro_bump_generation('');
    RETURN NULL;
END
$$
-- next
CREATE TRIGGER servers_generation AFTER INSERT OR UPDATE OR DELETE ON servers FOR EACH ROW EXECUTE FUNCTION ferro_servers_generation()
-- next
CREATE TRIGGER networks_generation AFTER INSERT OR UPDATE OR DELETE ON networks FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER subnets_generation AFTER INSERT OR UPDATE OR DELETE ON subnets FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER ports_generation AFTER INSERT OR UPDATE OR DELETE ON ports FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER ip_allocations_generation AFTER INSERT OR UPDATE OR DELETE ON ip_allocations FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER routers_generation AFTER INSERT OR UPDATE OR DELETE ON routers FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER floatingips_generation AFTER INSERT OR UPDATE OR DELETE ON floatingips FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER security_groups_generation AFTER INSERT OR UPDATE OR DELETE ON security_groups FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
-- next
CREATE TRIGGER security_group_rules_generation AFTER INSERT OR UPDATE OR DELETE ON security_group_rules FOR EACH STATEMENT EXECUTE FUNCTION ferro_network_generation()
