-- Passkeys (WebAuthn, issue 27): a person's registered credentials, each the public key and
-- signature counter as webauthn-rs keeps them (JSON; nothing secret), named by the person.
-- The credential id is unique across the installation: a passkey signs in its one person.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX passkeys_user ON passkeys (user_id);
-- A WebAuthn challenge works once, on every instance: its hash is recorded here when a
-- ceremony finishes (the challenge itself travels in the encrypted session cookie, so
-- starting a ceremony writes nothing), until it could no longer be answered.
CREATE TABLE webauthn_used_challenges (
    challenge_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX webauthn_used_challenges_expires ON webauthn_used_challenges (expires_at);
