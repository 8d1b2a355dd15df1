-- Octavia's L7 policies and rules. A policy belongs to a listener and has a
-- 1-based position among the listener's policies (kept dense: a create or
-- move at position p shifts the others). Its action is REDIRECT_TO_POOL
-- (redirect_pool_id), REDIRECT_TO_URL (redirect_url), REDIRECT_PREFIX
-- (redirect_prefix) or REJECT. A rule belongs to a policy, and a policy matches
-- when all of its enabled rules do. Both carry the revision of their last
-- change, as every other object under a load balancer.
CREATE TABLE lb_l7policies (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    listener_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    action TEXT NOT NULL,
    position BIGINT NOT NULL,
    redirect_pool_id TEXT,
    redirect_url TEXT,
    redirect_prefix TEXT,
    redirect_http_code BIGINT,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX lb_l7policies_listener ON lb_l7policies (listener_id);
CREATE TABLE lb_l7rules (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    l7policy_id TEXT NOT NULL,
    type TEXT NOT NULL,
    compare_type TEXT NOT NULL,
    rule_key TEXT,
    rule_value TEXT NOT NULL,
    invert BIGINT NOT NULL,
    admin_state_up BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX lb_l7rules_policy ON lb_l7rules (l7policy_id)
