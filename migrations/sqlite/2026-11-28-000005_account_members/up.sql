-- Fields Gcore's user API carries.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';

-- One-time links that let an invited user set a password (only the hash is kept).
CREATE TABLE password_setups (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX password_setups_user ON password_setups (user_id);

-- Who changed what in the account, and when.
CREATE TABLE account_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    actor_id INTEGER REFERENCES users(id),
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX account_events_account ON account_events (account_id, id);
