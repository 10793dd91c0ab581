-- Usage quotas per token (issue 28): "N", "N/daily" or "N/monthly".
ALTER TABLE tokens ADD COLUMN usage_limit TEXT;
-- One counter per quota'd token: what its period has used (leases count when taken), and the
-- period whose 80 % notice was made. A new period replaces the row's, so it never grows.
CREATE TABLE quota_counters (
    token_id INTEGER PRIMARY KEY NOT NULL,
    period TEXT NOT NULL,
    used INTEGER NOT NULL,
    noticed_period TEXT
);
-- The usage chart's refusals per day (requests counts every authenticated request).
ALTER TABLE token_usage ADD COLUMN refused_route INTEGER NOT NULL DEFAULT 0;
ALTER TABLE token_usage ADD COLUMN refused_rate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE token_usage ADD COLUMN refused_quota INTEGER NOT NULL DEFAULT 0;
-- The token policy's rate cap: "N/S", or none.
ALTER TABLE accounts ADD COLUMN max_rate_limit TEXT;
