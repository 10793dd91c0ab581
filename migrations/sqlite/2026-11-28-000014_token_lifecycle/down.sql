ALTER TABLE accounts DROP COLUMN expiry_required;
ALTER TABLE accounts DROP COLUMN max_lifetime_days;
DROP INDEX tokens_grace;
ALTER TABLE tokens DROP COLUMN old_secret_until;
ALTER TABLE tokens DROP COLUMN old_secret_hash;
DROP INDEX account_events_token;
ALTER TABLE account_events DROP COLUMN client_address;
ALTER TABLE account_events DROP COLUMN token_id;
