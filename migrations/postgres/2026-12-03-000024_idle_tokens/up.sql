-- Idle tokens retired (issue 29): the account's token policy may revoke a token nobody has
-- used for this many days (never-used tokens count from creation), told 7 days before.
ALTER TABLE accounts ADD COLUMN max_idle_days INTEGER;
CREATE INDEX accounts_with_idle_rule ON accounts (id) WHERE max_idle_days IS NOT NULL;
