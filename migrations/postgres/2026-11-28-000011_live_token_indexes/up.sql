-- Indexes over live tokens only, so the queries that only care about them cost what is
-- live, not the account's (or the installation's) history of deleted tokens:
-- the 50-active count and the active filter per account,
CREATE INDEX tokens_live ON tokens (account_id, id) WHERE deleted_at IS NULL;
-- and the expiry sweep's range over tokens that do expire.
CREATE INDEX tokens_expiring_live ON tokens (expires_at) WHERE deleted_at IS NULL AND expires_at IS NOT NULL;
