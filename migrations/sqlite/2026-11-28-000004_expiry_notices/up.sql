-- Profile → Notifications: e-mails about expiring API tokens, on by default.
ALTER TABLE users ADD COLUMN token_expiry_email BOOLEAN NOT NULL DEFAULT TRUE;

-- One row per (token, notice, recipient): the in-app notification and the e-mail outbox.
CREATE TABLE notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    -- '7d' or '1d' before expiry
    kind TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP,
    -- e-mail: pending | sent | skipped (preference off) | cancelled (token deleted, user removed)
    email_status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    claim_id TEXT,
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP
);
CREATE UNIQUE INDEX notices_once ON notices (token_id, kind, user_id);
CREATE INDEX notices_user ON notices (user_id, created_at);
CREATE INDEX notices_pending ON notices (email_status, next_attempt_at);
