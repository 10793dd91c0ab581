-- The token a token was created with (through the API), if any: a token can't outlive the
-- token that created it, and deleting one ends everything it created.
ALTER TABLE tokens ADD COLUMN parent_id BIGINT NULL;
CREATE INDEX tokens_parent ON tokens (parent_id) WHERE parent_id IS NOT NULL;
