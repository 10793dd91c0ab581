DROP INDEX accounts_with_idle_rule;
ALTER TABLE accounts DROP COLUMN max_idle_days;
