-- Token lifecycle (issue 13).
-- The audit trail: which token an event is about, and the client address it came from.
ALTER TABLE account_events ADD COLUMN token_id BIGINT;
ALTER TABLE account_events ADD COLUMN client_address TEXT;
CREATE INDEX account_events_token ON account_events (token_id, id) WHERE token_id IS NOT NULL;
-- Rotation with a grace window: the previous secret's SHA-256 and until when it still works.
ALTER TABLE tokens ADD COLUMN old_secret_hash TEXT;
ALTER TABLE tokens ADD COLUMN old_secret_until TIMESTAMP;
CREATE INDEX tokens_grace ON tokens (old_secret_until) WHERE old_secret_until IS NOT NULL;
-- The account's token policy: longest lifetime in days (none: no limit), and whether every
-- token must expire.
ALTER TABLE accounts ADD COLUMN max_lifetime_days INTEGER;
ALTER TABLE accounts ADD COLUMN expiry_required BOOLEAN NOT NULL DEFAULT FALSE;
