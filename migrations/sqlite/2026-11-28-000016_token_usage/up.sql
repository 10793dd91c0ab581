-- Where and how much a token is used (issue 13).
-- The last use's client address and user agent (written with last_used_at, at most once a
-- minute per token and instance).
ALTER TABLE tokens ADD COLUMN last_used_ip TEXT;
ALTER TABLE tokens ADD COLUMN last_used_user_agent TEXT;
-- The last five distinct addresses a token was used from.
CREATE TABLE token_addresses (
    token_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    last_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, address)
);
-- Requests per token per day (UTC), added to by every instance's batched flush; 30 days kept.
CREATE TABLE token_usage (
    token_id INTEGER NOT NULL,
    day DATE NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (token_id, day)
);
CREATE INDEX token_usage_day ON token_usage (day);
