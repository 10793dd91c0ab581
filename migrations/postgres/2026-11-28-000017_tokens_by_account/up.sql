-- The tokens page and the API list walk an account's tokens newest first. With only
-- (account_id, deleted_at) to go on, PostgreSQL walked the primary key backwards past every
-- newer token of every other account (190 ms for an old account among a million rows) or
-- sorted all of the account's tokens; this index gives the first page in 51 index entries.
CREATE INDEX tokens_account_id ON tokens (account_id, id);
