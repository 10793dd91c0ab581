DROP TABLE token_usage;
DROP TABLE token_addresses;
ALTER TABLE tokens DROP COLUMN last_used_user_agent;
ALTER TABLE tokens DROP COLUMN last_used_ip;
