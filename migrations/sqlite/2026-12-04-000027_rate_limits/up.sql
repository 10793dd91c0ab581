-- Rate limits per token (issue 28): "N/S" (a burst of N, then N per S seconds), and the one
-- shared bucket per limited token that instances lease shares of (no write per request).
ALTER TABLE tokens ADD COLUMN rate_limit TEXT;
CREATE TABLE rate_buckets (
    token_id INTEGER PRIMARY KEY NOT NULL,
    level REAL NOT NULL,
    updated_ms INTEGER NOT NULL
);
