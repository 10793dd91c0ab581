CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    issuer_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    description TEXT,
    role INTEGER NOT NULL,
    -- SHA-256 of the secret, lowercase hex. The secret itself is never stored.
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    deleted_at TIMESTAMP,
    deleted_by INTEGER REFERENCES users(id),
    -- One-time id of the web form that created it, so a resubmitted form creates nothing.
    form_id TEXT
);
CREATE INDEX tokens_account ON tokens (account_id, deleted_at);
CREATE INDEX tokens_issuer ON tokens (issuer_id);
CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE UNIQUE INDEX tokens_form ON tokens (issuer_id, form_id);
