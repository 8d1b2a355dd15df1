-- Octavia's per-project quotas. A NULL column uses the default (-1, no
-- limit, Octavia's own default). A row exists once an admin sets one.
CREATE TABLE lb_quotas (
    project_id TEXT PRIMARY KEY,
    load_balancer BIGINT,
    listener BIGINT,
    pool BIGINT,
    health_monitor BIGINT,
    member BIGINT,
    l7policy BIGINT,
    l7rule BIGINT
)
