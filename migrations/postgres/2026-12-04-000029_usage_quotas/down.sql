ALTER TABLE accounts DROP COLUMN max_rate_limit;
ALTER TABLE token_usage DROP COLUMN refused_quota;
ALTER TABLE token_usage DROP COLUMN refused_rate;
ALTER TABLE token_usage DROP COLUMN refused_route;
DROP TABLE quota_counters;
ALTER TABLE tokens DROP COLUMN usage_limit;
