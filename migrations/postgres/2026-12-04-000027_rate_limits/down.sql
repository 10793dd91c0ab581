DROP TABLE rate_buckets;
ALTER TABLE tokens DROP COLUMN rate_limit;
