-- A second factor (issue 27): a person's TOTP seed, sealed (AES-256-GCM under a key derived
-- from the installation's secret key: the seed must be read to check a code, so it can't be
-- hashed), confirmed once a code from it was entered, and the last time step accepted, so a
-- code works once on every instance (a replay within its window is refused).
CREATE TABLE user_totp (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users(id),
    secret_sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_step INTEGER NOT NULL DEFAULT 0
);
-- Ten recovery codes per person, as SHA-256 only, each usable once.
CREATE TABLE recovery_codes (
    user_id INTEGER NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP,
    PRIMARY KEY (user_id, code_hash)
);
