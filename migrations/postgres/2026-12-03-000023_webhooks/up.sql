-- Webhooks (issue 30): an account's endpoints and the outbox of messages to them.
-- An endpoint's signing secret is sealed (AES-256-GCM under the installation's key): it
-- signs every delivery, so it can't be hashed. After a rotation the previous secret signs
-- alongside until previous_secret_until. failing_since: the first failed attempt since the
-- last success (3 days of failing disables the endpoint, disabled_reason says why).
-- due_at: when the endpoint's oldest pending message is due (NULL: nothing pending), what the
-- delivery worker scans, so its cost doesn't grow with a backlog held behind a failing
-- endpoint; queued_seq counts queueings, so a worker resetting due_at doesn't undo one it
-- didn't see.
CREATE TABLE webhook_endpoints (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- Event types, comma-separated; empty: every type.
    events TEXT NOT NULL DEFAULT '',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    secret_sealed TEXT NOT NULL,
    previous_secret_sealed TEXT,
    previous_secret_until TIMESTAMP,
    failing_since TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP,
    queued_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints (due_at) WHERE due_at IS NOT NULL;

-- The outbox: one row per (message, endpoint), written in the transaction of the event it
-- tells. msg_id is the webhook-id, the same on every attempt; payload the exact body. A
-- worker on any instance takes a due endpoint, claims its oldest pending rows (claim_id,
-- claimed_until) and delivers them in order; state: pending, delivered or failed (24 h of attempts).
-- dedupe_key makes a message about a sweep's finding (expiring, expired) once per endpoint.
CREATE TABLE webhook_messages (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    msg_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    dedupe_key TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    claim_id TEXT,
    claimed_until TIMESTAMP,
    last_attempt_at TIMESTAMP,
    last_status INTEGER,
    last_latency_ms INTEGER,
    last_error TEXT,
    finished_at TIMESTAMP
);
CREATE UNIQUE INDEX webhook_messages_once ON webhook_messages (endpoint_id, dedupe_key);
-- The endpoint's log and its head (its oldest pending row).
CREATE INDEX webhook_messages_by_endpoint ON webhook_messages (endpoint_id, id);
-- An endpoint's head (its oldest pending message) and the run after it.
CREATE INDEX webhook_messages_pending ON webhook_messages (endpoint_id, id) WHERE state = 'pending';
