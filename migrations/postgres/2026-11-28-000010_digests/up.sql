-- One e-mail per recipient per sweep (a digest). A notice joins a digest before it is sent,
-- and keeps its key: a retry resends the same digest (same Message-ID), never regroups it.
ALTER TABLE notices ADD COLUMN digest_key TEXT;
CREATE INDEX notices_digest ON notices (digest_key);

-- At most one sweep at a time across instances: a lease taken by a conditional update.
CREATE TABLE sweep_lease (
    id INTEGER PRIMARY KEY,
    holder TEXT,
    until TIMESTAMP
);
INSERT INTO sweep_lease (id, holder, until) VALUES (1, NULL, NULL);
