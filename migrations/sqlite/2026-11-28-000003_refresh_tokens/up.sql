-- Refresh tokens work once: each one's id is recorded here when used, until it expires.
CREATE TABLE used_refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX used_refresh_tokens_expires ON used_refresh_tokens (expires_at);
